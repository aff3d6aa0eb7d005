//! The key/value area in LMDB.
//!
//! Entries live in the `kv` database under the slot `data_type \0 key`, which keeps key order
//! and makes a key prefix a cursor range. LMDB keys are limited to 511 bytes, so a slot of
//! [`BUCKET_SLOT_LEN`] bytes or more is cut to that length and becomes a *bucket*: its value
//! holds every entry whose slot has that beginning, with their full keys, sorted. Cutting at a
//! fixed length keeps the order (a bucket sorts where its members would), so listing stays a
//! single ordered walk and keys of any length work.
//!
//! `kv_by_blob` maps `digest \0 sha256(data_type \0 key)` to `data_type \0 key` for every entry
//! that references a blob (hashed so the reverse key stays short whatever the key length).

use std::path::Path;
use std::sync::Arc;

use heed::{RoTxn, RwTxn};

use super::environment::{HeedResultExt, SharedEnv};
use super::keys::{
    check_no_separator, delete_prefix, digest_page, distinct_first_parts, first_part, join,
    prefix_of, rest_after_first_part, utf8,
};
use super::records::{decode_kv_bucket, decode_kv_entry, encode_kv_bucket, encode_kv_entry};
use crate::traits::{
    Algorithm, Digest, KvEntry, KvKey, KvOp, KvOpOutcome, KvStore, SortedDigests, StorageError,
    StorageResult,
};

/// Slots this long are buckets. Below LMDB's 511-byte key limit with room to spare.
const BUCKET_SLOT_LEN: usize = 400;

/// Data types are short names chosen by code; the limit keeps `data_type \0` inside a slot.
const MAX_DATA_TYPE_LEN: usize = 255;

pub struct LmdbKvStore {
    env: Arc<SharedEnv>,
}

fn slot_of(data_type: &str, key: &str) -> Vec<u8> {
    let mut slot = join(data_type.as_bytes(), key.as_bytes());
    slot.truncate(BUCKET_SLOT_LEN);
    slot
}

fn is_bucket(slot: &[u8]) -> bool {
    slot.len() == BUCKET_SLOT_LEN
}

fn reverse_key(digest: &Digest, data_type: &str, key: &str) -> Vec<u8> {
    let name = join(data_type.as_bytes(), key.as_bytes());
    let name_hash = Digest::of_bytes(Algorithm::Sha256, &name);
    join(digest.as_str().as_bytes(), name_hash.hex().as_bytes())
}

fn check_data_type(data_type: &str) -> StorageResult<()> {
    check_no_separator(data_type, "key/value data type")?;
    if data_type.len() > MAX_DATA_TYPE_LEN {
        return Err(StorageError::InvalidArgument(format!(
            "key/value data type {data_type:?} is longer than {MAX_DATA_TYPE_LEN} bytes"
        )));
    }
    Ok(())
}

/// Whether a data type could have been stored at all (reads of others find nothing).
fn is_storable_data_type(data_type: &str) -> bool {
    check_data_type(data_type).is_ok()
}

impl LmdbKvStore {
    /// Opens (creating if needed) the key/value area in `dir/meta/lmdb/`.
    pub fn open(dir: &Path) -> StorageResult<Self> {
        Ok(Self::with_environment(SharedEnv::open(
            &super::environment_dir(dir),
        )?))
    }

    pub(crate) fn with_environment(env: Arc<SharedEnv>) -> Self {
        LmdbKvStore { env }
    }

    /// The entries stored in a bucket slot (empty when the slot is free).
    fn bucket_in(&self, rtxn: &RoTxn, slot: &[u8]) -> StorageResult<Vec<(String, KvEntry)>> {
        let what = || format!("key/value bucket {}", String::from_utf8_lossy(slot));
        let stored = self.env.databases.kv.get(rtxn, slot).with_context(what)?;
        match stored {
            Some(bytes) => decode_kv_bucket(bytes, &what),
            None => Ok(Vec::new()),
        }
    }

    fn entry_in(&self, rtxn: &RoTxn, data_type: &str, key: &str) -> StorageResult<Option<KvEntry>> {
        let slot = slot_of(data_type, key);
        if is_bucket(&slot) {
            let bucket = self.bucket_in(rtxn, &slot)?;
            return Ok(bucket
                .into_iter()
                .find(|(member, _)| member == key)
                .map(|(_, entry)| entry));
        }
        let what = || format!("key/value entry {data_type}/{key}");
        let stored = self.env.databases.kv.get(rtxn, &slot).with_context(what)?;
        stored
            .map(|bytes| decode_kv_entry(bytes, &what))
            .transpose()
    }

