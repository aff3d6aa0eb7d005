//! One import's hold on what it stores, so that the import is all or nothing.
//!
//! Each import has its own holder name, `oci-import.<id>`, and records itself as the key/value
//! entry `oci.import/<id>` before it stores anything. Every blob it writes or finds present gets
//! that holder's mark (`owner.oci-import.<id>`), never `owner.oci`, while it runs: the OCI GC
//! does not sweep such blobs and the base GC does not collect them (they have a holder), and a
//! concurrent import of the same blob holds it under its own name.
//!
//! - Storing: blobs the store has are held in one locked step ([`ImportSession::hold_present`]);
//!   the others are staged (streamed and verified, in parallel) and committed in batches, each
//!   one locked step with one extra-data and one index transaction
//!   ([`ImportSession::commit_staged`], [`Store::commit_staged`]).
//! - Commit ([`ImportSession::commit`]): the hold on every blob the import reached passes to
//!   `owner.oci` in one extra-data batch, then the refs and referrer-index entries land in one
//!   atomic key/value batch, then the import lets go of what it touched but did not reach (it
//!   goes, unless something else holds it), and its `oci.import` entry goes last.
//! - Refusal or error (dropping the session uncommitted): the import lets go of every blob it
//!   touched, deleting what nothing else holds, and removes its entry. What the store had before
//!   keeps its other marks and references, so the store's full dump is what it was.
//! - Crash: the `oci.import` entry is left; the next OCI GC, which holds the GC lock exclusive
//!   and so knows no import is running, lets go for it
//!   ([`OciStore::clear_stale_import_holds`](super::OciStore)).

use std::collections::HashSet;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use super::error::{OciError, OciResult};
use super::FLAVOUR;
use crate::store::{StagedBlob, Store, StoreResult, WriteOptions};
use crate::traits::{BlobRecord, BlobStore, Digest, ExtraData, Index, KvOp, KvStore};

/// Key/value data type of the entries that record running (or crashed) imports.
pub const IMPORT_DATA_TYPE: &str = "oci.import";
/// Holder-name prefix of imports: an import's blobs carry `owner.oci-import.<id>`.
pub const IMPORT_HOLDER_PREFIX: &str = "oci-import.";

/// The holder name of the import recorded under `id`.
pub fn import_holder(id: &str) -> String {
    format!("{IMPORT_HOLDER_PREFIX}{id}")
}

#[derive(Serialize)]
struct ImportRecord {
    pid: u32,
    started_unix_ms: u128,
}

/// An id no other import of any process has: pid, time and a per-process counter, all in
/// characters valid in extra-data type names.
fn unique_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{}-{nanos}-{count}", std::process::id())
}

pub struct ImportSession<'s, B, I, X, K>
where
    B: BlobStore,
    I: Index,
    X: ExtraData,
    K: KvStore,
{
    store: &'s Store<B, I, X, K>,
    id: String,
    holder: String,
    /// Blobs the holder's mark may be on, in the order they were touched.
    touched: Vec<Digest>,
    seen: HashSet<Digest>,
    committed: bool,
}

impl<'s, B: BlobStore, I: Index, X: ExtraData, K: KvStore> ImportSession<'s, B, I, X, K> {
    /// Records the import (`oci.import/<id>`); the caller holds the OCI mutation lock.
    pub fn begin(store: &'s Store<B, I, X, K>) -> OciResult<Self> {
        let id = unique_id();
        let record = ImportRecord {
            pid: std::process::id(),
            started_unix_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or_default(),
        };
        let value = serde_json::to_vec(&record).map_err(|e| OciError::Invalid(e.to_string()))?;
        store.put_data(IMPORT_DATA_TYPE, &id, &value, None)?;
        crate::crash_point!("oci.import.after-begin");
        Ok(ImportSession {
            store,
            holder: import_holder(&id),
            id,
            touched: Vec::new(),
            seen: HashSet::new(),
            committed: false,
        })
    }

