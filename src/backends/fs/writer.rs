//! Writing one blob: stream into a locked staging file while hashing, check against what was
//! expected, then rename into `blobs/<alg>/<hex>`.

use std::io::{self, BufWriter, Write};
use std::mem;

use super::super::staging_lock::StagingLock;
use super::background_hasher::BlobHasher;
use super::filesystem_sync::{FilesystemSync, WriterTimes};
use super::layout::Layout;
use crate::traits::{BlobWriter, Digest, Expected, Hasher, StorageError, StorageResult};
use crate::util::fsync::fsync_dir;
use crate::util::io_context::IoContext;
use crate::util::io_context::IoResultExt;

/// Bytes gathered before they reach the file. Callers often copy in 8 KiB pieces; batching
/// them into large writes keeps a gigabyte-sized layer near `cp` speed.
const WRITE_BUFFER_BYTES: usize = 1024 * 1024;

/// Content up to this size may wait for a batch sync (`finish_unsynced`): for a small file the
/// journal commit of its own fsync is what costs. Larger content is synced when it ends: its
/// data is what costs, and a filesystem-wide sync would also wait for other programs' data.
const DEFERRED_SYNC_LIMIT: u64 = 1024 * 1024;

/// While a blob is written, each time this many more bytes are in the file they are sent to
/// the disk without waiting, so the disk works while the rest is read and hashed, and the sync
/// at the end finds little left to write.
const WRITEBACK_STEP: u64 = 8 * 1024 * 1024;

/// An in-progress write to the `fs` blob store. Dropping it before
/// [`BlobWriter::commit`] removes the staging file.
pub struct FsBlobWriter<'store> {
    layout: &'store Layout,
    sync: &'store FilesystemSync,
    /// Clock of `sync` when this writer was created.
    started: u64,
    expected: Expected,
    state: WriterState,
    /// Bytes accepted into the staging file (buffered ones included).
    written: u64,
    /// Bytes of the staging file already sent to the disk (see [`WRITEBACK_STEP`]).
    written_back: u64,
    /// Set once a write would have gone past the expected size: the total that was attempted.
    /// The write is doomed from then on; `finish` reports it.
    overflowed_to: Option<u64>,
}

enum WriterState {
    Writing {
        staging: BufWriter<StagingLock>,
        hasher: BlobHasher,
    },
    Finished {
        staging: StagingLock,
        digest: Digest,
        size: u64,
        /// `None` once the content is durable; else the clock when writing ended, for
        /// `FilesystemSync::covers`.
        unsynced_since: Option<u64>,
    },
    /// `finish` failed; the staging file is gone.
    Failed,
}

impl<'store> FsBlobWriter<'store> {
    pub(super) fn create(
        layout: &'store Layout,
        sync: &'store FilesystemSync,
        expected: Expected,
    ) -> StorageResult<Self> {
        // Read before anything is written: see `FilesystemSync`.
        let started = sync.now();
        let staging = StagingLock::create(layout.ingest_dir())?;
        let hasher = BlobHasher::new(Hasher::new(expected.algorithm()));
        Ok(Self::writing(
            layout, sync, started, expected, staging, hasher, 0,
        ))
    }

    /// A writer of `digest` whose staging file a later writer of the same digest takes over
    /// if this one dies (see `BlobStore::resumable_writer`): it takes over a dead one's file
    /// now, if there is one, and goes on after its content, which it hashes first.
    pub(super) fn resume(
        layout: &'store Layout,
        sync: &'store FilesystemSync,
        expected: Expected,
        digest: &Digest,
    ) -> StorageResult<Self> {
        let started = sync.now();
        if let Some(staging) = StagingLock::adopt_dead(layout.ingest_dir(), digest)? {
            if let Some((hasher, kept)) = hash_kept(&staging, &expected)? {
                return Ok(Self::writing(
                    layout, sync, started, expected, staging, hasher, kept,
                ));
            }
            // More than the blob can hold: not its start. Dropping it removes it.
        }
        let staging = StagingLock::create_resumable(layout.ingest_dir(), digest)?;
        let hasher = BlobHasher::new(Hasher::new(expected.algorithm()));
        Ok(Self::writing(
            layout, sync, started, expected, staging, hasher, 0,
        ))
    }

    /// A writer going on in `staging`, whose first `kept` bytes `hasher` has hashed and whose
    /// file position is after them.
    fn writing(
        layout: &'store Layout,
        sync: &'store FilesystemSync,
        started: u64,
        expected: Expected,
        staging: StagingLock,
        hasher: BlobHasher,
        kept: u64,
    ) -> Self {
        let capacity = buffer_capacity(&expected);
        FsBlobWriter {
            layout,
            sync,
            started,
            expected,
            state: WriterState::Writing {
                staging: BufWriter::with_capacity(capacity, staging),
                hasher,
            },
            written: kept,
            overflowed_to: None,
            written_back: kept,
        }
    }