    /// Writes `entry` (replacing `previous`, as read in this transaction) and keeps the
    /// reverse index in step.
    fn store_in(
        &self,
        wtxn: &mut RwTxn,
        data_type: &str,
        key: &str,
        entry: &KvEntry,
        previous: Option<&KvEntry>,
    ) -> StorageResult<()> {
        let databases = &self.env.databases;
        let context = || format!("writing key/value entry {data_type}/{key}");
        let slot = slot_of(data_type, key);
        if is_bucket(&slot) {
            let mut bucket = self.bucket_in(wtxn, &slot)?;
            match bucket.binary_search_by(|(member, _)| member.as_str().cmp(key)) {
                Ok(position) => bucket[position].1 = entry.clone(),
                Err(position) => bucket.insert(position, (key.to_string(), entry.clone())),
            }
            databases
                .kv
                .put(wtxn, &slot, &encode_kv_bucket(&bucket))
                .with_context(context)?;
        } else {
            databases
                .kv
                .put(wtxn, &slot, &encode_kv_entry(entry))
                .with_context(context)?;
        }
        if let Some(old_blob) = previous.and_then(|old| old.blob.as_ref()) {
            databases
                .kv_by_blob
                .delete(wtxn, &reverse_key(old_blob, data_type, key))
                .with_context(context)?;
        }
        if let Some(blob) = &entry.blob {
            databases
                .kv_by_blob
                .put(
                    wtxn,
                    &reverse_key(blob, data_type, key),
                    &join(data_type.as_bytes(), key.as_bytes()),
                )
                .with_context(context)?;
        }
        Ok(())
    }

    /// Removes an entry and its reverse-index key; returns whether it was there.
    fn remove_in(&self, wtxn: &mut RwTxn, data_type: &str, key: &str) -> StorageResult<bool> {
        let Some(previous) = self.entry_in(wtxn, data_type, key)? else {
            return Ok(false);
        };
        let databases = &self.env.databases;
        let context = || format!("removing key/value entry {data_type}/{key}");
        let slot = slot_of(data_type, key);
        if is_bucket(&slot) {
            let mut bucket = self.bucket_in(wtxn, &slot)?;
            bucket.retain(|(member, _)| member != key);
            if bucket.is_empty() {
                databases.kv.delete(wtxn, &slot).with_context(context)?;
            } else {
                databases
                    .kv
                    .put(wtxn, &slot, &encode_kv_bucket(&bucket))
                    .with_context(context)?;
            }
        } else {
            databases.kv.delete(wtxn, &slot).with_context(context)?;
        }
        if let Some(blob) = &previous.blob {
            databases
                .kv_by_blob
                .delete(wtxn, &reverse_key(blob, data_type, key))
                .with_context(context)?;
        }
        Ok(true)
    }

    /// Removes every entry referencing `digest`; returns how many there were.
    fn remove_referencing_in(&self, wtxn: &mut RwTxn, digest: &Digest) -> StorageResult<u64> {
        let keys = self.referencing_in(wtxn, digest)?;
        let mut removed = 0;
        for name in &keys {
            if self.remove_in(wtxn, &name.data_type, &name.key)? {
                removed += 1;
            }
        }
        // Reverse keys whose entry is already gone would otherwise linger.
        delete_prefix(
            &self.env.databases.kv_by_blob,
            wtxn,
            &prefix_of(digest.as_str().as_bytes()),
            &format!("references to {digest}"),
        )?;
        Ok(removed)
    }

    /// The names (`data_type \0 key`) of entries referencing `digest`.
    fn referencing_in(&self, rtxn: &RoTxn, digest: &Digest) -> StorageResult<Vec<KvKey>> {
        let context = || format!("listing key/value entries referencing {digest}");
        let names = self
            .env
            .databases
            .kv_by_blob
            .prefix_iter(rtxn, &prefix_of(digest.as_str().as_bytes()))
            .with_context(context)?;
        let mut keys = Vec::new();
        for name in names {
            let (_, name) = name.with_context(context)?;
            keys.push(KvKey {
                data_type: utf8(first_part(name), "key/value data type")?.to_string(),
                key: utf8(rest_after_first_part(name), "key/value key")?.to_string(),
            });
        }
        keys.sort();
        Ok(keys)
    }

    /// Writes the entry after `check` accepted the current version, inside a write
    /// transaction the caller runs; the data type is checked already. Returns the new version.
    fn write_checked_in(
        &self,
        wtxn: &mut RwTxn,
        data_type: &str,
        key: &str,
        value: &[u8],
        blob: Option<&Digest>,
        check: &dyn Fn(Option<u64>) -> StorageResult<()>,
    ) -> StorageResult<u64> {
        let previous = self.entry_in(wtxn, data_type, key)?;
        let found = previous.as_ref().map(|entry| entry.version);
        check(found)?;
        let version = found.unwrap_or(0).checked_add(1).ok_or_else(|| {
            StorageError::InvalidArgument(format!(
                "key {data_type}/{key}: version {} cannot grow any further",
                u64::MAX
            ))
        })?;
        let entry = KvEntry {
            value: value.to_vec(),
            blob: blob.cloned(),
            version,
        };
        self.store_in(wtxn, data_type, key, &entry, previous.as_ref())?;
        Ok(entry.version)
    }

