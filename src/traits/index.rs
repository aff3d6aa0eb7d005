//! The index of stored blobs: what is in the store, searchable by digest prefix and media type.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::digest::{Digest, DigestPrefix};
use super::error::StorageResult;

/// One indexed blob. A record is only written after its content is committed (DESIGN.md,
/// invariant 1), so a record in the index means the content is there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRecord {
    /// The blob's digest.
    pub digest: Digest,
    /// The blob's size in bytes.
    pub size: u64,
    /// The media type it was written with (`application/octet-stream` when none was given).
    pub media_type: String,
    /// When the blob was first indexed, in milliseconds since the Unix epoch.
    pub created_unix_ms: i64,
}

/// Media type recorded when the writer gives none.
pub const DEFAULT_MEDIA_TYPE: &str = "application/octet-stream";

/// The index of stored blobs. A backend implements the required methods; the single-record
/// [`Index::upsert`] and [`Index::remove`] are derived from the batch forms and are not
/// overridden (the `Box`/`Arc` forwarders and the conformance fault wrappers forward only the
/// required methods).
pub trait Index: Send + Sync {
    /// Inserts or replaces the records of `records`, in order, in one transaction (one sync):
    /// all of them land or none does.
    fn upsert_many(&self, records: &[BlobRecord]) -> StorageResult<()>;

    /// Inserts or replaces the record of `record.digest`, as [`Index::upsert_many`].
    fn upsert(&self, record: &BlobRecord) -> StorageResult<()> {
        self.upsert_many(std::slice::from_ref(record))
    }

    /// The record of `digest`, if it is indexed: a [`Index::by_prefix`] lookup of the
    /// complete digest (one key). Every read of a blob asks this, so a backend whose point
    /// lookup is cheaper than a range of one key overrides it (both built-in ones do).
    fn get(&self, digest: &Digest) -> StorageResult<Option<BlobRecord>> {
        let found = self.by_prefix(&DigestPrefix::complete(digest), 1)?;
        Ok(found.into_iter().find(|record| &record.digest == digest))
    }

    /// The records of several digests, in order (`None` for one not indexed): what a batched
    /// decision reads under its digest locks. One read for all of them where the backend can
    /// (SQLite's per-statement read lock made 1,500 single lookups cost milliseconds);
    /// [`Index::get`] of each otherwise.
    fn get_many(&self, digests: &[Digest]) -> StorageResult<Vec<Option<BlobRecord>>> {
        digests.iter().map(|digest| self.get(digest)).collect()
    }

    /// Removes records; returns how many were there. One transaction, so the delete of every
    /// blob in it is committed at once.
    fn remove_many(&self, digests: &[Digest]) -> StorageResult<u64>;

    /// Removes one record, as [`Index::remove_many`]. Returns whether it was there.
    fn remove(&self, digest: &Digest) -> StorageResult<bool> {
        Ok(self.remove_many(std::slice::from_ref(digest))? > 0)
    }

    /// Records whose digest starts with `prefix`, in digest order, at most `limit`.
    /// A range scan over the digest key, never a full scan.
    fn by_prefix(&self, prefix: &DigestPrefix, limit: usize) -> StorageResult<Vec<BlobRecord>>;

    /// Records of one media type, in digest order (a lookup in a media-type key, not a scan).
    fn by_media_type(&self, media_type: &str) -> StorageResult<Vec<BlobRecord>>;

    /// One page of all records in digest order, starting after `after`.
    fn page(&self, after: Option<&Digest>, limit: usize) -> StorageResult<Vec<BlobRecord>>;

    /// How many records there are and the sum of their sizes, read together; fast (`stats`,
    /// `fsck`'s totals), never a walk of the pages.
    fn totals(&self) -> StorageResult<IndexTotals>;

    /// How many records there are, as [`Index::totals`].
    fn count(&self) -> StorageResult<u64> {
        Ok(self.totals()?.records)
    }

    /// The sum of the records' sizes, as [`Index::totals`].
    fn total_size(&self) -> StorageResult<u64> {
        Ok(self.totals()?.bytes)
    }
}

/// What [`Index::totals`] counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IndexTotals {
    /// Records in the index.
    pub records: u64,
    /// The sum of their sizes, in bytes.
    pub bytes: u64,
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
    /// Pages through `index` from the first record, `page_size` records per query.
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

/// `Box<T>` and `Arc<T>` forward the required methods, and `get` and `get_many`, which
/// backends override for speed; the other derived single-record forms run through the
/// forwarded batch ones.
macro_rules! forward_index {
    ($($wrapper:ident),*) => {$(
        impl<T: Index + ?Sized> Index for $wrapper<T> {
            fn upsert_many(&self, records: &[BlobRecord]) -> StorageResult<()> {
                (**self).upsert_many(records)
            }
            fn remove_many(&self, digests: &[Digest]) -> StorageResult<u64> {
                (**self).remove_many(digests)
            }
            fn get(&self, digest: &Digest) -> StorageResult<Option<BlobRecord>> {
                (**self).get(digest)
            }
            fn get_many(&self, digests: &[Digest]) -> StorageResult<Vec<Option<BlobRecord>>> {
                (**self).get_many(digests)
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
            fn totals(&self) -> StorageResult<IndexTotals> { (**self).totals() }
        }
    )*};
}
forward_index!(Box, Arc);

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    use super::*;

    /// An index that answers `get` by its own point lookup and counts range scans.
    #[derive(Default)]
    struct PointLookups {
        range_scans: AtomicU64,
    }

    impl Index for PointLookups {
        fn upsert_many(&self, _: &[BlobRecord]) -> StorageResult<()> {
            Ok(())
        }
        fn get(&self, _: &Digest) -> StorageResult<Option<BlobRecord>> {
            Ok(None)
        }
        fn remove_many(&self, _: &[Digest]) -> StorageResult<u64> {
            Ok(0)
        }
        fn by_prefix(&self, _: &DigestPrefix, _: usize) -> StorageResult<Vec<BlobRecord>> {
            self.range_scans.fetch_add(1, Ordering::Relaxed);
            Ok(Vec::new())
        }
        fn by_media_type(&self, _: &str) -> StorageResult<Vec<BlobRecord>> {
            Ok(Vec::new())
        }
        fn page(&self, _: Option<&Digest>, _: usize) -> StorageResult<Vec<BlobRecord>> {
            Ok(Vec::new())
        }
        fn totals(&self) -> StorageResult<IndexTotals> {
            Ok(IndexTotals::default())
        }
    }

    /// The store holds its index as `Arc<dyn Index>`: a backend's faster `get` must be the one
    /// that runs through it, not the provided range scan (which made every blob read of a GC
    /// re-plan a SQLite statement).
    #[test]
    fn wrappers_forward_a_backends_own_get() {
        let digest = Digest::of_bytes(crate::traits::Algorithm::Sha256, b"x");
        let index = Arc::new(PointLookups::default());
        let shared: Arc<dyn Index> = index.clone();
        shared.get(&digest).unwrap();
        Box::new(Arc::clone(&index)).get(&digest).unwrap();
        assert_eq!(index.range_scans.load(Ordering::Relaxed), 0);
    }
}