    /// How errors name this blob before its digest is known.
    fn label(&self) -> String {
        match &self.expected.digest {
            Some(digest) => digest.to_string(),
            None => "the blob being written".to_string(),
        }
    }

    /// Ends the content and checks it, then syncs it unless `may_defer` and it is small. On
    /// any error the staging file is removed (by dropping it) and the writer is left `Failed`.
    fn seal(
        &mut self,
        staging: BufWriter<StagingLock>,
        hasher: BlobHasher,
        may_defer: bool,
    ) -> StorageResult<WriterState> {
        if let (Some(expected), Some(actual)) = (self.expected.size, self.overflowed_to) {
            return Err(StorageError::SizeMismatch {
                digest: self.label(),
                expected,
                actual,
            });
        }
        let path = staging.get_ref().path().to_path_buf();
        let staging = staging.into_inner().map_err(|error| {
            StorageError::from(IoContext::new(
                "writing the ingest file",
                path,
                error.into_error(),
            ))
        })?;
        let digest = hasher.finish();
        let size = self.written;
        self.expected.verify(&digest, size)?;
        // Checked before syncing so rejected content costs no disk flush.
        let unsynced_since = if may_defer && size <= DEFERRED_SYNC_LIMIT {
            Some(self.sync.now())
        } else {
            sync_file(&staging)?;
            None
        };
        Ok(WriterState::Finished {
            staging,
            digest,
            size,
            unsynced_since,
        })
    }

    /// Ends the content (see [`FsBlobWriter::seal`]), or for finished content, makes it durable
    /// unless `may_defer`.
    fn end(&mut self, may_defer: bool) -> StorageResult<(Digest, u64)> {
        match mem::replace(&mut self.state, WriterState::Failed) {
            WriterState::Writing { staging, hasher } => {
                self.state = self.seal(staging, hasher, may_defer)?;
            }
            WriterState::Finished {
                staging,
                digest,
                size,
                unsynced_since: Some(finished),
            } if !may_defer => {
                let times = WriterTimes {
                    started: self.started,
                    finished,
                };
                if !self.sync.covers(times) {
                    sync_file(&staging)?;
                }
                self.state = WriterState::Finished {
                    staging,
                    digest,
                    size,
                    unsynced_since: None,
                };
            }
            finished @ WriterState::Finished { .. } => self.state = finished,
            WriterState::Failed => {
                return Err(StorageError::InvalidArgument(format!(
                    "the write of {} already failed",
                    self.label()
                )))
            }
        }
        match &self.state {
            WriterState::Finished { digest, size, .. } => Ok((digest.clone(), *size)),
            WriterState::Writing { .. } | WriterState::Failed => Err(
                StorageError::InvalidArgument(format!("{} was not finished", self.label())),
            ),
        }
    }
}

impl Write for FsBlobWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if let (Some(limit), None) = (self.expected.size, self.overflowed_to) {
            let attempted = self.written + bytes.len() as u64;
            if attempted > limit {
                self.overflowed_to = Some(attempted);
            }
        }
        if let (Some(expected), Some(actual)) = (self.expected.size, self.overflowed_to) {
            let error = StorageError::SizeMismatch {
                digest: self.label(),
                expected,
                actual,
            };
            return Err(io::Error::new(io::ErrorKind::InvalidData, error));
        }
        let WriterState::Writing { staging, hasher } = &mut self.state else {
            let error =
                StorageError::InvalidArgument(format!("write to {} after finish", self.label()));
            return Err(io::Error::other(error));
        };
        // Handed to the hasher first, so a background hasher works on these bytes while they
        // are copied into the file.
        let total = self.written + bytes.len() as u64;
        hasher.update(bytes, total);
        if let Err(error) = staging.write_all(bytes) {
            // The hash now covers bytes the file may lack: this write can only fail.
            self.abandon();
            return Err(error);
        }
        self.written = total;
        let in_file = total - staging.buffer().len() as u64;
        if in_file - self.written_back >= WRITEBACK_STEP {
            start_writeback(
                staging.get_ref(),
                self.written_back,
                in_file - self.written_back,
            );
            self.written_back = in_file;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.state {
            WriterState::Writing { staging, .. } => staging.flush(),
            WriterState::Finished { .. } | WriterState::Failed => Ok(()),
        }
    }
}

