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
        digest: Digest,
        data_type: String,
        value: Vec<u8>,
    },
    /// Removes one item if it is there, as [`ExtraData::remove`].
    Remove { digest: Digest, data_type: String },
}

impl ExtraOp {
    pub fn digest(&self) -> &Digest {
        match self {
            ExtraOp::Set { digest, .. } | ExtraOp::Remove { digest, .. } => digest,
        }
    }

    pub fn data_type(&self) -> &str {
        match self {
            ExtraOp::Set { data_type, .. } | ExtraOp::Remove { data_type, .. } => data_type,
        }
    }

    /// What every backend can store: a data type that is not empty, holds no NUL (a key
    /// separator) and has at most [`MAX_EXTRA_DATA_TYPE_LEN`] bytes. A batch checks every
    /// operation before it applies any.
    pub fn check(&self) -> StorageResult<()> {
        let data_type = self.data_type();
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

pub trait ExtraData: Send + Sync {
    fn backend_name(&self) -> &'static str;

    /// Sets (inserts or replaces) one item.
    fn set(&self, digest: &Digest, data_type: &str, value: &[u8]) -> StorageResult<()>;

    fn get(&self, digest: &Digest, data_type: &str) -> StorageResult<Option<Vec<u8>>>;

    /// Removes one item. Returns whether it was there.
    fn remove(&self, digest: &Digest, data_type: &str) -> StorageResult<bool>;

    /// The data types a blob has, sorted.
    fn types(&self, digest: &Digest) -> StorageResult<Vec<String>>;

    /// Removes every item of a blob. Returns how many went.
    fn remove_all(&self, digest: &Digest) -> StorageResult<u64>;

    /// [`ExtraData::remove_all`] of several blobs; SQLite and LMDB do it in one transaction.
    fn remove_all_many(&self, digests: &[Digest]) -> StorageResult<u64> {
        let mut removed = 0;
        for digest in digests {
            removed += self.remove_all(digest)?;
        }
        Ok(removed)
    }

    /// Every blob that has at least one item, sorted (GC looks for orphans here).
    fn digests(&self) -> StorageResult<Vec<Digest>>;

    /// [`ExtraData::digests`] without holding them all as `Digest`s: backends with sorted
    /// keys page through them (the default gathers `digests` compactly).
    fn sorted_digests(&self) -> StorageResult<SortedDigests<'_>> {
        Ok(SortedDigests::from_unordered(self.digests()?))
    }

    /// Every (digest, value) with this data type, in digest order (owner marks, last-used).
    fn entries_of_type(&self, data_type: &str) -> StorageResult<Vec<(Digest, Vec<u8>)>>;

    /// Applies `ops` in order as one step, all or nothing: every operation is checked first
    /// ([`ExtraOp::check`]), so an invalid one writes nothing. SQLite and LMDB override this
    /// with one transaction (one sync for the whole batch), so an error part-way writes nothing
    /// either; this default checks them all, then applies them one by one, so an I/O error
    /// part-way may leave the first ones applied.
    fn write_batch(&self, ops: &[ExtraOp]) -> StorageResult<()> {
        ops.iter().try_for_each(ExtraOp::check)?;
        for op in ops {
            match op {
                ExtraOp::Set {
                    digest,
                    data_type,
                    value,
                } => self.set(digest, data_type, value)?,
                ExtraOp::Remove { digest, data_type } => {
                    self.remove(digest, data_type)?;
                }
            }
        }
        Ok(())
    }
}

macro_rules! forward_extra_data {
    ($($wrapper:ident),*) => {$(
        impl<T: ExtraData + ?Sized> ExtraData for $wrapper<T> {
            fn backend_name(&self) -> &'static str { (**self).backend_name() }
            fn set(&self, digest: &Digest, data_type: &str, value: &[u8]) -> StorageResult<()> {
                (**self).set(digest, data_type, value)
            }
            fn get(&self, digest: &Digest, data_type: &str) -> StorageResult<Option<Vec<u8>>> {
                (**self).get(digest, data_type)
            }
            fn remove(&self, digest: &Digest, data_type: &str) -> StorageResult<bool> {
                (**self).remove(digest, data_type)
            }
            fn types(&self, digest: &Digest) -> StorageResult<Vec<String>> {
                (**self).types(digest)
            }
            fn remove_all_many(&self, digests: &[Digest]) -> StorageResult<u64> {
                (**self).remove_all_many(digests)
            }
            fn remove_all(&self, digest: &Digest) -> StorageResult<u64> {
                (**self).remove_all(digest)
            }
            fn digests(&self) -> StorageResult<Vec<Digest>> { (**self).digests() }
            fn sorted_digests(&self) -> StorageResult<SortedDigests<'_>> {
                (**self).sorted_digests()
            }
            fn entries_of_type(&self, data_type: &str)
                -> StorageResult<Vec<(Digest, Vec<u8>)>> {
                (**self).entries_of_type(data_type)
            }
            fn write_batch(&self, ops: &[ExtraOp]) -> StorageResult<()> {
                (**self).write_batch(ops)
            }
        }
    )*};
}
forward_extra_data!(Box, Arc);
