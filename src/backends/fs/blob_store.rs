//! [`FsBlobStore`]: the [`BlobStore`] over `blobs/<alg>/<hex>` files.

use std::fs::{self, File};
use std::io;
use std::path::Path;

use super::filesystem_sync::FilesystemSync;
use super::ingest;
use super::layout::Layout;
use super::sorted_listing::ExternalSort;
use super::writer::FsBlobWriter;
use crate::traits::{
    Algorithm, BlobRead, BlobStore, BlobWriter, Digest, Expected, SortedDigests, StorageError,
    StorageResult,
};
use crate::util::fsync::fsync_dir;
use crate::util::io_context::{IoContext, IoResultExt};

/// How many threads a batched delete unlinks on. Most of an unlink's time is spent waiting:
/// the directory's lock, the journal, and on a file system mounted with `discard` the trim of
/// the freed blocks, which ext4 issues before the unlink returns. Those waits overlap, so on
/// the bench machine 8 unlinkers delete 1,500 blobs in about half the time of one (as
/// `xargs -P 8 rm` does against `rm`), whatever the number of cores.
const UNLINKERS: usize = 8;

/// Below this many blobs per thread, starting one costs more than it saves.
const UNLINKS_PER_UNLINKER: usize = 32;

/// Blob content as plain files in a store directory. Safe to share between threads and with
/// other processes using the same directory: every change is a rename or an unlink.
#[derive(Debug)]
pub struct FsBlobStore {
    layout: Layout,
    sync: FilesystemSync,
}

impl FsBlobStore {
    /// The blob store of the store directory `dir`, creating `blobs/<alg>/` and `ingest/` if
    /// they are missing.
    pub fn open(dir: &Path) -> StorageResult<FsBlobStore> {
        let layout = Layout::create(dir)?;
        let sync = FilesystemSync::open(layout.ingest_dir())?;
        Ok(FsBlobStore { layout, sync })
    }

    /// Unlinks each blob's file in turn; a missing file is not an error. Returns how many
    /// were there.
    fn unlink_all(&self, digests: &[Digest]) -> StorageResult<u64> {
        let mut deleted = 0;
        for digest in digests {
            let path = self.layout.blob_path(digest);
            match fs::remove_file(&path) {
                Ok(()) => deleted += 1,
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(StorageError::from(IoContext::new(
                        format!("deleting blob {digest}"),
                        path,
                        source,
                    )))
                }
            }
        }
        Ok(deleted)
    }

    #[cfg(any(test, feature = "test-support"))]
    /// Where the content of `digest` is (or would be) stored, for callers that want to
    /// hard-link or reflink it rather than stream it.
    pub fn blob_path(&self, digest: &Digest) -> std::path::PathBuf {
        self.layout.blob_path(digest)
    }

    /// The digests of the files in `blobs/<algorithm>/`, skipping names that are not digests.
    fn digests_of(&self, algorithm: Algorithm, found: &mut dyn FnMut(Digest)) -> StorageResult<()> {
        let dir = self.layout.algorithm_dir(algorithm);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(StorageError::from(IoContext::new(
                    "listing blobs",
                    &dir,
                    source,
                )))
            }
        };
        for entry in entries {
            let entry = entry.io_context("listing blobs", &dir)?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let Ok(digest) = Digest::parse(&format!("{}:{name}", algorithm.name())) else {
                continue;
            };
            let is_file = entry
                .file_type()
                .map_err(|source| IoContext::new("listing blobs", entry.path(), source))?
                .is_file();
            if is_file {
                found(digest);
            }
        }
        Ok(())
    }
}