    /// One operation of a batch, inside the batch's write transaction.
    fn apply_in(&self, wtxn: &mut RwTxn, op: &KvOp) -> StorageResult<KvOpOutcome> {
        Ok(match op {
            KvOp::Put {
                data_type,
                key,
                value,
                blob,
            } => KvOpOutcome::Written(self.write_checked_in(
                wtxn,
                data_type,
                key,
                value,
                blob.as_ref(),
                &|_| Ok(()),
            )?),
            KvOp::CompareAndSet {
                data_type,
                key,
                value,
                blob,
                expected_version,
            } => KvOpOutcome::Written(self.write_checked_in(
                wtxn,
                data_type,
                key,
                value,
                blob.as_ref(),
                &|found| version_matches(data_type, key, *expected_version, found),
            )?),
            KvOp::Remove { data_type, key } => KvOpOutcome::Removed(
                is_storable_data_type(data_type) && self.remove_in(wtxn, data_type, key)?,
            ),
            KvOp::Restore {
                data_type,
                key,
                entry,
            } => {
                let previous = self.entry_in(wtxn, data_type, key)?;
                self.store_in(wtxn, data_type, key, entry, previous.as_ref())?;
                KvOpOutcome::Written(entry.version)
            }
        })
    }
}

fn version_matches(
    data_type: &str,
    key: &str,
    expected: Option<u64>,
    found: Option<u64>,
) -> StorageResult<()> {
    if found == expected {
        Ok(())
    } else {
        Err(StorageError::VersionConflict {
            data_type: data_type.to_string(),
            key: key.to_string(),
            expected,
            found,
        })
    }
}

impl KvStore for LmdbKvStore {
    fn get(&self, data_type: &str, key: &str) -> StorageResult<Option<KvEntry>> {
        if !is_storable_data_type(data_type) {
            return Ok(None);
        }
        self.env.read(|rtxn| self.entry_in(rtxn, data_type, key))
    }

    fn list(&self, data_type: &str, key_prefix: &str) -> StorageResult<Vec<(String, KvEntry)>> {
        if !is_storable_data_type(data_type) {
            return Ok(Vec::new());
        }
        let wanted = join(data_type.as_bytes(), key_prefix.as_bytes());
        self.env.read(|rtxn| {
            if wanted.len() > BUCKET_SLOT_LEN {
                // Only the one bucket cut from the prefix can hold matching keys.
                let mut bucket = self.bucket_in(rtxn, &wanted[..BUCKET_SLOT_LEN])?;
                bucket.retain(|(member, _)| member.starts_with(key_prefix));
                return Ok(bucket);
            }
            let context = || format!("listing key/value entries {data_type}/{key_prefix}*");
            let slots = self
                .env
                .databases
                .kv
                .prefix_iter(rtxn, &wanted)
                .with_context(context)?;
            let mut entries = Vec::new();
            for slot in slots {
                let (slot, bytes) = slot.with_context(context)?;
                let what = || format!("key/value slot {}", String::from_utf8_lossy(slot));
                if is_bucket(slot) {
                    let bucket = decode_kv_bucket(bytes, &what)?;
                    entries.extend(
                        bucket
                            .into_iter()
                            .filter(|(member, _)| member.starts_with(key_prefix)),
                    );
                } else {
                    let key = utf8(rest_after_first_part(slot), "key/value key")?.to_string();
                    entries.push((key, decode_kv_entry(bytes, &what)?));
                }
            }
            Ok(entries)
        })
    }

    fn data_types(&self) -> StorageResult<Vec<String>> {
        self.env.read(|rtxn| {
            distinct_first_parts(&self.env.databases.kv, rtxn, "key/value data types")?
                .iter()
                .map(|part| Ok(utf8(part, "key/value data type")?.to_string()))
                .collect()
        })
    }

    fn referencing(&self, digest: &Digest) -> StorageResult<Vec<KvKey>> {
        self.env.read(|rtxn| self.referencing_in(rtxn, digest))
    }

    /// One read transaction for all of them.
    fn referencing_many(&self, digests: &[Digest]) -> StorageResult<Vec<Vec<KvKey>>> {
        self.env.read(|rtxn| {
            digests
                .iter()
                .map(|digest| self.referencing_in(rtxn, digest))
                .collect()
        })
    }

