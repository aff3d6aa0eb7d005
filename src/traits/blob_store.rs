//! Blob content addressed by digest.

use std::io::{Read, Seek, Write};
use std::sync::Arc;

use super::digest::{Algorithm, Digest};
use super::error::{StorageError, StorageResult};
use super::sorted_digests::SortedDigests;

/// What the caller knows about the content before it is written. A mismatch is an error at
/// `finish` (or as soon as the size is exceeded) and nothing becomes visible.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expected {
    /// The digest the content must hash to; `None` to accept any content.
    pub digest: Option<Digest>,
    /// The size in bytes the content must have; `None` when unknown.
    pub size: Option<u64>,
    /// The algorithm to hash with when no digest is expected (appc image IDs are sha512 of
    /// content whose digest is not known before it is read); sha256 when absent.
    pub algorithm: Option<Algorithm>,
}

impl Expected {
    /// The algorithm to hash with: that of the expected digest, else the one asked for, else
    /// sha256.
    pub fn algorithm(&self) -> Algorithm {
        self.digest
            .as_ref()
            .map(Digest::algorithm)
            .or(self.algorithm)
            .unwrap_or(Algorithm::Sha256)
    }

    /// Checks finished content against the expectation, size first, then digest. Every blob
    /// store calls this from `finish`, so all report a mismatch alike.
    pub fn verify(&self, digest: &Digest, size: u64) -> StorageResult<()> {
        if let Some(expected) = self.size {
            if expected != size {
                return Err(StorageError::SizeMismatch {
                    digest: self.digest.as_ref().unwrap_or(digest).to_string(),
                    expected,
                    actual: size,
                });
            }
        }
        if let Some(expected) = &self.digest {
            if expected != digest {
                return Err(StorageError::DigestMismatch {
                    expected: expected.clone(),
                    actual: digest.clone(),
                });
            }
        }
        Ok(())
    }
}

/// A readable, seekable blob.
pub trait BlobRead: Read + Seek + Send {}
impl<T: Read + Seek + Send> BlobRead for T {}

/// An in-progress write. Content is hashed as it is written and kept out of sight (an ingest
/// file, uncommitted chunks) until [`BlobWriter::commit`]. Dropping a writer aborts it.
pub trait BlobWriter: Write + Send {
    /// Bytes written so far.
    fn written(&self) -> u64;

    /// Ends the content: makes it durable in its staging place and returns the digest and size,
    /// after checking them against [`Expected`]. Writing after `finish` is an error.
    fn finish(&mut self) -> StorageResult<(Digest, u64)>;

    /// [`BlobWriter::finish`] that may leave the staged content not yet durable, for a batch
    /// made durable at once by [`BlobStore::sync_staged`]. Committing never depends on that
    /// call: `commit` makes content durable first unless a sync already did. The default
    /// is `finish`.
    fn finish_unsynced(&mut self) -> StorageResult<(Digest, u64)> {
        self.finish()
    }

    /// Whether finished content still waits to be made durable (see
    /// [`BlobWriter::finish_unsynced`]). The default never waits.
    fn needs_sync(&self) -> bool {
        false
    }

    /// Makes finished content visible under its digest, atomically. If the blob already exists
    /// the staged copy is discarded (content addressing makes them equal).
    fn commit(self: Box<Self>) -> StorageResult<(Digest, u64)>;

    /// [`BlobWriter::commit`], except that the blob's new name need not be durable yet: for
    /// committing many blobs with one sync ([`BlobStore::sync_committed`]), which the caller
    /// makes before anything names the blobs (an index record). The content itself is durable
    /// (`finish`). The default commits durably at once.
    fn commit_unsynced(self: Box<Self>) -> StorageResult<(Digest, u64)> {
        self.commit()
    }
}

/// Where blob content lives. Implementations never buffer a blob whole in memory.
///
/// A backend implements the required methods; the single-blob [`BlobStore::delete`] and
/// [`BlobStore::contains`] are derived from [`BlobStore::delete_many`] and
/// [`BlobStore::size`] and are not overridden (the `Box`/`Arc` forwarders and the conformance
/// fault wrappers forward only the required methods and the provided ones a backend
/// overrides). Those are the sync hooks ([`BlobStore::sync_staged`],
/// [`BlobStore::sync_committed`]), which a backend overrides when it can share syncs across a
/// batch, [`BlobStore::resumable_writer`] and [`BlobStore::dead_ingest_usage`].
pub trait BlobStore: Send + Sync {
    /// Starts writing a blob; nothing is visible until the writer's `finish` succeeds.
    fn writer(&self, expected: Expected) -> StorageResult<Box<dyn BlobWriter + '_>>;

