//! `Store<B, I, X, K>`: the generic base store, composing one implementation of each trait.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::error::StoreResult;
use super::flavour_lock::FlavourLock;
use super::locks::{LockGuard, LockMode, LockPaths};
use crate::traits::{BlobStore, ExtraData, Index, KvStore};

/// The base store. Every operation that spans traits lives here, in the order DESIGN.md gives
/// (content before index; index before dependants on delete), under the store's locks.
///
/// Generic so embedders can use concrete backend types; [`super::DynStore`] is the same store
/// over trait objects chosen at run time.
pub struct Store<B, I, X, K> {
    pub(super) dir: PathBuf,
    pub(super) blobs: B,
    pub(super) index: I,
    pub(super) extra: X,
    pub(super) kv: K,
    pub(super) locks: LockPaths,
    // Held for the life of the store: shared, so that conversion and migration, which take it
    // exclusive, wait until no process has the store open.
    _store_lock: LockGuard,
}

impl<B: BlobStore, I: Index, X: ExtraData, K: KvStore> Store<B, I, X, K> {
    /// Opens a store over already opened backends, taking the shared store lock.
    pub fn from_parts(dir: &Path, blobs: B, index: I, extra: X, kv: K) -> StoreResult<Self> {
        let store_lock = LockGuard::acquire(&LockPaths::store_lock(dir), LockMode::Shared)?;
        Self::from_parts_locked(dir, blobs, index, extra, kv, store_lock)
    }

    pub(super) fn from_parts_locked(
        dir: &Path,
        blobs: B,
        index: I,
        extra: X,
        kv: K,
        store_lock: LockGuard,
    ) -> StoreResult<Self> {
        Ok(Store {
            dir: dir.to_path_buf(),
            locks: LockPaths::new(dir)?,
            blobs,
            index,
            extra,
            kv,
            _store_lock: store_lock,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The underlying backends, for flavours and tools that need direct access. Writes made
    /// through them bypass the store's locks and ordering: prefer the store's methods.
    pub fn blob_store(&self) -> &B {
        &self.blobs
    }
    pub fn index(&self) -> &I {
        &self.index
    }
    pub fn extra_data(&self) -> &X {
        &self.extra
    }
    pub fn kv_store(&self) -> &K {
        &self.kv
    }

    pub fn lock_paths(&self) -> &LockPaths {
        &self.locks
    }

    /// The GC lock of a flavour (`gc-<flavour>`, with its turnstile): shared by the flavour's
    /// mutations, exclusive (bounded wait) by its GC. See [`FlavourLock`].
    pub fn flavour_lock(&self, flavour: &str) -> FlavourLock<'_> {
        FlavourLock::new(&self.locks, flavour)
    }

    /// A named lock of this store (e.g. `gc-oci`, a flavour's GC lock), blocking.
    pub fn named_lock(&self, name: &str, mode: LockMode) -> StoreResult<LockGuard> {
        LockGuard::acquire(&self.locks.named(name), mode)
    }
}

pub(super) fn now_unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
