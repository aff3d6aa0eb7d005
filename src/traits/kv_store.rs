//! The key/value area: `(data_type, key) -> entry`, where an entry may reference a blob
//! (named refs, remote-cache records, leases). Entries that reference a blob are removed with it.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::error::{StorageError, StorageResult};
use super::sorted_digests::SortedDigests;

/// One key/value entry as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvEntry {
    /// The entry's bytes, as written.
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
        /// The entry's data type (its namespace, e.g. `oci.ref`).
        data_type: String,
        /// The entry's key within the data type.
        key: String,
        /// The bytes to store.
        value: Vec<u8>,
        /// The blob the entry references; the entry is removed when that blob is deleted.
        blob: Option<Digest>,
    },
    /// Writes only if the current version is `expected_version`, as
    /// [`KvStore::compare_and_set`]; a conflict fails the whole batch.
    CompareAndSet {
        /// The entry's data type.
        data_type: String,
        /// The entry's key within the data type.
        key: String,
        /// The bytes to store.
        value: Vec<u8>,
        /// The blob the entry references; the entry is removed when that blob is deleted.
        blob: Option<Digest>,
        /// The version the entry must have now (`None`: it must not exist).
        expected_version: Option<u64>,
    },
    /// Removes an entry if it is there, as [`KvStore::remove`].
    Remove {
        /// The entry's data type.
        data_type: String,
        /// The entry's key within the data type.
        key: String,
    },
    /// Writes an entry exactly as given, version included, as [`KvStore::restore`] (backend
    /// conversion).
    Restore {
        /// The entry's data type.
        data_type: String,
        /// The entry's key within the data type.
        key: String,
        /// The entry as it was, version included.
        entry: KvEntry,
    },
}

impl KvOp {
    /// The data type the operation touches.
    pub fn data_type(&self) -> &str {
        match self {
            KvOp::Put { data_type, .. }
            | KvOp::CompareAndSet { data_type, .. }
            | KvOp::Remove { data_type, .. }
            | KvOp::Restore { data_type, .. } => data_type,
        }
    }

    /// The key the operation touches.
    pub fn key(&self) -> &str {
        match self {
            KvOp::Put { key, .. }
            | KvOp::CompareAndSet { key, .. }
            | KvOp::Remove { key, .. }
            | KvOp::Restore { key, .. } => key,
        }
    }

    /// The blob a write makes its entry reference.
    pub fn blob(&self) -> Option<&Digest> {
        match self {
            KvOp::Put { blob, .. } | KvOp::CompareAndSet { blob, .. } => blob.as_ref(),
            KvOp::Restore { entry, .. } => entry.blob.as_ref(),
            KvOp::Remove { .. } => None,
        }
    }
}

/// What one operation of a batch did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvOpOutcome {
    /// A put, compare-and-set or restore wrote this version.
    Written(u64),
    /// A removal; whether the entry was there.
    Removed(bool),
}

/// Names one entry.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct KvKey {
    /// The entry's data type (its namespace).
    pub data_type: String,
    /// The entry's key within the data type.
    pub key: String,
}

/// The key/value area. A backend implements the required methods; [`KvStore::put`],
/// [`KvStore::compare_and_set`], [`KvStore::remove`] and [`KvStore::remove_referencing`] are
/// derived from [`KvStore::write_batch`] and [`KvStore::remove_referencing_many`] and are not
/// overridden (the `Box`/`Arc` forwarders and the conformance fault wrappers forward only the
/// required methods).
pub trait KvStore: Send + Sync {
    /// The entry at `data_type`/`key`, or `None` when there is none.
    fn get(&self, data_type: &str, key: &str) -> StorageResult<Option<KvEntry>>;

    /// Writes unconditionally; returns the new version. A batch of one [`KvOp::Put`].
    fn put(
        &self,
        data_type: &str,
        key: &str,
        value: &[u8],
        blob: Option<&Digest>,
    ) -> StorageResult<u64> {
        let put = KvOp::Put {
            data_type: data_type.to_string(),
            key: key.to_string(),
            value: value.to_vec(),
            blob: blob.cloned(),
        };
        write_one(self, put, written)
    }

    /// Writes only if the current version is `expected_version` (`None`: the key must not
    /// exist); otherwise [`super::StorageError::VersionConflict`]. Returns the new version.
    /// A batch of one [`KvOp::CompareAndSet`].
    fn compare_and_set(
        &self,
        data_type: &str,
        key: &str,
        value: &[u8],
        blob: Option<&Digest>,
        expected_version: Option<u64>,
    ) -> StorageResult<u64> {
        let compare_and_set = KvOp::CompareAndSet {
            data_type: data_type.to_string(),
            key: key.to_string(),
            value: value.to_vec(),
            blob: blob.cloned(),
            expected_version,
        };
        write_one(self, compare_and_set, written)
    }

    /// Removes an entry. Returns whether it was there. A batch of one [`KvOp::Remove`].
    fn remove(&self, data_type: &str, key: &str) -> StorageResult<bool> {
        let remove = KvOp::Remove {
            data_type: data_type.to_string(),
            key: key.to_string(),
        };
        write_one(self, remove, |outcome| match outcome {
            KvOpOutcome::Removed(was_there) => Some(was_there),
            KvOpOutcome::Written(_) => None,
        })
    }

