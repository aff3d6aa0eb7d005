//! Extra data attached to a blob (last-used time, image info, owner marks). It never outlives
//! the blob: the base store removes it as part of the blob's delete cascade.

use std::sync::Arc;

use super::digest::Digest;
use super::error::{StorageError, StorageResult};
use super::sorted_digests::SortedDigests;

/// Longest data type a batch accepts ([`ExtraOp::check`]): room for the longest digest in a
/// backend's composite key (LMDB keys are at most 511 bytes).
pub const MAX_EXTRA_DATA_TYPE_LEN: usize = 255;

/// One change of an [`ExtraData::write_batch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExtraOp {
    /// Sets (inserts or replaces) one item, as [`ExtraData::set`].
    Set {
        /// The blob the item belongs to.
        digest: Digest,
        /// The item's data type (1 to 255 bytes, no NUL).
        data_type: String,
        /// The item's bytes.
        value: Vec<u8>,
    },
    /// Removes one item if it is there, as [`ExtraData::remove`].
    Remove {
        /// The blob the item belongs to.
        digest: Digest,
        /// The item's data type.
        data_type: String,
    },
    /// Removes every item of a blob, as [`ExtraData::remove_all`].
    RemoveAll {
        /// The blob whose items go.
        digest: Digest,
    },
}

impl ExtraOp {
    /// The blob the operation changes.
    pub fn digest(&self) -> &Digest {
        match self {
            ExtraOp::Set { digest, .. }
            | ExtraOp::Remove { digest, .. }
            | ExtraOp::RemoveAll { digest } => digest,
        }
    }

    /// The one data type the operation changes (none for [`ExtraOp::RemoveAll`]).
    pub fn data_type(&self) -> Option<&str> {
        match self {
            ExtraOp::Set { data_type, .. } | ExtraOp::Remove { data_type, .. } => Some(data_type),
            ExtraOp::RemoveAll { .. } => None,
        }
    }

    /// What every backend can store: a data type that is not empty, holds no NUL (a key
    /// separator) and has at most `MAX_EXTRA_DATA_TYPE_LEN` (255) bytes. A batch checks every
    /// operation before it applies any.
    pub fn check(&self) -> StorageResult<()> {
        let Some(data_type) = self.data_type() else {
            return Ok(());
        };
        if data_type.is_empty()
            || data_type.contains('\0')
            || data_type.len() > MAX_EXTRA_DATA_TYPE_LEN
        {
            return Err(StorageError::InvalidArgument(format!(
                "extra data type {data_type:?} of {} must be 1 to {MAX_EXTRA_DATA_TYPE_LEN} \
                 bytes without NUL",
                self.digest()
            )));
        }
        Ok(())
    }
}

/// Extra data of blobs. A backend implements the required methods; [`ExtraData::set`],
/// [`ExtraData::remove`], [`ExtraData::remove_all`] and [`ExtraData::remove_all_many`] are
/// derived from [`ExtraData::write_batch`] and are not overridden (the `Box`/`Arc` forwarders
/// and the conformance fault wrappers forward only the required methods).
pub trait ExtraData: Send + Sync {
    /// Sets (inserts or replaces) one item: a batch of one [`ExtraOp::Set`], so the data type
    /// is checked as in any batch.
    fn set(&self, digest: &Digest, data_type: &str, value: &[u8]) -> StorageResult<()> {
        self.write_batch(&[ExtraOp::Set {
            digest: digest.clone(),
            data_type: data_type.to_string(),
            value: value.to_vec(),
        }])
        .map(|_changed| ())
    }

    /// The item of `data_type` attached to `digest`, or `None` when there is none.
    fn get(&self, digest: &Digest, data_type: &str) -> StorageResult<Option<Vec<u8>>>;

    /// Removes one item. Returns whether it was there. A batch of one [`ExtraOp::Remove`]; a
    /// data type no batch accepts cannot have been stored, so it is not there.
    fn remove(&self, digest: &Digest, data_type: &str) -> StorageResult<bool> {
        let remove = ExtraOp::Remove {
            digest: digest.clone(),
            data_type: data_type.to_string(),
        };
        if remove.check().is_err() {
            return Ok(false);
        }
        Ok(self.write_batch(&[remove])?.iter().sum::<u64>() > 0)
    }

