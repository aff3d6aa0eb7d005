//! Streaming a layout directory's blobs into the store: several threads stage blobs (read,
//! hash, write, verify) while the importing thread commits what they staged, batch by batch,
//! each batch one locked step ([`crate::store::Store::commit_staged`]). Staging and committing
//! overlap, and the number of staged blobs waiting (each an open staging file) is bounded.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::sync_channel;

use super::descriptor::media_type_of;
use super::error::{OciError, OciResult};
use super::graph::Reached;
use super::import_session::ImportSession;
use super::layout::{open_regular, Layout};
use crate::store::{
    validate_media_type, Progress, ProgressRead, StagedBlob, Store, StoreError, WriteOptions,
};
use crate::traits::{BlobStore, Digest, ExtraData, Index, KvStore};

/// Most blobs handed to one locked commit step: bounds the time other writers of the same
/// stripes wait. Larger batches write fewer database pages per blob (records of random digests
/// land on every page of the index either way).
const MAX_COMMIT_BATCH: usize = 2048;

/// Fewest blobs per commit step, whatever the descriptor limit.
const MIN_COMMIT_BATCH: usize = 64;

/// Descriptors left for everything else: the 256 digest-lock files a commit step may hold,
/// the databases, the sources being read.
const RESERVED_DESCRIPTORS: u64 = 512;

/// How many blobs one commit step takes: each staged blob holds its staging file open until
/// it is committed, and up to a quarter of a batch more waits beyond the one being gathered,
/// so the batch is sized to the process's descriptor limit.
pub(super) fn commit_batch() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct we pass.
    let known = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    let soft = if known { limit.rlim_cur } else { 1024 };
    let spare = soft.saturating_sub(RESERVED_DESCRIPTORS) * 2 / 3;
    usize::try_from(spare)
        .unwrap_or(MAX_COMMIT_BATCH)
        .clamp(MIN_COMMIT_BATCH, MAX_COMMIT_BATCH)
}

/// Threads staging a layout's blobs at once: big layers hash and sync on every core while
/// others are read. Small blobs are synced together at commit, so more threads would only
/// contend for the staging directory.
const STAGING_THREADS: usize = 4;

/// What was stored: blobs and bytes.
#[derive(Debug, Default)]
pub(super) struct Stored {
    pub(super) blobs: u64,
    pub(super) bytes: u64,
}

/// Stages every blob of `blobs` on up to [`STAGING_THREADS`] threads and commits them in
/// batches under the session's hold. On failure nothing more is staged or committed, and the
/// error is that of the first blob (in the order of `blobs`) that failed to stage, or else the
/// commit's; what was committed stays held by the session, which lets go when dropped.
pub(super) fn stage_and_commit<'s, B: BlobStore, I: Index, X: ExtraData, K: KvStore>(
    session: &mut ImportSession<'s, B, I, X, K>,
    layout: &Layout,
    blobs: &[&Reached],
    progress: &dyn Progress,
) -> OciResult<Stored> {
    let store = session.store();
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let batch_size = commit_batch();
    let (sender, receiver) = sync_channel::<(usize, OciResult<StagedBlob<'s>>)>(batch_size / 4);
    std::thread::scope(|scope| {
        for _ in 0..STAGING_THREADS.min(blobs.len()) {
            let sender = sender.clone();
            let (next, failed) = (&next, &failed);
            scope.spawn(move || {
                while !failed.load(Ordering::Relaxed) {
                    let position = next.fetch_add(1, Ordering::Relaxed);
                    let Some(reached) = blobs.get(position) else {
                        break;
                    };
                    let result = stage_layout_blob(store, layout, reached, progress);
                    progress.item_done();
                    if result.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    if sender.send((position, result)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(sender);
        let mut stored = Stored::default();
        let mut pending = Vec::with_capacity(batch_size);
        let mut stage_error: Option<(usize, OciError)> = None;
        let mut commit_error = None;
        let mut commit = |pending: &mut Vec<StagedBlob<'s>>| {
            let batch = std::mem::take(pending);
            match session.commit_staged(batch) {
                Ok(records) => {
                    stored.blobs += records.len() as u64;
                    stored.bytes += records.iter().map(|r| r.size).sum::<u64>();
                }
                Err(error) => {
                    failed.store(true, Ordering::Relaxed);
                    commit_error = Some(error);
                }
            }
        };
        // Receives until every worker has stopped, so a failure's staged blobs are all
        // dropped (discarded) before returning.
        for (position, result) in receiver {
            match result {
                Ok(staged) if !failed.load(Ordering::Relaxed) => {
                    pending.push(staged);
                    if pending.len() >= batch_size {
                        commit(&mut pending);
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    if stage_error
                        .as_ref()
                        .is_none_or(|(first, _)| position < *first)
                    {
                        stage_error = Some((position, error));
                    }
                }
            }
        }
        if let Some((_, error)) = stage_error {
            return Err(error);
        }
        if !failed.load(Ordering::Relaxed) {
            commit(&mut pending);
        }
        match commit_error {
            Some(error) => Err(error.into()),
            None => Ok(stored),
        }
    })
}

/// Streams one reached blob of a layout directory into staging, verified against its
/// descriptor; documents come from memory (read and verified by the walk).
fn stage_layout_blob<'s, B: BlobStore, I: Index, X: ExtraData, K: KvStore>(
    store: &'s Store<B, I, X, K>,
    layout: &Layout,
    reached: &Reached,
    progress: &dyn Progress,
) -> OciResult<StagedBlob<'s>> {
    let digest = &reached.digest;
    let media_type = media_type_of(&reached.descriptor);
    let options = WriteOptions {
        // The descriptor keeps the exact media type; the index record is informational,
        // so one the base store would refuse (parameters, odd characters) is left out.
        media_type: validate_media_type(&media_type)
            .ok()
            .map(|_| media_type.clone()),
        expected_digest: Some(digest.clone()),
        expected_size: Some(reached.descriptor.size()),
    };
    let path = layout
        .blob_path(digest)?
        .ok_or_else(|| OciError::MissingBlob {
            digest: digest.clone(),
            media_type,
            source_name: layout.root.display().to_string(),
        })?;
    let staged = match &reached.document {
        Some(bytes) => store.stage(ProgressRead::new(bytes.as_slice(), progress), &options),
        None => store.stage(ProgressRead::new(open_regular(&path)?, progress), &options),
    };
    staged.map_err(|source| blob_import_error(digest, path, source))
}

pub(super) fn blob_import_error(digest: &Digest, path: PathBuf, source: StoreError) -> OciError {
    OciError::BlobImport {
        digest: digest.clone(),
        path,
        source: Box::new(source),
    }
}