    /// Entries of a data type whose key starts with `key_prefix`, in key order.
    fn list(&self, data_type: &str, key_prefix: &str) -> StorageResult<Vec<(String, KvEntry)>>;

    /// Every data type that has at least one entry, sorted.
    fn data_types(&self) -> StorageResult<Vec<String>>;

    /// Entries that reference `digest`, sorted.
    fn referencing(&self, digest: &Digest) -> StorageResult<Vec<KvKey>>;

    /// [`KvStore::referencing`] of several digests, in order, in one read where the backend
    /// can.
    fn referencing_many(&self, digests: &[Digest]) -> StorageResult<Vec<Vec<KvKey>>> {
        digests
            .iter()
            .map(|digest| self.referencing(digest))
            .collect()
    }

    /// Removes every entry that references any of `digests`, in one transaction. Returns how
    /// many went.
    fn remove_referencing_many(&self, digests: &[Digest]) -> StorageResult<u64>;

    /// Removes every entry that references `digest`, as [`KvStore::remove_referencing_many`].
    /// Returns how many went.
    fn remove_referencing(&self, digest: &Digest) -> StorageResult<u64> {
        self.remove_referencing_many(std::slice::from_ref(digest))
    }

    /// Every digest referenced by at least one entry, in digest-string order, listed without
    /// holding them all as `Digest`s (GC and fsck look for dangling ones): backends page
    /// through their sorted keys.
    fn sorted_referenced_digests(&self) -> StorageResult<SortedDigests<'_>>;

    /// Writes an entry exactly as given, version included (backend conversion). A batch of
    /// one [`KvOp::Restore`].
    fn restore(&self, data_type: &str, key: &str, entry: &KvEntry) -> StorageResult<()> {
        let restore = KvOp::Restore {
            data_type: data_type.to_string(),
            key: key.to_string(),
            entry: entry.clone(),
        };
        write_one(self, restore, written).map(|_version| ())
    }

    /// Applies `ops` in order, in one transaction: all of them land or none does. A failing
    /// compare-and-set, an invalid argument or any error writes nothing. Each operation sees
    /// the effect of the ones before it (two writes of one key count two versions). Returns
    /// one outcome per operation.
    fn write_batch(&self, ops: &[KvOp]) -> StorageResult<Vec<KvOpOutcome>>;
}

/// [`KvStore::write_batch`] of one operation: its outcome, checked to be of the kind `wanted`
/// picks out.
fn write_one<K: KvStore + ?Sized, T>(
    kv: &K,
    op: KvOp,
    wanted: impl FnOnce(KvOpOutcome) -> Option<T>,
) -> StorageResult<T> {
    let outcomes = kv.write_batch(std::slice::from_ref(&op))?;
    match outcomes.as_slice() {
        [outcome] => wanted(*outcome).ok_or_else(|| {
            // A backend bug, which the conformance suite catches.
            StorageError::backend(
                "key/value",
                format!("writing key {}/{}", op.data_type(), op.key()),
                std::io::Error::other(format!("the batch returned the wrong outcome {outcome:?}")),
            )
        }),
        _ => Err(StorageError::backend(
            "key/value",
            format!("writing key {}/{}", op.data_type(), op.key()),
            std::io::Error::other(format!(
                "a batch of one operation returned {} outcomes",
                outcomes.len()
            )),
        )),
    }
}

fn written(outcome: KvOpOutcome) -> Option<u64> {
    match outcome {
        KvOpOutcome::Written(version) => Some(version),
        KvOpOutcome::Removed(_) => None,
    }
}

/// `Box<T>` and `Arc<T>` forward the required methods and `referencing_many`, which backends
/// override for speed; the derived forms run through the forwarded batch ones.
macro_rules! forward_kv_store {
    ($($wrapper:ident),*) => {$(
        impl<T: KvStore + ?Sized> KvStore for $wrapper<T> {
            fn get(&self, data_type: &str, key: &str) -> StorageResult<Option<KvEntry>> {
                (**self).get(data_type, key)
            }
            fn list(&self, data_type: &str, key_prefix: &str)
                -> StorageResult<Vec<(String, KvEntry)>> {
                (**self).list(data_type, key_prefix)
            }
            fn data_types(&self) -> StorageResult<Vec<String>> { (**self).data_types() }
            fn referencing(&self, digest: &Digest) -> StorageResult<Vec<KvKey>> {
                (**self).referencing(digest)
            }
            fn referencing_many(&self, digests: &[Digest]) -> StorageResult<Vec<Vec<KvKey>>> {
                (**self).referencing_many(digests)
            }
            fn remove_referencing_many(&self, digests: &[Digest]) -> StorageResult<u64> {
                (**self).remove_referencing_many(digests)
            }
            fn sorted_referenced_digests(&self) -> StorageResult<SortedDigests<'_>> {
                (**self).sorted_referenced_digests()
            }
            fn write_batch(&self, ops: &[KvOp]) -> StorageResult<Vec<KvOpOutcome>> {
                (**self).write_batch(ops)
            }
        }
    )*};
}
forward_kv_store!(Box, Arc);