    /// One write transaction for all of them.
    fn remove_referencing_many(&self, digests: &[Digest]) -> StorageResult<u64> {
        if digests.is_empty() {
            return Ok(0);
        }
        self.env.write(|wtxn| {
            let mut removed = 0;
            for digest in digests {
                removed += self.remove_referencing_in(wtxn, digest)?;
            }
            Ok(removed)
        })
    }

    fn sorted_referenced_digests(&self) -> StorageResult<SortedDigests<'_>> {
        Ok(SortedDigests::paged(|after, limit| {
            self.env.read(|rtxn| {
                digest_page(
                    &self.env.databases.kv_by_blob,
                    rtxn,
                    after,
                    limit,
                    "referenced blobs",
                )
            })
        }))
    }

    fn write_batch(&self, ops: &[KvOp]) -> StorageResult<Vec<KvOpOutcome>> {
        for op in ops {
            if !matches!(op, KvOp::Remove { .. }) {
                check_data_type(op.data_type())?;
            }
        }
        // One write transaction: an error from any operation returns before the commit and
        // the dropped transaction aborts, taking every earlier operation with it.
        self.env
            .write(|wtxn| ops.iter().map(|op| self.apply_in(wtxn, op)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> (tempfile::TempDir, LmdbKvStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = LmdbKvStore::open(dir.path()).unwrap();
        (dir, store)
    }

    #[test]
    fn compare_and_set_checks_the_version() {
        let (_dir, kv) = open();
        assert_eq!(kv.compare_and_set("ref", "a", b"1", None, None).unwrap(), 1);
        let conflict = kv
            .compare_and_set("ref", "a", b"2", None, None)
            .unwrap_err();
        assert!(matches!(
            conflict,
            StorageError::VersionConflict {
                expected: None,
                found: Some(1),
                ..
            }
        ));
        assert_eq!(
            kv.compare_and_set("ref", "a", b"2", None, Some(1)).unwrap(),
            2
        );
        assert!(matches!(
            kv.compare_and_set("ref", "b", b"x", None, Some(1)),
            Err(StorageError::VersionConflict {
                expected: Some(1),
                found: None,
                ..
            })
        ));
        assert_eq!(kv.put("ref", "a", b"3", None).unwrap(), 3);
        assert_eq!(kv.get("ref", "a").unwrap().unwrap().value, b"3");
    }

    #[test]
    fn long_keys_share_buckets_and_keep_order() {
        let (_dir, kv) = open();
        let base = "k".repeat(500);
        let keys = [
            format!("{base}b"),
            "short".to_string(),
            format!("{base}a"),
            base.clone(),
            "k".to_string(),
        ];
        for key in &keys {
            kv.put("cache", key, key.as_bytes(), None).unwrap();
        }
        let mut sorted = keys.to_vec();
        sorted.sort();
        let listed: Vec<String> = kv
            .list("cache", "")
            .unwrap()
            .into_iter()
            .map(|e| e.0)
            .collect();
        assert_eq!(listed, sorted);
        let long_prefix: Vec<String> = kv
            .list("cache", &format!("{base}a"))
            .unwrap()
            .into_iter()
            .map(|e| e.0)
            .collect();
        assert_eq!(long_prefix, vec![format!("{base}a")]);
        assert_eq!(kv.put("cache", &base, b"again", None).unwrap(), 2);
        assert!(kv.remove("cache", &format!("{base}b")).unwrap());
        assert_eq!(kv.list("cache", &base).unwrap().len(), 2);
        assert_eq!(kv.data_types().unwrap(), vec!["cache"]);
    }

    #[test]
    fn references_follow_writes_and_removal() {
        let (_dir, kv) = open();
        let a = Digest::of_bytes(Algorithm::Sha256, b"a");
        let b = Digest::of_bytes(Algorithm::Sha256, b"b");
        kv.put("ref", "two", b"", Some(&a)).unwrap();
        kv.put("ref", "one", b"", Some(&a)).unwrap();
        kv.put("lease", "x", b"", Some(&b)).unwrap();
        kv.put("lease", "x", b"", Some(&a)).unwrap();
        let names: Vec<_> = kv
            .referencing(&a)
            .unwrap()
            .into_iter()
            .map(|k| k.key)
            .collect();
        assert_eq!(names, vec!["x", "one", "two"]);
        assert_eq!(
            kv.sorted_referenced_digests().unwrap().into_vec().unwrap(),
            vec![a.clone()]
        );
        assert_eq!(kv.remove_referencing(&a).unwrap(), 3);
        assert!(kv
            .sorted_referenced_digests()
            .unwrap()
            .into_vec()
            .unwrap()
            .is_empty());
        assert!(kv.data_types().unwrap().is_empty());
    }
}
