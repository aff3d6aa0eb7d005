//! Extra data and key/value entries, attached to blobs under the blob's shared digest lock so
//! that nothing is attached to a blob a concurrent delete is removing.

use std::collections::BTreeSet;

use super::base::Store;
use super::delete::DELETE_BATCH;
use super::error::{StoreError, StoreResult};
use super::holder::Holder;
use super::locks::{LockGuard, LockMode};
use crate::traits::{Digest, ExtraData, ExtraOp, Index, KvEntry, KvKey, KvOp, KvStore};

impl Store {
    fn require_blob(&self, digest: &Digest, what: &str) -> StoreResult<()> {
        if self.index.get(digest)?.is_none() {
            return Err(StoreError::MissingBlob {
                what: what.to_string(),
                digest: digest.clone(),
            });
        }
        Ok(())
    }

    fn shared_digest_lock(&self, digest: &Digest) -> StoreResult<LockGuard> {
        LockGuard::acquire(&self.locks.digest_lock(digest), LockMode::Shared)
    }

    /// Attaches extra data of `data_type` to a blob, replacing any there; fails with
    /// [`StoreError::MissingBlob`] when the blob is not in the store, or [`StoreError::Invalid`]
    /// for a data type that is not 1-128 characters of `[A-Za-z0-9._-:/+]`.
    pub fn set_extra(&self, digest: &Digest, data_type: &str, value: &[u8]) -> StoreResult<()> {
        validate_name("extra data type", data_type)?;
        let _lock = self.shared_digest_lock(digest)?;
        self.require_blob(digest, &format!("extra data {data_type:?}"))?;
        Ok(self.extra.set(digest, data_type, value)?)
    }