impl BlobStore for FsBlobStore {
    fn writer(&self, expected: Expected) -> StorageResult<Box<dyn BlobWriter + '_>> {
        Ok(Box::new(FsBlobWriter::create(
            &self.layout,
            &self.sync,
            expected,
        )?))
    }

    /// The staging file is `ingest/<id>.<alg>-<hex>.staging`, the staged bytes themselves: a
    /// writer taking over a dead one's reads it through its hash and appends to it.
    fn resumable_writer(&self, expected: Expected) -> StorageResult<Box<dyn BlobWriter + '_>> {
        let Some(digest) = expected.digest.clone() else {
            return self.writer(expected);
        };
        Ok(Box::new(FsBlobWriter::resume(
            &self.layout,
            &self.sync,
            expected,
            &digest,
        )?))
    }

    fn open(&self, digest: &Digest) -> StorageResult<Box<dyn BlobRead + '_>> {
        let path = self.layout.blob_path(digest);
        match File::open(&path) {
            Ok(file) => Ok(Box::new(file)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                Err(StorageError::BlobNotFound(digest.clone()))
            }
            Err(source) => Err(StorageError::from(IoContext::new(
                format!("opening blob {digest}"),
                path,
                source,
            ))),
        }
    }

    fn size(&self, digest: &Digest) -> StorageResult<Option<u64>> {
        let path = self.layout.blob_path(digest);
        match fs::metadata(&path) {
            Ok(metadata) => Ok(Some(metadata.len())),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StorageError::from(IoContext::new(
                format!("reading the size of blob {digest}"),
                path,
                source,
            ))),
        }
    }

    /// Unlinks them all, without syncing the directories: a batched delete is the last step of
    /// deletes whose index records are already gone (see `Store::delete_many_locked`), so an
    /// unlink a crash loses leaves only content without an index record, which base GC
    /// removes. (One directory sync after 1,500 unlinks cost more than the unlinks.) Several
    /// unlinks are in flight at once: see [`UNLINKERS`].
    fn delete_many(&self, digests: &[Digest]) -> StorageResult<u64> {
        let unlinkers = digests.len().div_ceil(UNLINKS_PER_UNLINKER).min(UNLINKERS);
        if unlinkers <= 1 {
            return self.unlink_all(digests);
        }
        let share = digests.len().div_ceil(unlinkers);
        std::thread::scope(|scope| {
            let parts: Vec<_> = digests
                .chunks(share)
                .map(|part| scope.spawn(move || self.unlink_all(part)))
                .collect();
            // Every part is waited for before an error is returned: none is left half done
            // behind the caller's digest locks.
            let results: Vec<StorageResult<u64>> = parts
                .into_iter()
                .map(|part| {
                    part.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect();
            results.into_iter().sum()
        })
    }

    /// A flat directory cannot be read in order: the names are sorted in bounded memory by
    /// an external sort whose runs spill beside the staging files.
    fn sorted_digests(&self) -> StorageResult<SortedDigests<'_>> {
        let mut sort = ExternalSort::new(self.layout.ingest_dir());
        let mut failed = None;
        for algorithm in Algorithm::ALL {
            self.digests_of(algorithm, &mut |digest| {
                if failed.is_none() {
                    failed = sort.push(&digest).err();
                }
            })?;
        }
        if let Some(error) = failed {
            return Err(error);
        }
        sort.finish()
    }

    fn remove_dead_ingests(&self) -> StorageResult<(u64, u64)> {
        ingest::remove_dead_ingests(self.layout.ingest_dir())
    }

    fn dead_ingest_usage(&self) -> StorageResult<Option<(u64, u64)>> {
        let (mut writes, mut bytes) = (0, 0);
        crate::backends::staging_lock::probe_dead(self.layout.ingest_dir(), |dead| {
            writes += 1;
            bytes += dead.file_bytes;
            Ok(())
        })?;
        Ok(Some((writes, bytes)))
    }

    /// An open file keeps its content after the unlink.
    fn reads_outlive_delete(&self) -> bool {
        true
    }

    /// One `syncfs` for every writer finished with `finish_unsynced` before the call (see
    /// `filesystem_sync.rs`).
    fn sync_staged(&self) -> StorageResult<()> {
        self.sync.sync()
    }

    /// One fsync of each `blobs/<alg>/` directory the blobs were renamed into.
    fn sync_committed(&self, digests: &[Digest]) -> StorageResult<()> {
        for algorithm in Algorithm::ALL {
            if digests.iter().any(|d| d.algorithm() == algorithm) {
                let dir = self.layout.algorithm_dir(algorithm);
                fsync_dir(&dir).io_context("syncing the directory", &dir)?;
            }
        }
        Ok(())
    }
}
