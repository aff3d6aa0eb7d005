//! The index of stored blobs: what is in the store, searchable by digest prefix and media type.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::digest::{Digest, DigestPrefix};
use super::error::StorageResult;

/// One indexed blob. A record is only written after its content is committed (DESIGN.md,
/// invariant 1), so a record in the index means the content is there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRecord {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    /// When the blob was first indexed, in milliseconds since the Unix epoch.
    pub created_unix_ms: i64,
}

/// Media type recorded when the writer gives none.
pub const DEFAULT_MEDIA_TYPE: &str = "application/octet-stream";

pub trait Index: Send + Sync {
    fn backend_name(&self) -> &'static str;

    /// Inserts or replaces the record of `record.digest`.
    fn upsert(&self, record: &BlobRecord) -> StorageResult<()>;

    /// Inserts or replaces several records, as [`Index::upsert`] does for each, in order.
    /// Backends override this to write them in one transaction (bulk loads, benchmarks); the
    /// default writes them one by one, so a failure may leave the first ones written.
    fn upsert_many(&self, records: &[BlobRecord]) -> StorageResult<()> {
        records.iter().try_for_each(|record| self.upsert(record))
    }

    fn get(&self, digest: &Digest) -> StorageResult<Option<BlobRecord>>;

    /// Removes the record. Returns whether it was there.
    fn remove(&self, digest: &Digest) -> StorageResult<bool>;

    /// Removes several records; returns how many were there. SQLite and LMDB do it in one
    /// transaction, so the delete of every blob in it is committed at once.
    fn remove_many(&self, digests: &[Digest]) -> StorageResult<u64> {
        let mut removed = 0;
        for digest in digests {
            removed += u64::from(self.remove(digest)?);
        }
        Ok(removed)
    }

    /// Records whose digest starts with `prefix`, in digest order, at most `limit`.
    /// A range scan over the digest key, never a full scan.
    fn by_prefix(&self, prefix: &DigestPrefix, limit: usize) -> StorageResult<Vec<BlobRecord>>;

    /// Records of one media type, in digest order.
    fn by_media_type(&self, media_type: &str) -> StorageResult<Vec<BlobRecord>>;

    /// One page of all records in digest order, starting after `after`.
    fn page(&self, after: Option<&Digest>, limit: usize) -> StorageResult<Vec<BlobRecord>>;

    fn count(&self) -> StorageResult<u64>;

    fn total_size(&self) -> StorageResult<u64>;
}

/// Iterates all records of an index page by page, so a huge index is never loaded at once.
pub struct RecordPages<'a, I: Index + ?Sized> {
    index: &'a I,
    after: Option<Digest>,
    page_size: usize,
    buffer: std::vec::IntoIter<BlobRecord>,
    done: bool,
}

impl<'a, I: Index + ?Sized> RecordPages<'a, I> {
    pub fn new(index: &'a I, page_size: usize) -> Self {
        RecordPages {
            index,
            after: None,
            page_size: page_size.max(1),
            buffer: Vec::new().into_iter(),
            done: false,
        }
    }
}

impl<I: Index + ?Sized> Iterator for RecordPages<'_, I> {
    type Item = StorageResult<BlobRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(record) = self.buffer.next() {
            self.after = Some(record.digest.clone());
            return Some(Ok(record));
        }
        if self.done {
            return None;
        }
        match self.index.page(self.after.as_ref(), self.page_size) {
            Ok(page) => {
                self.done = page.len() < self.page_size;
                self.buffer = page.into_iter();
                let record = self.buffer.next()?;
                self.after = Some(record.digest.clone());
                Some(Ok(record))
            }
            Err(error) => {
                self.done = true;
                Some(Err(error))
            }
        }
    }
}

macro_rules! forward_index {
    ($($wrapper:ident),*) => {$(
        impl<T: Index + ?Sized> Index for $wrapper<T> {
            fn backend_name(&self) -> &'static str { (**self).backend_name() }
            fn upsert(&self, record: &BlobRecord) -> StorageResult<()> { (**self).upsert(record) }
            fn upsert_many(&self, records: &[BlobRecord]) -> StorageResult<()> {
                (**self).upsert_many(records)
            }
            fn get(&self, digest: &Digest) -> StorageResult<Option<BlobRecord>> {
                (**self).get(digest)
            }
            fn remove(&self, digest: &Digest) -> StorageResult<bool> { (**self).remove(digest) }
            fn remove_many(&self, digests: &[Digest]) -> StorageResult<u64> {
                (**self).remove_many(digests)
            }
            fn by_prefix(&self, prefix: &DigestPrefix, limit: usize)
                -> StorageResult<Vec<BlobRecord>> {
                (**self).by_prefix(prefix, limit)
            }
            fn by_media_type(&self, media_type: &str) -> StorageResult<Vec<BlobRecord>> {
                (**self).by_media_type(media_type)
            }
            fn page(&self, after: Option<&Digest>, limit: usize)
                -> StorageResult<Vec<BlobRecord>> {
                (**self).page(after, limit)
            }
            fn count(&self) -> StorageResult<u64> { (**self).count() }
            fn total_size(&self) -> StorageResult<u64> { (**self).total_size() }
        }
    )*};
}
forward_index!(Box, Arc);
