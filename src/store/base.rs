//! `Store`: the base store, composing one backend of each role, chosen at run time.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::StoreResult;
use super::flavour_lock::FlavourLock;
use super::locks::{LockGuard, LockMode, LockPaths};
use crate::traits::{BlobStore, ExtraData, Index, KvStore};

/// The base store. Every operation that spans traits lives here, in the order DESIGN.md gives
/// (content before index; index before dependants on delete), under the store's locks.
///
/// Concrete, over trait objects: the backends are chosen at run time (`store.json`, the
/// config, `--backend`), and one type names every store (docs/ARCHITECTURE.md, "One store
/// type", has the measurement behind the choice).
pub struct Store {
    pub(super) dir: PathBuf,
    pub(super) blobs: Arc<dyn BlobStore>,
    pub(super) index: Arc<dyn Index>,
    pub(super) extra: Arc<dyn ExtraData>,
    pub(super) kv: Arc<dyn KvStore>,
    pub(super) locks: LockPaths,
    /// What this process recorded of last uses (the throttle's memory).
    pub(super) use_records: std::sync::Mutex<super::last_used::UseRecords>,
    // Held for the life of the store: shared, so that conversion and migration, which take it
    // exclusive, wait until no process has the store open.
    _store_lock: LockGuard,
}

impl Store {
    /// Opens a store over already opened backends, taking the shared store lock.
    pub fn from_parts(
        dir: &Path,
        blobs: Arc<dyn BlobStore>,
        index: Arc<dyn Index>,
        extra: Arc<dyn ExtraData>,
        kv: Arc<dyn KvStore>,
    ) -> StoreResult<Self> {
        let store_lock = LockGuard::acquire(&LockPaths::store_lock(dir), LockMode::Shared)?;
        Self::from_parts_locked(dir, blobs, index, extra, kv, store_lock)
    }

    pub(super) fn from_parts_locked(
        dir: &Path,
        blobs: Arc<dyn BlobStore>,
        index: Arc<dyn Index>,
        extra: Arc<dyn ExtraData>,
        kv: Arc<dyn KvStore>,
        store_lock: LockGuard,
    ) -> StoreResult<Self> {
        Ok(Store {
            dir: dir.to_path_buf(),
            locks: LockPaths::new(dir)?,
            blobs,
            index,
            extra,
            kv,
            use_records: std::sync::Mutex::default(),
            _store_lock: store_lock,
        })
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Paths of the store's lock files.
    pub fn lock_paths(&self) -> &LockPaths {
        &self.locks
    }

    /// The GC lock of a flavour (`gc-<flavour>`, with its turnstile): shared by the flavour's
    /// mutations, exclusive (bounded wait) by its GC. See `FlavourLock`.
    pub fn flavour_lock(&self, flavour: &str) -> FlavourLock<'_> {
        FlavourLock::new(&self.locks, flavour)
    }

    /// A named lock of this store (e.g. `gc-oci`, a flavour's GC lock), blocking.
    pub fn named_lock(&self, name: &str, mode: LockMode) -> StoreResult<LockGuard> {
        LockGuard::acquire(&self.locks.named(name), mode)
    }
}

/// The raw backends. Writes made through them bypass the store's locks and ordering, so they
/// are no part of the public API: crate-internal, and public only with the `test-support`
/// feature, for the conformance and fault suites and the benches that damage or fill a store
/// on purpose.
macro_rules! raw_accessors {
    ($vis:vis) => {
        #[cfg_attr(
            not(feature = "test-support"),
            allow(dead_code, reason = "every path in the crate goes through the store's methods")
        )]
        impl Store {
            /// The blob store, bypassing the store's locks and ordering.
            $vis fn blob_store(&self) -> &Arc<dyn BlobStore> {
                &self.blobs
            }
            /// The index, bypassing the store's locks and ordering.
            $vis fn index(&self) -> &Arc<dyn Index> {
                &self.index
            }
            /// The extra data, bypassing the store's locks and ordering.
            $vis fn extra_data(&self) -> &Arc<dyn ExtraData> {
                &self.extra
            }
            /// The key/value store, bypassing the store's locks and ordering.
            $vis fn kv_store(&self) -> &Arc<dyn KvStore> {
                &self.kv
            }
        }
    };
}

#[cfg(feature = "test-support")]
raw_accessors!(pub);
#[cfg(not(feature = "test-support"))]
raw_accessors!(pub(crate));
