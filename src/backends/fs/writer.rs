//! Writing one blob: stream into a locked staging file while hashing, check against what was
//! expected, then rename into `blobs/<alg>/<hex>`.

use std::io::{self, BufWriter, Write};
use std::mem;

use super::super::staging_lock::StagingLock;
use super::layout::{sync_directory, Layout};
use crate::traits::{BlobWriter, Digest, Expected, Hasher, StorageError, StorageResult};

/// Bytes gathered before they reach the file. Callers often copy in 8 KiB pieces; batching
/// them into large writes keeps a gigabyte-sized layer near `cp` speed.
const WRITE_BUFFER_BYTES: usize = 1024 * 1024;

/// An in-progress write to the `fs` blob store. Dropping it before
/// [`BlobWriter::commit`] removes the staging file.
pub struct FsBlobWriter<'store> {
    layout: &'store Layout,
    expected: Expected,
    state: WriterState,
    /// Bytes accepted into the staging file (buffered ones included).
    written: u64,
    /// Set once a write would have gone past the expected size: the total that was attempted.
    /// The write is doomed from then on; `finish` reports it.
    overflowed_to: Option<u64>,
}

enum WriterState {
    Writing {
        staging: BufWriter<StagingLock>,
        // Boxed only to keep the states of similar size; the hasher is touched once per write.
        hasher: Box<Hasher>,
    },
    Finished {
        staging: StagingLock,
        digest: Digest,
        size: u64,
    },
    /// `finish` failed; the staging file is gone.
    Failed,
}

impl<'store> FsBlobWriter<'store> {
    pub(super) fn create(layout: &'store Layout, expected: Expected) -> StorageResult<Self> {
        let staging = StagingLock::create(layout.ingest_dir())?;
        let hasher = Box::new(Hasher::new(expected.algorithm()));
        Ok(FsBlobWriter {
            layout,
            expected,
            state: WriterState::Writing {
                staging: BufWriter::with_capacity(WRITE_BUFFER_BYTES, staging),
                hasher,
            },
            written: 0,
            overflowed_to: None,
        })
    }

    /// How errors name this blob before its digest is known.
    fn label(&self) -> String {
        match &self.expected.digest {
            Some(digest) => digest.to_string(),
            None => "the blob being written".to_string(),
        }
    }

    /// Ends the content and checks it. On any error the staging file is removed (by dropping
    /// it) and the writer is left `Failed`.
    fn seal(
        &mut self,
        staging: BufWriter<StagingLock>,
        hasher: Box<Hasher>,
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
            StorageError::io("writing the ingest file", path, error.into_error())
        })?;
        let digest = hasher.finish();
        let size = self.written;
        self.expected.verify(&digest, size)?;
        // Checked before syncing so rejected content costs no disk flush.
        staging.file().sync_all().map_err(|source| {
            StorageError::io("syncing the ingest file", staging.path(), source)
        })?;
        Ok(WriterState::Finished {
            staging,
            digest,
            size,
        })
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
        let accepted = staging.write(bytes)?;
        hasher.update(&bytes[..accepted]);
        self.written += accepted as u64;
        Ok(accepted)
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
        match mem::replace(&mut self.state, WriterState::Failed) {
            WriterState::Writing { staging, hasher } => {
                self.state = self.seal(staging, hasher)?;
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

    fn commit(mut self: Box<Self>) -> StorageResult<(Digest, u64)> {
        self.finish()?;
        let WriterState::Finished {
            staging,
            digest,
            size,
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
        staging.persist(&target).map_err(|error| {
            StorageError::io(format!("committing blob {digest}"), &target, error)
        })?;
        sync_directory(&self.layout.algorithm_dir(digest.algorithm()))?;
        Ok((digest, size))
    }
}

impl Drop for FsBlobWriter<'_> {
    fn drop(&mut self) {
        // An aborted write: discard buffered bytes rather than flushing them into a file about
        // to be removed. Dropping the staging file removes it, then releases its lock.
        if let WriterState::Writing { staging, .. } =
            mem::replace(&mut self.state, WriterState::Failed)
        {
            let (staging, _unwritten) = staging.into_parts();
            drop(staging);
        }
    }
}
