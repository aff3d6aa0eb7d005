//! Deleting blobs with their dependants, in the order DESIGN.md gives.

use super::base::Store;
use super::error::StoreResult;
use super::locks::{LockGuard, LockMode};
use crate::traits::{BlobStore, Digest, ExtraData, Index, KvStore};

/// Extra-data type prefix of the owner marks flavours put on the blobs they hold.
pub const OWNER_MARK_PREFIX: &str = "owner.";

impl<B: BlobStore, I: Index, X: ExtraData, K: KvStore> Store<B, I, X, K> {
    /// Deletes a blob: the index record first (the delete is committed there), then extra data
    /// and key/value entries that reference it, then the content. A crash in between leaves
    /// only orphans, which `gc` and `fsck --repair` remove. Returns whether it was indexed.
    pub fn delete(&self, digest: &Digest) -> StoreResult<bool> {
        let _lock = LockGuard::acquire(&self.locks.digest_lock(digest), LockMode::Exclusive)?;
        self.delete_locked(digest)
    }

    /// The cascade itself; the caller holds the digest lock exclusively.
    pub(super) fn delete_locked(&self, digest: &Digest) -> StoreResult<bool> {
        let was_indexed = self.index.remove(digest)?;
        self.extra.remove_all(digest)?;
        self.kv.remove_referencing(digest)?;
        self.blobs.delete(digest)?;
        Ok(was_indexed)
    }

    /// Deletes a blob only if no flavour holds it (no owner mark) and no key/value entry
    /// references it, deciding under the digest lock so a concurrent mark or reference either
    /// lands first (and keeps it) or finds it gone. Returns whether it was deleted.
    pub fn delete_if_unreferenced(&self, digest: &Digest) -> StoreResult<bool> {
        let _lock = LockGuard::acquire(&self.locks.digest_lock(digest), LockMode::Exclusive)?;
        if self.index.get(digest)?.is_none() || self.is_held_locked(digest)? {
            return Ok(false);
        }
        self.delete_locked(digest)
    }

    /// Lets go of `holder`'s hold on a blob (its owner mark `owner.<holder>`) and deletes the
    /// blob if that leaves no holder and no key/value reference: decided and done in one step
    /// under the blob's exclusive digest lock. The delete removes the index record first, so a
    /// crash part-way leaves only orphans for base GC, never an indexed blob nobody holds.
    /// Returns whether the blob was deleted.
    pub fn release(&self, digest: &Digest, holder: &str) -> StoreResult<bool> {
        let _lock = LockGuard::acquire(&self.locks.digest_lock(digest), LockMode::Exclusive)?;
        let mark = format!("{OWNER_MARK_PREFIX}{holder}");
        if self.index.get(digest)?.is_none() {
            // Nothing to delete; a mark left here is orphan data (a crash mid-delete).
            self.extra.remove(digest, &mark)?;
            return Ok(false);
        }
        let other_holder = self
            .extra
            .types(digest)?
            .iter()
            .any(|t| t.starts_with(OWNER_MARK_PREFIX) && *t != mark);
        if other_holder || !self.kv.referencing(digest)?.is_empty() {
            self.extra.remove(digest, &mark)?;
            return Ok(false);
        }
        self.delete_locked(digest)
    }

    /// Whether any holder keeps the blob: an owner mark or a key/value reference. The caller
    /// holds the digest lock.
    pub(super) fn is_held_locked(&self, digest: &Digest) -> StoreResult<bool> {
        let owned = self
            .extra
            .types(digest)?
            .iter()
            .any(|t| t.starts_with(OWNER_MARK_PREFIX));
        Ok(owned || !self.kv.referencing(digest)?.is_empty())
    }
}
