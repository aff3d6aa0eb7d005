//! Streaming a layout directory's blobs into the store through the transfer pipeline
//! ([`crate::store::Pipeline`]): several threads stage blobs (read, hash, write, verify) while
//! the importing thread commits what they staged, batch by batch, each batch one locked step
//! of the import's operation. Staging and committing overlap, and the number of staged blobs
//! waiting (each an open staging file) is bounded.

use std::path::PathBuf;

use super::descriptor::media_type_of;
use super::error::{OciError, OciResult};
use super::graph::Reached;
use super::layout::{open_regular, Layout};
use crate::store::{
    validate_media_type, Arrival, Committed, Operation, Pipeline, Progress, ProgressRead,
    StagedBlob, Store, StoreError, WriteOptions,
};
use crate::traits::Digest;

/// Threads staging a layout's blobs at once: big layers hash and sync on every core while
/// others are read. Small blobs are synced together at commit, so more threads would only
/// contend for the staging directory.
const STAGING_THREADS: usize = 4;

/// Stages every blob of `blobs` on up to [`STAGING_THREADS`] threads of the transfer pipeline
/// and commits them in batches under the operation's hold. On failure nothing more is staged
/// or committed, and the error is that of the first blob (in the order of `blobs`) that failed
/// to stage, or else the commit's; what was committed stays held by the operation, which lets
/// go when dropped.
pub(super) fn stage_and_commit<'s>(
    operation: &mut Operation<'s>,
    layout: &Layout,
    blobs: &[&Reached],
    progress: &dyn Progress,
) -> OciResult<Committed> {
    let store = operation.store();
    let mut stored = Committed::default();
    Pipeline::new(STAGING_THREADS).with_progress(progress).run(
        blobs,
        |reached, _| stage_layout_blob(store, layout, reached, progress),
        |staged| {
            let committed =
                operation.commit_arrivals(staged.into_iter().map(Arrival::Staged).collect())?;
            stored.blobs_written += committed.blobs_written;
            stored.bytes_written += committed.bytes_written;
            Ok(())
        },
    )?;
    Ok(stored)
}

/// Streams one reached blob of a layout directory into staging, verified against its
/// descriptor; documents come from memory (read and verified by the walk).
fn stage_layout_blob<'s>(
    store: &'s Store,
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
            .map(|()| media_type.clone()),
        expected_digest: Some(digest.clone()),
        expected_size: Some(reached.descriptor.size()),
        ..WriteOptions::default()
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