impl BlobWriter for FsBlobWriter<'_> {
    fn written(&self) -> u64 {
        self.written
    }

    fn finish(&mut self) -> StorageResult<(Digest, u64)> {
        self.end(false)
    }

    fn finish_unsynced(&mut self) -> StorageResult<(Digest, u64)> {
        self.end(true)
    }

    fn needs_sync(&self) -> bool {
        match &self.state {
            WriterState::Finished {
                unsynced_since: Some(finished),
                ..
            } => !self.sync.covers(WriterTimes {
                started: self.started,
                finished: *finished,
            }),
            _ => false,
        }
    }

    fn commit(self: Box<Self>) -> StorageResult<(Digest, u64)> {
        let layout = self.layout;
        let (digest, size) = self.commit_unsynced()?;
        let dir = layout.algorithm_dir(digest.algorithm());
        fsync_dir(&dir).io_context("syncing the directory", &dir)?;
        Ok((digest, size))
    }

    /// The rename alone; [`super::FsBlobStore`]'s `sync_committed` syncs the directory once
    /// for a whole batch.
    fn commit_unsynced(mut self: Box<Self>) -> StorageResult<(Digest, u64)> {
        self.finish()?;
        let WriterState::Finished {
            staging,
            digest,
            size,
            ..
        } = mem::replace(&mut self.state, WriterState::Failed)
        else {
            return Err(StorageError::InvalidArgument(format!(
                "{} was not finished",
                self.label()
            )));
        };
        let target = self.layout.blob_path(&digest);
        // Always rename over an existing file: ours is verified, while a file already there
        // (left by a crash between rename and index record, or damaged outside the store with
        // its size intact) is not. The store only commits blobs it has not indexed, so this
        // costs a rename, and readers of the old file keep their open descriptor.
        crate::crash_point!("fs.commit.before-rename");
        staging.persist(&target).map_err(|error| {
            StorageError::from(IoContext::new(
                format!("committing blob {digest}"),
                &target,
                error,
            ))
        })?;
        crate::crash_point!("fs.commit.after-rename");
        Ok((digest, size))
    }
}

impl FsBlobWriter<'_> {
    /// Ends the write as failed: buffered bytes are discarded rather than flushed into a file
    /// about to be removed, and dropping the staging file removes it, then releases its lock.
    fn abandon(&mut self) {
        if let WriterState::Writing { staging, .. } =
            mem::replace(&mut self.state, WriterState::Failed)
        {
            let (staging, _unwritten) = staging.into_parts();
            drop(staging);
        }
    }
}

impl Drop for FsBlobWriter<'_> {
    fn drop(&mut self) {
        self.abandon();
    }
}

/// Reads a taken-over staging file from its start to its end through a new hash, leaving its
/// position at the end, where the write goes on: the bytes a dead writer left count only as
/// far as the final digest check says they belong. `None` when the file holds more than the
/// expected size (it cannot be the start of the blob).
fn hash_kept(
    staging: &StagingLock,
    expected: &Expected,
) -> StorageResult<Option<(BlobHasher, u64)>> {
    let read_error = |error| {
        StorageError::from(IoContext::new(
            "reading a staged write",
            staging.path(),
            error,
        ))
    };
    let mut file = staging.file();
    io::Seek::seek(&mut file, io::SeekFrom::Start(0)).map_err(read_error)?;
    let mut hasher = BlobHasher::new(Hasher::new(expected.algorithm()));
    let mut buffer = vec![0u8; WRITE_BUFFER_BYTES];
    let mut kept = 0u64;
    loop {
        let read = match io::Read::read(&mut file, &mut buffer) {
            Ok(0) => return Ok(Some((hasher, kept))),
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(read_error(error)),
        };
        kept += read as u64;
        if expected.size.is_some_and(|size| kept > size) {
            return Ok(None);
        }
        hasher.update(&buffer[..read], kept);
    }
}

/// The write buffer: no larger than the content is expected to be, so a small blob written in
/// one piece goes straight to the file instead of through a copy.
fn buffer_capacity(expected: &Expected) -> usize {
    expected.size.map_or(WRITE_BUFFER_BYTES, |size| {
        usize::try_from(size).map_or(WRITE_BUFFER_BYTES, |size| size.clamp(1, WRITE_BUFFER_BYTES))
    })
}

/// Starts writing a range of the file's dirty pages to the disk without waiting (a hint:
/// durability still comes from a sync).
#[cfg(target_os = "linux")]
fn start_writeback(staging: &StagingLock, offset: u64, length: u64) {
    use std::os::unix::io::AsRawFd;
    let (Ok(offset), Ok(length)) = (i64::try_from(offset), i64::try_from(length)) else {
        return;
    };
    // SAFETY: only reads the descriptor, which `staging` keeps open. A failure is harmless.
    unsafe {
        libc::sync_file_range(
            staging.file().as_raw_fd(),
            offset,
            length,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_staging: &StagingLock, _offset: u64, _length: u64) {}

fn sync_file(staging: &StagingLock) -> StorageResult<()> {
    staging.file().sync_all().map_err(|source| {
        StorageError::from(IoContext::new(
            "syncing the ingest file",
            staging.path(),
            source,
        ))
    })
}