    /// The extra data of `data_type` attached to a blob, or `None`.
    pub fn get_extra(&self, digest: &Digest, data_type: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.extra.get(digest, data_type)?)
    }

    /// Removes the extra data of `data_type` from a blob; returns whether it was there.
    pub fn remove_extra(&self, digest: &Digest, data_type: &str) -> StoreResult<bool> {
        Ok(self.extra.remove(digest, data_type)?)
    }

    /// The data types of the extra data attached to a blob.
    pub fn extra_types(&self, digest: &Digest) -> StoreResult<Vec<String>> {
        Ok(self.extra.types(digest)?)
    }

    /// Every blob's extra data of `data_type`, in digest order. Entries a crash left behind a
    /// deleted blob are listed too (orphans for base GC): check the blob when it matters.
    pub fn extra_of_type(&self, data_type: &str) -> StoreResult<Vec<(Digest, Vec<u8>)>> {
        Ok(self.extra.entries_of_type(data_type)?)
    }

    /// Read-modify-write of the `data_type` extra data of each of `digests` that is indexed:
    /// `update` gets the current value and returns the new one (`None`: leave it), and the new
    /// values land in one extra-data batch. The digest locks are held EXCLUSIVELY for the
    /// whole step, so two updates of one blob never both read the old value (the second would
    /// drop the first's change), and a delete waits. `update` runs under the locks: local
    /// work only, and no lock of the store taken in it.
    pub fn update_extra_many(
        &self,
        digests: &[Digest],
        data_type: &str,
        mut update: impl FnMut(&Digest, Option<Vec<u8>>) -> Option<Vec<u8>>,
    ) -> StoreResult<()> {
        validate_name("extra data type", data_type)?;
        if digests.is_empty() {
            return Ok(());
        }
        let _locks = self.locks.lock_digests(digests, LockMode::Exclusive)?;
        let mut ops = Vec::new();
        for digest in digests {
            if self.index.get(digest)?.is_none() {
                continue;
            }
            let Some(value) = update(digest, self.extra.get(digest, data_type)?) else {
                continue;
            };
            ops.push(ExtraOp::Set {
                digest: digest.clone(),
                data_type: data_type.to_string(),
                value,
            });
        }
        self.extra.write_batch(&ops)?;
        Ok(())
    }

    /// Marks a blob as held by `holder` (its owner mark).
    pub fn mark_owner(&self, digest: &Digest, holder: &Holder) -> StoreResult<()> {
        self.set_extra(digest, &holder.mark(), b"")
    }

    /// Drops a flavour's mark, and only that: a blob left with no holder stays indexed until
    /// base GC collects it. [`Store::release`] drops the mark and deletes such a blob in one
    /// step; prefer it. Returns whether the mark was there.
    pub fn unmark_owner(&self, digest: &Digest, holder: &Holder) -> StoreResult<bool> {
        let _lock = self.shared_digest_lock(digest)?;
        Ok(self.extra.remove(digest, &holder.mark())?)
    }

    /// Blobs `holder` holds.
    pub fn owned_by(&self, holder: &Holder) -> StoreResult<Vec<Digest>> {
        Ok(self
            .extra
            .entries_of_type(&holder.mark())?
            .into_iter()
            .map(|(digest, _)| digest)
            .collect())
    }

    /// The key/value entry `data_type`/`key`, or `None` when there is none.
    pub fn get_data(&self, data_type: &str, key: &str) -> StoreResult<Option<KvEntry>> {
        Ok(self.kv.get(data_type, key)?)
    }

    /// Sets an entry unconditionally; a referenced blob must be in the store. Returns the new
    /// version.
    pub fn put_data(
        &self,
        data_type: &str,
        key: &str,
        value: &[u8],
        blob: Option<&Digest>,
    ) -> StoreResult<u64> {
        self.set_data(data_type, key, value, blob, None, false)
    }

    /// Sets an entry only if its version is `expected_version` (`None`: it must not exist).
    pub fn compare_and_set_data(
        &self,
        data_type: &str,
        key: &str,
        value: &[u8],
        blob: Option<&Digest>,
        expected_version: Option<u64>,
    ) -> StoreResult<u64> {
        self.set_data(data_type, key, value, blob, expected_version, true)
    }

    fn set_data(
        &self,
        data_type: &str,
        key: &str,
        value: &[u8],
        blob: Option<&Digest>,
        expected_version: Option<u64>,
        conditional: bool,
    ) -> StoreResult<u64> {
        validate_name("data type", data_type)?;
        validate_key(key)?;
        // No other writer of this entry comes between our read of it and our write, so the
        // blob it replaces is the one read (DESIGN.md: the last holder letting go and the
        // delete are one step).
        let _entry =
            LockGuard::acquire(&self.locks.entry_lock(data_type, key), LockMode::Exclusive)?;
        // The blob the entry references until now: it loses a holder if the new entry does
        // not reference it too.
        let replaced = self
            .kv
            .get(data_type, key)?
            .and_then(|entry| entry.blob)
            .filter(|old| Some(old) != blob);
        // The new blob's lock shared (it must not go while the entry is written), the
        // replaced blob's exclusive: moving the entry off a blob and deciding that blob are
        // one step, as in `remove_data`.
        let _locks = self.lock_for_replacement(blob, replaced.as_ref())?;
        if let Some(digest) = blob {
            self.require_blob(digest, &format!("key {data_type}/{key}"))?;
        }
        let version = if conditional {
            self.kv
                .compare_and_set(data_type, key, value, blob, expected_version)?
        } else {
            self.kv.put(data_type, key, value, blob)?
        };
        if let Some(old) = replaced {
            // A crash right before this step leaves an unheld blob, which base GC collects.
            self.delete_if_unheld_locked(&old)?;
        }
        Ok(version)
    }

    /// The digest locks for pointing an entry at `new` instead of `replaced`: `new`'s stripe
    /// shared, `replaced`'s exclusive (one stripe for both: exclusive), in stripe order.
    fn lock_for_replacement(
        &self,
        new: Option<&Digest>,
        replaced: Option<&Digest>,
    ) -> StoreResult<Vec<LockGuard>> {
        let mut wanted: Vec<(std::path::PathBuf, LockMode)> = Vec::new();
        if let Some(digest) = replaced {
            wanted.push((self.locks.digest_lock(digest), LockMode::Exclusive));
        }
        if let Some(digest) = new {
            let path = self.locks.digest_lock(digest);
            if !wanted.iter().any(|(held, _)| *held == path) {
                wanted.push((path, LockMode::Shared));
            }
        }
        wanted.sort_by(|a, b| a.0.cmp(&b.0));
        wanted
            .into_iter()
            .map(|(path, mode)| LockGuard::acquire(&path, mode))
            .collect()
    }

    /// Removes an entry. When it references a blob, the removal and the decision about the
    /// blob are one step under the blob's exclusive digest lock: if the entry was the blob's
    /// last holder (no owner mark, no other entry), the blob is deleted with it, so nothing
    /// leaks (a flavour's GC may have let go of the blob while this entry held it).
    pub fn remove_data(&self, data_type: &str, key: &str) -> StoreResult<bool> {
        let _entry =
            LockGuard::acquire(&self.locks.entry_lock(data_type, key), LockMode::Exclusive)?;
        loop {
            let Some(entry) = self.kv.get(data_type, key)? else {
                return Ok(false);
            };
            let Some(digest) = entry.blob else {
                // No blob, no holder to let go of; writers of this entry wait for its lock.
                return Ok(self.kv.remove(data_type, key)?);
            };
            let _lock = LockGuard::acquire(&self.locks.digest_lock(&digest), LockMode::Exclusive)?;
            let unchanged = self
                .kv
                .get(data_type, key)?
                .is_some_and(|current| current.blob.as_ref() == Some(&digest));
            if !unchanged {
                // Rewritten or removed since it was read: decide again, under the right lock.
                continue;
            }
            let removed = self.kv.remove(data_type, key)?;
            self.delete_if_unheld_locked(&digest)?;
            return Ok(removed);
        }
    }

    /// Removes several entries as one step, all or nothing, keeping the rule of
    /// [`Store::remove_data`]: an entry that was a blob's last holder takes the blob with it.
    /// Every entry must be there: one that is not refuses the whole call
    /// ([`StoreError::EntryNotFound`], naming it) and nothing is removed. The digest locks of
    /// every referenced blob are taken exclusively in stripe order; under them the entries are
    /// read again (one rewritten meanwhile to reference another blob makes it start over), all
    /// of them are removed in one key/value transaction, and then each blob they referenced is
    /// deleted if nothing holds it any more, in batches (`Store::delete_many_locked`). A key
    /// given twice is removed once.
    pub fn remove_data_many(&self, keys: &[KvKey]) -> StoreResult<()> {
        let keys: BTreeSet<&KvKey> = keys.iter().collect();
        let _entries = self
            .locks
            .lock_entries(keys.iter().map(|k| (k.data_type.as_str(), k.key.as_str())))?;
        loop {
            let referenced = self.blobs_of_entries(&keys)?;
            let digests: Vec<Digest> = referenced.iter().cloned().collect();
            let _locks = self.locks.lock_digests(&digests, LockMode::Exclusive)?;
            if self.blobs_of_entries(&keys)? != referenced {
                // Rewritten since it was read: decide again, under the right locks.
                continue;
            }
            let ops: Vec<KvOp> = keys
                .iter()
                .map(|key| KvOp::Remove {
                    data_type: key.data_type.clone(),
                    key: key.key.clone(),
                })
                .collect();
            self.kv.write_batch(&ops)?;
            for batch in digests.chunks(DELETE_BATCH) {
                let mut unheld = Vec::new();
                for digest in batch {
                    if self.index.get(digest)?.is_some() && !self.is_held_locked(digest)? {
                        unheld.push(digest.clone());
                    }
                }
                self.delete_many_locked(&unheld)?;
            }
            return Ok(());
        }
    }

    /// The blobs these entries reference; an entry that is not there is an error naming it.
    fn blobs_of_entries(&self, keys: &BTreeSet<&KvKey>) -> StoreResult<BTreeSet<Digest>> {
        let mut digests = BTreeSet::new();
        for key in keys {
            let entry = self.kv.get(&key.data_type, &key.key)?.ok_or_else(|| {
                StoreError::EntryNotFound {
                    data_type: key.data_type.clone(),
                    key: key.key.clone(),
                }
            })?;
            digests.extend(entry.blob);
        }
        Ok(digests)
    }

    /// The key/value entries of `data_type` whose key starts with `key_prefix` (`""` for all), as
    /// (key, entry) in key order.
    pub fn list_data(
        &self,
        data_type: &str,
        key_prefix: &str,
    ) -> StoreResult<Vec<(String, KvEntry)>> {
        Ok(self.kv.list(data_type, key_prefix)?)
    }

    /// The key/value entries that reference `digest`, sorted.
    pub fn data_referencing(&self, digest: &Digest) -> StoreResult<Vec<KvKey>> {
        Ok(self.kv.referencing(digest)?)
    }
}

/// Data types name namespaces (`oci.ref`, `owner.oci`): short, printable, no separators that
/// backends use internally.
pub(super) fn validate_name(what: &str, name: &str) -> StoreResult<()> {
    let valid = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:/+".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "{what} {name:?}: use 1-128 characters of [A-Za-z0-9._-:/+]"
        )))
    }
}

pub(super) fn validate_key(key: &str) -> StoreResult<()> {
    if key.is_empty() || key.len() > 4096 || key.contains('\0') {
        return Err(StoreError::Invalid(format!(
            "key {key:?}: must be 1-4096 bytes without NUL"
        )));
    }
    Ok(())
}
