//! The key/value area: `(data_type, key) -> entry`, where an entry may reference a blob
//! (named refs, remote-cache records, leases). Entries that reference a blob are removed with it.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::error::StorageResult;
use super::sorted_digests::SortedDigests;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvEntry {
    pub value: Vec<u8>,
    /// The blob this entry references, if any.
    pub blob: Option<Digest>,
    /// Starts at 1 when the entry is created and grows by one on every write; the token of
    /// [`KvStore::compare_and_set`].
    pub version: u64,
}

/// One operation of an atomic [`KvStore::write_batch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvOp {
    /// Writes unconditionally, as [`KvStore::put`].
    Put {
        data_type: String,
        key: String,
        value: Vec<u8>,
        blob: Option<Digest>,
    },
    /// Writes only if the current version is `expected_version`, as
    /// [`KvStore::compare_and_set`]; a conflict fails the whole batch.
    CompareAndSet {
        data_type: String,
        key: String,
        value: Vec<u8>,
        blob: Option<Digest>,
        expected_version: Option<u64>,
    },
    /// Removes an entry if it is there, as [`KvStore::remove`].
    Remove { data_type: String, key: String },
}

impl KvOp {
    pub fn data_type(&self) -> &str {
        match self {
            KvOp::Put { data_type, .. }
            | KvOp::CompareAndSet { data_type, .. }
            | KvOp::Remove { data_type, .. } => data_type,
        }
    }

    pub fn key(&self) -> &str {
        match self {
            KvOp::Put { key, .. } | KvOp::CompareAndSet { key, .. } | KvOp::Remove { key, .. } => {
                key
            }
        }
    }

    /// The blob a write makes its entry reference.
    pub fn blob(&self) -> Option<&Digest> {
        match self {
            KvOp::Put { blob, .. } | KvOp::CompareAndSet { blob, .. } => blob.as_ref(),
            KvOp::Remove { .. } => None,
        }
    }
}

/// What one operation of a batch did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvOpOutcome {
    /// A put or compare-and-set wrote this version.
    Written(u64),
    /// A removal; whether the entry was there.
    Removed(bool),
}

/// Names one entry.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct KvKey {
    pub data_type: String,
    pub key: String,
}

pub trait KvStore: Send + Sync {
    fn backend_name(&self) -> &'static str;

    fn get(&self, data_type: &str, key: &str) -> StorageResult<Option<KvEntry>>;

    /// Writes unconditionally; returns the new version.
    fn put(
        &self,
        data_type: &str,
        key: &str,
        value: &[u8],
        blob: Option<&Digest>,
    ) -> StorageResult<u64>;

    /// Writes only if the current version is `expected_version` (`None`: the key must not
    /// exist); otherwise [`super::StorageError::VersionConflict`]. Returns the new version.
    fn compare_and_set(
        &self,
        data_type: &str,
        key: &str,
        value: &[u8],
        blob: Option<&Digest>,
        expected_version: Option<u64>,
    ) -> StorageResult<u64>;

    /// Removes an entry. Returns whether it was there.
    fn remove(&self, data_type: &str, key: &str) -> StorageResult<bool>;

    /// Entries of a data type whose key starts with `key_prefix`, in key order.
    fn list(&self, data_type: &str, key_prefix: &str) -> StorageResult<Vec<(String, KvEntry)>>;

    /// Every data type that has at least one entry, sorted.
    fn data_types(&self) -> StorageResult<Vec<String>>;

    /// Entries that reference `digest`, sorted.
    fn referencing(&self, digest: &Digest) -> StorageResult<Vec<KvKey>>;

    /// Removes every entry that references `digest`. Returns how many went.
    fn remove_referencing(&self, digest: &Digest) -> StorageResult<u64>;

    /// [`KvStore::remove_referencing`] of several digests; SQLite and LMDB do it in one
    /// transaction.
    fn remove_referencing_many(&self, digests: &[Digest]) -> StorageResult<u64> {
        let mut removed = 0;
        for digest in digests {
            removed += self.remove_referencing(digest)?;
        }
        Ok(removed)
    }

    /// Every digest referenced by at least one entry, sorted (GC looks for dangling ones).
    fn referenced_digests(&self) -> StorageResult<Vec<Digest>>;

    /// [`KvStore::referenced_digests`] without holding them all as `Digest`s: backends with
    /// sorted keys page through them (the default gathers the list compactly).
    fn sorted_referenced_digests(&self) -> StorageResult<SortedDigests<'_>> {
        Ok(SortedDigests::from_unordered(self.referenced_digests()?))
    }

    /// Writes an entry exactly as given, version included (backend conversion).
    fn restore(&self, data_type: &str, key: &str, entry: &KvEntry) -> StorageResult<()>;

    /// Applies `ops` in order, in one transaction: all of them land or none does. A failing
    /// compare-and-set, an invalid argument or any error writes nothing. Each operation sees
    /// the effect of the ones before it (two writes of one key count two versions). Returns
    /// one outcome per operation.
    fn write_batch(&self, ops: &[KvOp]) -> StorageResult<Vec<KvOpOutcome>>;
}

macro_rules! forward_kv_store {
    ($($wrapper:ident),*) => {$(
        impl<T: KvStore + ?Sized> KvStore for $wrapper<T> {
            fn backend_name(&self) -> &'static str { (**self).backend_name() }
            fn get(&self, data_type: &str, key: &str) -> StorageResult<Option<KvEntry>> {
                (**self).get(data_type, key)
            }
            fn put(&self, data_type: &str, key: &str, value: &[u8], blob: Option<&Digest>)
                -> StorageResult<u64> {
                (**self).put(data_type, key, value, blob)
            }
            fn compare_and_set(&self, data_type: &str, key: &str, value: &[u8],
                blob: Option<&Digest>, expected_version: Option<u64>) -> StorageResult<u64> {
                (**self).compare_and_set(data_type, key, value, blob, expected_version)
            }
            fn remove(&self, data_type: &str, key: &str) -> StorageResult<bool> {
                (**self).remove(data_type, key)
            }
            fn list(&self, data_type: &str, key_prefix: &str)
                -> StorageResult<Vec<(String, KvEntry)>> {
                (**self).list(data_type, key_prefix)
            }
            fn data_types(&self) -> StorageResult<Vec<String>> { (**self).data_types() }
            fn referencing(&self, digest: &Digest) -> StorageResult<Vec<KvKey>> {
                (**self).referencing(digest)
            }
            fn remove_referencing(&self, digest: &Digest) -> StorageResult<u64> {
                (**self).remove_referencing(digest)
            }
            fn remove_referencing_many(&self, digests: &[Digest]) -> StorageResult<u64> {
                (**self).remove_referencing_many(digests)
            }
            fn referenced_digests(&self) -> StorageResult<Vec<Digest>> {
                (**self).referenced_digests()
            }
            fn sorted_referenced_digests(&self) -> StorageResult<SortedDigests<'_>> {
                (**self).sorted_referenced_digests()
            }
            fn restore(&self, data_type: &str, key: &str, entry: &KvEntry) -> StorageResult<()> {
                (**self).restore(data_type, key, entry)
            }
            fn write_batch(&self, ops: &[KvOp]) -> StorageResult<Vec<KvOpOutcome>> {
                (**self).write_batch(ops)
            }
        }
    )*};
}
forward_kv_store!(Box, Arc);
