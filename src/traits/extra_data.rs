//! Extra data attached to a blob (last-used time, image info, owner marks). It never outlives
//! the blob: the base store removes it as part of the blob's delete cascade.

use std::sync::Arc;

use super::digest::Digest;
use super::error::StorageResult;

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

    /// Every (digest, value) with this data type, in digest order (owner marks, last-used).
    fn entries_of_type(&self, data_type: &str) -> StorageResult<Vec<(Digest, Vec<u8>)>>;
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
            fn entries_of_type(&self, data_type: &str)
                -> StorageResult<Vec<(Digest, Vec<u8>)>> {
                (**self).entries_of_type(data_type)
            }
        }
    )*};
}
forward_extra_data!(Box, Arc);
