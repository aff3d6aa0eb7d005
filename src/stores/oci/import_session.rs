//! One import's hold on what it stores, so that the import is all or nothing.
//!
//! Each import has its own holder name, `oci-import.<id>`, and records itself as the key/value
//! entry `oci.import/<id>` before it stores anything. Every blob it writes or finds present gets
//! that holder's mark (`owner.oci-import.<id>`), never `owner.oci`, while it runs: the OCI GC
//! does not sweep such blobs and the base GC does not collect them (they have a holder), and a
//! concurrent import of the same blob holds it under its own name.
//!
//! - Commit ([`ImportSession::commit`]): every blob the import reached gets `owner.oci`, then the
//!   refs and referrer-index entries land in one atomic key/value batch, then the import lets go
//!   of every blob it touched (what it reached stays: `owner.oci` holds it; what it streamed but
//!   did not reach goes, unless something else holds it), and its `oci.import` entry goes last.
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
use crate::store::{Store, StoreResult, WriteOptions, OWNER_MARK_PREFIX};
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
        Ok(ImportSession {
            store,
            holder: import_holder(&id),
            id,
            touched: Vec::new(),
            seen: HashSet::new(),
            committed: false,
        })
    }

    fn touch(&mut self, digest: &Digest) {
        if self.seen.insert(digest.clone()) {
            self.touched.push(digest.clone());
        }
    }

    /// Whether the store has `digest` already (for the report; not a decision).
    pub fn has(&self, digest: &Digest) -> StoreResult<bool> {
        self.store.contains(digest)
    }

    /// Streams `content` into the store under this import's hold (verified against the
    /// expected digest and size), or, when the store has the blob, holds the stored copy.
    pub fn write(&mut self, content: impl Read, options: &WriteOptions) -> StoreResult<BlobRecord> {
        // Noted before the write: a write that fails after its mark landed leaves the mark,
        // which letting go removes.
        if let Some(digest) = &options.expected_digest {
            self.touch(digest);
        }
        let record = self.store.write_owned(content, options, &self.holder)?;
        self.touch(&record.digest);
        Ok(record)
    }

    /// Makes the import permanent: `owner.oci` on every blob in `reached`, then `batch` (the
    /// refs and referrer-index entries) in one atomic key/value batch, then lets go.
    pub fn commit(mut self, reached: &[Digest], batch: &[KvOp]) -> OciResult<()> {
        for digest in reached {
            // Our own mark keeps every reached blob; only an explicit delete can take it.
            if self.store.claim_existing(digest, FLAVOUR)?.is_none() {
                return Err(OciError::BlobVanished {
                    digest: digest.clone(),
                    reason: "deleted explicitly during the import; nothing was imported"
                        .to_string(),
                });
            }
        }
        self.store.write_data_batch(batch)?;
        self.committed = true;
        // The import has happened. If letting go fails, the entry stays and the next OCI GC
        // lets go for us; the blobs we reached are held by `owner.oci` either way.
        if self.release_all().is_ok() {
            let _ = self.store.remove_data(IMPORT_DATA_TYPE, &self.id);
        }
        Ok(())
    }

    /// Lets go of every blob this import may hold; the first error, after trying them all.
    fn release_all(&self) -> StoreResult<()> {
        let mark = format!("{OWNER_MARK_PREFIX}{}", self.holder);
        let mut first_error = None;
        for digest in &self.touched {
            let result = match self.store.get_extra(digest, &mark) {
                Ok(Some(_)) => self.store.release(digest, &self.holder).map(drop),
                Ok(None) => Ok(()),
                Err(error) => Err(error),
            };
            if let Err(error) = result {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
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