    /// The store the import writes into.
    pub fn store(&self) -> &'s Store<B, I, X, K> {
        self.store
    }

    fn touch(&mut self, digest: &Digest) {
        if self.seen.insert(digest.clone()) {
            self.touched.push(digest.clone());
        }
    }

    /// Whether the store has `digest` indexed with this size (for deciding to skip content;
    /// [`ImportSession::hold_present`] decides for good).
    pub fn has(&self, digest: &Digest, size: u64) -> StoreResult<bool> {
        Ok(matches!(self.store.index().get(digest)?, Some(record) if record.size == size))
    }

    /// Holds every blob of `wanted` (digest, expected size) that the store already has, in one
    /// locked step; returns which it holds. The others are for the caller to stream in.
    pub fn hold_present(&mut self, wanted: &[(Digest, u64)]) -> StoreResult<Vec<bool>> {
        // Noted before the marks land, so that letting go after an error removes them.
        for (digest, _) in wanted {
            self.touch(digest);
        }
        let wanted: Vec<(Digest, Option<u64>)> = wanted
            .iter()
            .map(|(d, size)| (d.clone(), Some(*size)))
            .collect();
        let held = self.store.claim_existing_many(&wanted, &self.holder)?;
        crate::crash_point!("oci.import.after-hold-present");
        Ok(held.iter().map(Option::is_some).collect())
    }

    /// Streams `content` into staging, verified against the expected digest and size; nothing
    /// is held or visible until [`ImportSession::commit_staged`]. Safe to call from several
    /// threads at once.
    pub fn stage(&self, content: impl Read, options: &WriteOptions) -> StoreResult<StagedBlob<'s>> {
        self.store.stage(content, options)
    }

    /// Makes staged blobs part of the store under this import's hold, all in one locked step.
    pub fn commit_staged(&mut self, staged: Vec<StagedBlob<'s>>) -> StoreResult<Vec<BlobRecord>> {
        for blob in &staged {
            self.touch(blob.digest());
        }
        crate::crash_point!("oci.import.before-commit-batch");
        self.store.commit_staged(staged, &self.holder)
    }

    /// Makes the import permanent: the hold on every blob in `reached` passes to `owner.oci`
    /// (one extra-data batch), then `batch` (the refs and referrer-index entries) lands in one
    /// atomic key/value batch, then the import lets go of what it touched but did not reach.
    pub fn commit(mut self, reached: &[Digest], batch: &[KvOp]) -> OciResult<()> {
        // Our own mark keeps every reached blob; only an explicit delete can take it.
        let missing = self.store.transfer_holds(reached, &self.holder, FLAVOUR)?;
        if let Some(digest) = missing.into_iter().next() {
            return Err(OciError::BlobVanished {
                digest,
                reason: "deleted explicitly during the import; nothing was imported".to_string(),
            });
        }
        crate::crash_point!("oci.import.before-refs");
        self.store.write_data_batch(batch)?;
        crate::crash_point!("oci.import.after-refs");
        self.committed = true;
        // The import has happened. If letting go fails, the entry stays and the next OCI GC
        // lets go for us; the blobs we reached are held by `owner.oci` either way.
        let reached: HashSet<&Digest> = reached.iter().collect();
        let unreached: Vec<Digest> = self
            .touched
            .iter()
            .filter(|digest| !reached.contains(digest))
            .cloned()
            .collect();
        if self.store.release_many(&unreached, &self.holder).is_ok() {
            crate::crash_point!("oci.import.after-release");
            let _ = self.store.remove_data(IMPORT_DATA_TYPE, &self.id);
        }
        Ok(())
    }

    /// Lets go of every blob this import holds (those carrying its mark), in one locked step.
    fn release_all(&self) -> StoreResult<()> {
        self.store
            .release_many(&self.touched, &self.holder)
            .map(drop)
    }
}

impl<B: BlobStore, I: Index, X: ExtraData, K: KvStore> Drop for ImportSession<'_, B, I, X, K> {
    /// A session dropped uncommitted is a refused or failed import: let go of everything,
    /// then forget the import. Best effort: a failure here leaves the entry, and the next OCI
    /// GC finishes the job.
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        if self.release_all().is_ok() {
            let _ = self.store.remove_data(IMPORT_DATA_TYPE, &self.id);
        }
    }
}
