//! Deleting blobs with their dependants, in the order DESIGN.md gives.

use std::collections::HashSet;

use super::base::Store;
use super::error::StoreResult;
use super::holder::Holder;
use super::locks::{LockGuard, LockMode};
use serde::Serialize;

use crate::traits::{BlobStore, Digest, ExtraData, ExtraOp, Index, KvKey, KvStore};

/// How many blobs a batched release or delete decides at once: their digest locks are held
/// together (in stripe order) and their deletes share one transaction per backend, so the
/// number bounds both the time others wait on those stripes and the memory of one step.
pub(super) const DELETE_BATCH: usize = 2048;

impl Store {
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
        crate::crash_point!("store.delete.after-index");
        self.extra.remove_all(digest)?;
        crate::crash_point!("store.delete.after-extra");
        self.kv.remove_referencing(digest)?;
        crate::crash_point!("store.delete.after-kv");
        self.blobs.delete(digest)?;
        Ok(was_indexed)
    }

    /// Deletes several blobs with the cascade of [`Store::delete_locked`], each step batched
    /// (one transaction per backend for all of them), in the same order: the index records
    /// first (the delete of every blob is committed there), then extra data, key/value entries
    /// referencing them, then content. A crash between steps leaves only orphans. The caller
    /// holds every digest lock exclusively. Returns how many were indexed.
    pub(super) fn delete_many_locked(&self, digests: &[Digest]) -> StoreResult<u64> {
        if digests.is_empty() {
            return Ok(0);
        }
        let was_indexed = self.index.remove_many(digests)?;
        crate::crash_point!("store.delete-many.after-index");
        self.extra.remove_all_many(digests)?;
        crate::crash_point!("store.delete-many.after-extra");
        self.kv.remove_referencing_many(digests)?;
        crate::crash_point!("store.delete-many.after-kv");
        self.blobs.delete_many(digests)?;
        Ok(was_indexed)
    }

    /// [`Store::release`] of many blobs, with few commits: in batches of `DELETE_BATCH` (2048),
    /// whose digest locks are taken exclusively in stripe order, each blob that carries
    /// `holder`'s mark is decided under its lock as `release` decides it: the marks of the
    /// blobs that stay go in one extra-data batch, and the blobs left with no holder are
    /// deleted together (`Store::delete_many_locked`; their mark goes with the rest of their
    /// extra data). A blob without the mark is left as it is (`Absent`: this holder had nothing
    /// to let go of), so an unheld blob the caller never held is not taken. Returns what
    /// happened to each digest, in order; a digest given twice is released once.
    pub fn release_many(&self, digests: &[Digest], holder: &Holder) -> StoreResult<Vec<Release>> {
        let mark = holder.mark();
        let mut outcomes = Vec::with_capacity(digests.len());
        let mut seen = HashSet::new();
        for batch in digests.chunks(DELETE_BATCH) {
            let _locks = self.locks.lock_digests(batch, LockMode::Exclusive)?;
            // What decides each blob, read for the whole batch at once under its locks: its
            // extra data types (its marks, and whether it carries this holder's), its index
            // record, the entries referencing it.
            let types = self.extra.types_many(batch)?;
            let records = self.index.get_many(batch)?;
            let entries = self.kv.referencing_many(batch)?;
            let mut doomed = Vec::new();
            let mut marks_to_drop = Vec::new();
            for (((digest, types), record), entries) in
                batch.iter().zip(types).zip(records).zip(entries)
            {
                if !seen.insert(digest) {
                    outcomes.push(Release::Absent);
                    continue;
                }
                if !types.contains(&mark) {
                    outcomes.push(Release::Absent);
                    continue;
                }
                if record.is_none() {
                    // Orphan data (a crash mid-delete): the mark goes, nothing else is there.
                    marks_to_drop.push(digest.clone());
                    outcomes.push(Release::Absent);
                    continue;
                }
                let mut holders = Holders::of(types, entries);
                holders.owners.retain(|owner| owner != holder);
                if holders.is_empty() {
                    doomed.push(digest.clone());
                    outcomes.push(Release::Deleted);
                } else {
                    marks_to_drop.push(digest.clone());
                    outcomes.push(Release::Kept(holders));
                }
            }
            let removals: Vec<ExtraOp> = marks_to_drop
                .into_iter()
                .map(|digest| ExtraOp::Remove {
                    digest,
                    data_type: mark.clone(),
                })
                .collect();
            self.extra.write_batch(&removals)?;
            crate::crash_point!("store.release-many.after-marks");
            self.delete_many_locked(&doomed)?;
        }
        Ok(outcomes)
    }

    /// Deletes a blob only if no flavour holds it (no owner mark) and no key/value entry
    /// references it, deciding under the digest lock so a concurrent mark or reference either
    /// lands first (and keeps it) or finds it gone. Returns whether it was deleted.
    pub fn delete_if_unreferenced(&self, digest: &Digest) -> StoreResult<bool> {
        let _lock = LockGuard::acquire(&self.locks.digest_lock(digest), LockMode::Exclusive)?;
        self.delete_if_unheld_locked(digest)
    }

    /// Lets go of `holder`'s hold on a blob (its owner mark `owner.<holder>`) and deletes the
    /// blob if that leaves no holder and no key/value reference: decided and done in one step
    /// under the blob's exclusive digest lock. The delete removes the index record first, so a
    /// crash part-way leaves only orphans for base GC, never an indexed blob nobody holds.
    /// Says what happened: deleted, kept (and by what), or absent.
    pub fn release(&self, digest: &Digest, holder: &Holder) -> StoreResult<Release> {
        let _lock = LockGuard::acquire(&self.locks.digest_lock(digest), LockMode::Exclusive)?;
        // A mark on a blob that is not indexed is orphan data (a crash mid-delete): it goes too.
        self.extra.remove(digest, &holder.mark())?;
        crate::crash_point!("store.release.after-mark");
        self.decide_released_locked(digest)
    }

    /// Whether [`Store::release`] by `holder` would delete the blob: no other holder's mark is
    /// on it, and every key/value entry referencing it is one `goes_first` says the releasing
    /// flavour removes before it lets go (the OCI flavour's referrer entries, appc's remote
    /// records). For a dry run, whose report says what a real run would delete: read without
    /// the digest lock, so it may be out of date by the time it is returned.
    pub fn would_delete_on_release(
        &self,
        digest: &Digest,
        holder: &Holder,
        goes_first: impl Fn(&KvKey) -> bool,
    ) -> StoreResult<bool> {
        let holders = self.holders(digest)?;
        let other_owner = holders.owners.iter().any(|owner| owner != holder);
        let other_entry = holders.entries.iter().any(|key| !goes_first(key));
        Ok(!other_owner && !other_entry)
    }

    /// After a holder let go: deletes the blob if nothing holds it any more. The caller holds
    /// its digest lock exclusively.
    pub(super) fn decide_released_locked(&self, digest: &Digest) -> StoreResult<Release> {
        if self.index.get(digest)?.is_none() {
            return Ok(Release::Absent);
        }
        let holders = self.holders_locked(digest)?;
        if !holders.is_empty() {
            return Ok(Release::Kept(holders));
        }
        self.delete_locked(digest)?;
        Ok(Release::Deleted)
    }

    /// Deletes `digest` if it is indexed and nothing holds it; the caller holds its digest
    /// lock exclusively. Returns whether it was deleted.
    pub(super) fn delete_if_unheld_locked(&self, digest: &Digest) -> StoreResult<bool> {
        if self.index.get(digest)?.is_none() || self.is_held_locked(digest)? {
            return Ok(false);
        }
        self.delete_locked(digest)
    }

    /// What holds a blob now: its owner marks and the key/value entries referencing it. Read
    /// without the digest lock, so it may be out of date by the time it is returned.
    pub fn holders(&self, digest: &Digest) -> StoreResult<Holders> {
        self.holders_locked(digest)
    }

    /// [`Store::holders`]; under the caller's digest lock it is the current answer.
    fn holders_locked(&self, digest: &Digest) -> StoreResult<Holders> {
        Ok(Holders::of(
            self.extra.types(digest)?,
            self.kv.referencing(digest)?,
        ))
    }

    /// Whether any holder keeps the blob: an owner mark or a key/value reference. The caller
    /// holds the digest lock.
    pub(super) fn is_held_locked(&self, digest: &Digest) -> StoreResult<bool> {
        let owned = self.extra.types(digest)?.iter().any(|t| Holder::is_mark(t));
        Ok(owned || !self.kv.referencing(digest)?.is_empty())
    }
}