    /// The data types a blob has, sorted.
    fn types(&self, digest: &Digest) -> StorageResult<Vec<String>>;

    /// [`ExtraData::types`] of several blobs, in order, in one read where the backend can.
    fn types_many(&self, digests: &[Digest]) -> StorageResult<Vec<Vec<String>>> {
        digests.iter().map(|digest| self.types(digest)).collect()
    }

    /// Removes every item of each blob, in one transaction. Returns how many went. A batch of
    /// [`ExtraOp::RemoveAll`].
    fn remove_all_many(&self, digests: &[Digest]) -> StorageResult<u64> {
        let ops: Vec<ExtraOp> = digests
            .iter()
            .map(|digest| ExtraOp::RemoveAll {
                digest: digest.clone(),
            })
            .collect();
        Ok(self.write_batch(&ops)?.iter().sum())
    }

    /// Removes every item of a blob, as [`ExtraData::remove_all_many`]. Returns how many went.
    fn remove_all(&self, digest: &Digest) -> StorageResult<u64> {
        self.remove_all_many(std::slice::from_ref(digest))
    }

    /// Every blob that has at least one item, in digest-string order, listed without holding
    /// them all as `Digest`s (GC and fsck look for orphans here): backends page through their
    /// sorted keys.
    fn sorted_digests(&self) -> StorageResult<SortedDigests<'_>>;

    /// Every blob that has an item whose data type starts with `type_prefix` (`owner.`: the
    /// blobs some holder marks), in digest-string order, paged as
    /// [`ExtraData::sorted_digests`]: the base GC merges it with the index instead of asking
    /// each blob for its types.
    fn sorted_digests_with_type_prefix(
        &self,
        type_prefix: &str,
    ) -> StorageResult<SortedDigests<'_>>;

    /// Every (digest, value) with this data type, in digest order (owner marks, last-used).
    fn entries_of_type(&self, data_type: &str) -> StorageResult<Vec<(Digest, Vec<u8>)>>;

    /// Applies `ops` in order as one step, all or nothing, in one transaction (one sync):
    /// every operation is checked first ([`ExtraOp::check`]), so an invalid one writes
    /// nothing, and an error part-way writes nothing either. Returns, per operation, how many
    /// items it changed: 1 for a set, 1 or 0 for a removal (whether the item was there), the
    /// number of items for a [`ExtraOp::RemoveAll`].
    fn write_batch(&self, ops: &[ExtraOp]) -> StorageResult<Vec<u64>>;
}

/// `Box<T>` and `Arc<T>` forward the required methods and `types_many`, which backends
/// override for speed; the derived forms run through the forwarded batch ones.
macro_rules! forward_extra_data {
    ($($wrapper:ident),*) => {$(
        impl<T: ExtraData + ?Sized> ExtraData for $wrapper<T> {
            fn get(&self, digest: &Digest, data_type: &str) -> StorageResult<Option<Vec<u8>>> {
                (**self).get(digest, data_type)
            }
            fn types(&self, digest: &Digest) -> StorageResult<Vec<String>> {
                (**self).types(digest)
            }
            fn types_many(&self, digests: &[Digest]) -> StorageResult<Vec<Vec<String>>> {
                (**self).types_many(digests)
            }
            fn sorted_digests(&self) -> StorageResult<SortedDigests<'_>> {
                (**self).sorted_digests()
            }
            fn sorted_digests_with_type_prefix(&self, type_prefix: &str)
                -> StorageResult<SortedDigests<'_>> {
                (**self).sorted_digests_with_type_prefix(type_prefix)
            }
            fn entries_of_type(&self, data_type: &str)
                -> StorageResult<Vec<(Digest, Vec<u8>)>> {
                (**self).entries_of_type(data_type)
            }
            fn write_batch(&self, ops: &[ExtraOp]) -> StorageResult<Vec<u64>> {
                (**self).write_batch(ops)
            }
        }
    )*};
}
forward_extra_data!(Box, Arc);