    /// Starts writing a blob of a known digest ([`Expected::digest`]) whose staged bytes
    /// outlive a writer that dies part-way (a killed pull): a writer of the same digest taken
    /// later, in any process, takes over what a dead one staged, reads those bytes back
    /// through its hash (so the digest check of `finish` covers them) and counts them in
    /// [`BlobWriter::written`], so that the caller sends only the rest. A dead staged write
    /// stays garbage for [`BlobStore::remove_dead_ingests`] until a writer takes it over;
    /// content that does not hash to the digest in the end fails `finish` and is discarded,
    /// whatever part of it was kept. The caller makes sure no other resumable writer of the
    /// digest runs at the same time (a pull holds the digest's fetch lock). Without an
    /// expected digest, and by default (a backend that cannot resume), this is
    /// [`BlobStore::writer`], starting from nothing.
    fn resumable_writer(&self, expected: Expected) -> StorageResult<Box<dyn BlobWriter + '_>> {
        self.writer(expected)
    }

    /// Opens a blob for reading; [`super::StorageError::BlobNotFound`] if absent.
    fn open(&self, digest: &Digest) -> StorageResult<Box<dyn BlobRead + '_>>;

    /// The stored size, or `None` when the content is absent.
    fn size(&self, digest: &Digest) -> StorageResult<Option<u64>>;

    /// Deletes blobs; returns how many were there. SQLite and LMDB do it in one transaction.
    /// Content is the last thing a delete removes (its index record is gone already), so this
    /// need not be durable when it returns: a crash that loses some of the deletes only leaves
    /// content without an index record, which base GC removes (`fs` unlinks without a
    /// directory sync).
    fn delete_many(&self, digests: &[Digest]) -> StorageResult<u64>;

    /// Removes one blob's content, as [`BlobStore::delete_many`]. Returns whether it was there.
    fn delete(&self, digest: &Digest) -> StorageResult<bool> {
        Ok(self.delete_many(std::slice::from_ref(digest))? > 0)
    }

    /// Every stored digest in digest-string order (the index's), listed without holding them
    /// all as `Digest`s: for merging with the index page by page (GC, fsck). Backends with
    /// sorted keys page through them; the `fs` store sorts externally.
    fn sorted_digests(&self) -> StorageResult<SortedDigests<'_>>;

    /// Removes staged writes whose writer is gone (crashed process, dropped writer that could
    /// not clean up). Never touches a write that is still in progress. Returns how many and
    /// how many bytes were removed.
    fn remove_dead_ingests(&self) -> StorageResult<(u64, u64)>;

    /// What [`BlobStore::remove_dead_ingests`] would remove now (writes, bytes), changing
    /// nothing: for a GC's dry run. `None` when the backend cannot tell without removing.
    fn dead_ingest_usage(&self) -> StorageResult<Option<(u64, u64)>> {
        Ok(None)
    }

    /// Whether a reader opened by [`BlobStore::open`] keeps reading the same bytes after the
    /// blob is deleted (the `fs` store: an open file outlives its unlink). When not, a reader
    /// that must not be cut short (a server's response) holds the blob while it reads
    /// (`Store::read_held`). The default: no.
    fn reads_outlive_delete(&self) -> bool {
        false
    }

    /// Whether the content is stored: [`BlobStore::size`] is `Some`.
    fn contains(&self, digest: &Digest) -> StorageResult<bool> {
        Ok(self.size(digest)?.is_some())
    }

    /// Makes durable, at once, the content of every writer of this store that
    /// [`BlobWriter::finish_unsynced`] finished before the call (the `fs` store: one
    /// `syncfs`), so their commits need no sync of their own. The default has nothing to do.
    fn sync_staged(&self) -> StorageResult<()> {
        Ok(())
    }

    /// Makes the blobs committed with [`BlobWriter::commit_unsynced`] durable under their
    /// names; `digests` are those blobs (the `fs` store syncs each `blobs/<alg>/` directory
    /// they were renamed into, once). The default has nothing to do, since its
    /// `commit_unsynced` is durable already.
    fn sync_committed(&self, digests: &[Digest]) -> StorageResult<()> {
        let _ = digests;
        Ok(())
    }
}

/// `Box<T>` and `Arc<T>` forward the required methods and the sync hooks; the derived
/// single-blob forms run through the forwarded batch ones.
macro_rules! forward_blob_store {
    ($($wrapper:ident),*) => {$(
        impl<T: BlobStore + ?Sized> BlobStore for $wrapper<T> {
            fn writer(&self, expected: Expected) -> StorageResult<Box<dyn BlobWriter + '_>> {
                (**self).writer(expected)
            }
            fn resumable_writer(
                &self,
                expected: Expected,
            ) -> StorageResult<Box<dyn BlobWriter + '_>> {
                (**self).resumable_writer(expected)
            }
            fn open(&self, digest: &Digest) -> StorageResult<Box<dyn BlobRead + '_>> {
                (**self).open(digest)
            }
            fn size(&self, digest: &Digest) -> StorageResult<Option<u64>> { (**self).size(digest) }
            fn delete_many(&self, digests: &[Digest]) -> StorageResult<u64> {
                (**self).delete_many(digests)
            }
            fn sorted_digests(&self) -> StorageResult<SortedDigests<'_>> {
                (**self).sorted_digests()
            }
            fn remove_dead_ingests(&self) -> StorageResult<(u64, u64)> {
                (**self).remove_dead_ingests()
            }
            fn dead_ingest_usage(&self) -> StorageResult<Option<(u64, u64)>> {
                (**self).dead_ingest_usage()
            }
            fn sync_staged(&self) -> StorageResult<()> { (**self).sync_staged() }
            fn reads_outlive_delete(&self) -> bool { (**self).reads_outlive_delete() }
            fn sync_committed(&self, digests: &[Digest]) -> StorageResult<()> {
                (**self).sync_committed(digests)
            }
        }
    )*};
}
forward_blob_store!(Box, Arc);