/// Who holds a blob (DESIGN.md, "Flavours share one store").
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Holders {
    /// Holders with an owner mark (`base`, `oci`, ...), sorted; serialized by name.
    pub owners: Vec<Holder>,
    /// Key/value entries that reference the blob, sorted.
    pub entries: Vec<KvKey>,
}

impl Holders {
    /// The holders a blob's extra data types (its owner marks) and referencing entries name.
    fn of(types: Vec<String>, entries: Vec<KvKey>) -> Holders {
        let owners = types
            .into_iter()
            .filter_map(|t| Holder::from_mark(&t))
            .collect();
        Holders { owners, entries }
    }

    pub fn is_empty(&self) -> bool {
        self.owners.is_empty() && self.entries.is_empty()
    }
}

impl std::fmt::Display for Holders {
    /// `owner.oci, entry tag/app:v1`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let owners = self.owners.iter().map(Holder::mark);
        let entries = self
            .entries
            .iter()
            .map(|key| format!("entry {}/{}", key.data_type, key.key));
        let all: Vec<String> = owners.chain(entries).collect();
        f.write_str(&all.join(", "))
    }
}

/// What [`Store::release`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Release {
    /// The holder was the last: the blob is gone.
    Deleted,
    /// Others still hold the blob; only this holder's mark went.
    Kept(Holders),
    /// The blob is not in the store.
    Absent,
}

impl Release {
    /// Whether the release deleted the blob.
    pub fn is_deleted(&self) -> bool {
        matches!(self, Release::Deleted)
    }
}
