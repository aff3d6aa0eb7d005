//! Writing a blob into LMDB: content is hashed as it arrives and staged one chunk at a time
//! (one short write transaction per chunk, so at most one chunk is in memory); the commit only
//! writes the content record pointing at the staged chunks, in one short transaction, so LMDB's
//! single writer lock (shared by every process) is never held while a large blob is copied.

use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

use super::environment::{HeedResultExt, SharedEnv};
use super::keys::{decode_u64, delete_prefix, encode_u64, join, prefix_of};
use super::records::{encode_blob_content, BlobContent, ChunkLocation};
use super::staging::{delete_staged, staged_chunk_key, staged_chunks_prefix, StagingLock};
use crate::traits::{BlobWriter, Digest, Expected, Hasher, StorageError, StorageResult};

/// `prefix \0 sequence`: one chunk of content, under the prefix its content record names
/// ([`chunks_prefix`]).
pub(crate) fn chunk_key(prefix: &str, sequence: u64) -> Vec<u8> {
    join(prefix.as_bytes(), &encode_u64(sequence))
}

/// The key prefix of a committed blob's chunks.
pub(crate) fn chunks_prefix(digest: &Digest, content: &BlobContent) -> String {
    match &content.chunks {
        ChunkLocation::Digest => digest.to_string(),
        ChunkLocation::Staged(id) => staged_chunks_prefix(id),
    }
}

enum WriterState {
    Writing,
    Finished { digest: Digest, size: u64 },
    Failed(Failure),
    Committed,
}

/// Why a write failed, kept so later calls report the same cause.
enum Failure {
    TooLarge { expected: u64, attempted: u64 },
    Other(String),
}

pub(crate) struct LmdbBlobWriter {
    env: Arc<SharedEnv>,
    staging: StagingLock,
    expected: Expected,
    chunk_size: u32,
    hasher: Option<Hasher>,
    /// Content not yet staged; staged whenever it reaches `chunk_size`.
    buffer: Vec<u8>,
    chunks_staged: u64,
    written: u64,
    state: WriterState,
}

impl LmdbBlobWriter {
    pub(crate) fn new(
        env: Arc<SharedEnv>,
        staging: StagingLock,
        chunk_size: u32,
        expected: Expected,
    ) -> Self {
        let hasher = Some(Hasher::new(expected.algorithm()));
        LmdbBlobWriter {
            env,
            staging,
            expected,
            chunk_size,
            hasher,
            buffer: Vec::new(),
            chunks_staged: 0,
            written: 0,
            state: WriterState::Writing,
        }
    }

    /// A writer of `digest` whose staged chunks a later writer of the same digest takes over
    /// if this one dies (see `BlobStore::resumable_writer`): it takes over a dead one's now,
    /// if there are any, and goes on after them.
    pub(crate) fn resume(
        env: Arc<SharedEnv>,
        staging_dir: &Path,
        chunk_size: u32,
        expected: Expected,
        digest: &Digest,
    ) -> StorageResult<Self> {
        if let Some(staging) = StagingLock::adopt_dead(staging_dir, digest)? {
            if let Some(writer) = Self::take_over(&env, staging, chunk_size, &expected)? {
                return Ok(writer);
            }
        }
        let staging = StagingLock::create_resumable(staging_dir, digest)?;
        Ok(Self::new(env, staging, chunk_size, expected))
    }

    /// Goes on with the staged write of a dead writer whose staging file `staging` holds:
    /// its chunks are hashed again in order (the final digest check covers them) and stay
    /// where they are; a short last chunk (staged by a `finish` that did not get to commit)
    /// becomes the buffer again. `None`, with the staging file removed (and the chunks too,
    /// while the write's marker says they are staged), when there is nothing to go on from:
    /// no marker (nothing staged, or the chunks became a committed blob's before the writer
    /// died), or chunks that are not a blob's start as this store writes them (another chunk
    /// size, a gap, more than the expected size).
    fn take_over(
        env: &Arc<SharedEnv>,
        staging: StagingLock,
        chunk_size: u32,
        expected: &Expected,
    ) -> StorageResult<Option<Self>> {
        let id = staging.id().to_string();
        let prefix = prefix_of(staged_chunks_prefix(&id).as_bytes());
        let marker = staged_chunk_key(&id, 0);
        let full = chunk_size as usize;
        let kept = env.read(|rtxn| {
            let databases = &env.databases;
            let context = || format!("reading the staged write {id}");
            if databases
                .blob_staging
                .get(rtxn, &marker)
                .with_context(context)?
                .is_none()
            {
                return Ok(None);
            }
            let mut hasher = Hasher::new(expected.algorithm());
            let (mut chunks, mut written, mut last_short) = (0u64, 0u64, None);
            for entry in databases
                .blob_chunks
                .prefix_iter(rtxn, &prefix)
                .with_context(context)?
            {
                let (key, chunk) = entry.with_context(context)?;
                let sequence = decode_u64(&key[prefix.len()..], || {
                    format!("the sequence of a chunk of the staged write {id}")
                })?;
                let fits = last_short.is_none()
                    && sequence == chunks
                    && !chunk.is_empty()
                    && chunk.len() <= full
                    && expected
                        .size
                        .is_none_or(|size| written + chunk.len() as u64 <= size);
                if !fits {
                    return Ok(Some(Err(())));
                }
                hasher.update(chunk);
                written += chunk.len() as u64;
                chunks += 1;
                if chunk.len() < full {
                    last_short = Some(chunk.to_vec());
                }
            }
            Ok(Some(Ok((hasher, chunks, written, last_short))))
        })?;
        let Some(Ok((hasher, mut chunks, written, last_short))) = kept else {
            if kept.is_some() {
                delete_staged(env, &id)?;
            }
            drop(staging);
            return Ok(None);
        };
        if chunks == 0 {
            delete_staged(env, &id)?;
            drop(staging);
            return Ok(None);
        }
        let mut buffer = Vec::new();
        if let Some(short) = last_short {
            // In memory again, as the buffer.
            chunks -= 1;
            let key = chunk_key(&staged_chunks_prefix(&id), chunks);
            env.write(|wtxn| {
                env.databases
                    .blob_chunks
                    .delete(wtxn, &key)
                    .with_context(|| format!("taking over the staged write {id}"))
            })?;
            buffer = short;
        }
        let mut writer = Self::new(env.clone(), staging, chunk_size, expected.clone());
        writer.hasher = Some(hasher);
        writer.buffer = buffer;
        writer.chunks_staged = chunks;
        writer.written = written;
        Ok(Some(writer))
    }

    fn expected_name(&self) -> String {
        match &self.expected.digest {
            Some(digest) => digest.to_string(),
            None => format!("blob being written (staging id {})", self.staging.id()),
        }
    }

    fn failure_error(&self, failure: &Failure) -> StorageError {
        match failure {
            Failure::TooLarge {
                expected,
                attempted,
            } => StorageError::SizeMismatch {
                digest: self.expected_name(),
                expected: *expected,
                actual: *attempted,
            },
            Failure::Other(message) => StorageError::InvalidArgument(format!(
                "blob write {} already failed: {message}",
                self.staging.id()
            )),
        }
    }

    /// The error for a call that is not allowed in the current state.
    fn state_error(&self, action: &str) -> StorageError {
        match &self.state {
            WriterState::Failed(failure) => self.failure_error(failure),
            WriterState::Finished { digest, .. } => StorageError::InvalidArgument(format!(
                "cannot {action}: blob {digest} is already finished"
            )),
            WriterState::Committed => {
                StorageError::InvalidArgument(format!("cannot {action}: blob already committed"))
            }
            WriterState::Writing => StorageError::InvalidArgument(format!("cannot {action}")),
        }
    }

    /// Gives up: drops what was staged (a collector removes it if this fails too).
    fn fail(&mut self, failure: Failure) {
        let _ = delete_staged(&self.env, self.staging.id());
        self.buffer = Vec::new();
        self.state = WriterState::Failed(failure);
    }

    /// Stages the buffered content as the next chunk (with the write's staging marker).
    fn stage_buffer(&mut self) -> StorageResult<()> {
        let staging = self.staging.id();
        let key = chunk_key(&staged_chunks_prefix(staging), self.chunks_staged);
        let marker = staged_chunk_key(staging, 0);
        let buffer = &self.buffer;
        self.env.write(|wtxn| {
            let context = || format!("staging a chunk of blob write {staging}");
            let databases = &self.env.databases;
            databases
                .blob_staging
                .put(wtxn, &marker, &[])
                .with_context(context)?;
            databases
                .blob_chunks
                .put(wtxn, &key, buffer)
                .with_context(context)
        })?;
        self.chunks_staged += 1;
        self.buffer.clear();
        Ok(())
    }

    fn accept(&mut self, bytes: &[u8]) -> StorageResult<()> {
        if let Some(expected) = self.expected.size {
            let attempted = self.written + bytes.len() as u64;
            if attempted > expected {
                let failure = Failure::TooLarge {
                    expected,
                    attempted,
                };
                let error = self.failure_error(&failure);
                self.fail(failure);
                return Err(error);
            }
        }
        if let Some(hasher) = &mut self.hasher {
            hasher.update(bytes);
        }
        self.written += bytes.len() as u64;
        let chunk_size = self.chunk_size as usize;
        let mut rest = bytes;
        while !rest.is_empty() {
            if self.buffer.capacity() == 0 {
                self.buffer.reserve_exact(chunk_size);
            }
            let take = (chunk_size - self.buffer.len()).min(rest.len());
            self.buffer.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.buffer.len() == chunk_size {
                if let Err(error) = self.stage_buffer() {
                    self.fail(Failure::Other(error.to_string()));
                    return Err(error);
                }
            }
        }
        Ok(())
    }

    /// Points a content record for `digest` at the staged chunks and removes the staging
    /// marker, in one short transaction; or, when the blob is already stored, drops the staged
    /// copy (content addressing makes them equal). A crash before the drop leaves the marker,
    /// so the sweep of dead writes removes the copy.
    fn publish(&self, digest: &Digest, size: u64) -> StorageResult<()> {
        let databases = &self.env.databases;
        let staging = self.staging.id();
        let content = encode_blob_content(&BlobContent {
            size,
            chunk_size: self.chunk_size,
            chunks: ChunkLocation::Staged(staging.to_string()),
        });
        let published = self.env.write(|wtxn| {
            let context = || format!("committing blob {digest}");
            let exists = databases
                .blob_contents
                .get(wtxn, digest.as_str().as_bytes())
                .with_context(context)?
                .is_some();
            if exists {
                return Ok(false);
            }
            // Chunks a crash left under the digest (format 1) belong to no record.
            delete_prefix(
                &databases.blob_chunks,
                wtxn,
                &prefix_of(digest.as_str().as_bytes()),
                &format!("stray chunks of {digest}"),
            )?;
            databases
                .blob_contents
                .put(wtxn, digest.as_str().as_bytes(), &content)
                .with_context(context)?;
            delete_prefix(
                &databases.blob_staging,
                wtxn,
                &prefix_of(staging.as_bytes()),
                &format!("the staging marker of {digest}"),
            )?;
            Ok(true)
        })?;
        if !published {
            delete_staged(&self.env, staging)?;
        }
        Ok(())
    }
}

impl Write for LmdbBlobWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if !matches!(self.state, WriterState::Writing) {
            return Err(io::Error::other(self.state_error("write")));
        }
        self.accept(bytes).map_err(|error| match error {
            StorageError::SizeMismatch { .. } => io::Error::new(io::ErrorKind::InvalidData, error),
            other => io::Error::other(other),
        })?;
        Ok(bytes.len())
    }

    /// Chunks are staged when full; a partial chunk stays buffered until `finish`.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl BlobWriter for LmdbBlobWriter {
    fn written(&self) -> u64 {
        self.written
    }

    fn finish(&mut self) -> StorageResult<(Digest, u64)> {
        match &self.state {
            WriterState::Writing => {}
            WriterState::Finished { digest, size } => return Ok((digest.clone(), *size)),
            _ => return Err(self.state_error("finish")),
        }
        if !self.buffer.is_empty() {
            if let Err(error) = self.stage_buffer() {
                self.fail(Failure::Other(error.to_string()));
                return Err(error);
            }
        }
        self.buffer = Vec::new();
        let hasher = self
            .hasher
            .take()
            .expect("a writing blob writer has a hasher");
        let digest = hasher.finish();
        let size = self.written;
        if let Err(error) = self.expected.verify(&digest, size) {
            self.fail(Failure::Other(error.to_string()));
            return Err(error);
        }
        self.state = WriterState::Finished {
            digest: digest.clone(),
            size,
        };
        Ok((digest, size))
    }

    fn commit(mut self: Box<Self>) -> StorageResult<(Digest, u64)> {
        let (digest, size) = self.finish()?;
        self.publish(&digest, size)?;
        self.state = WriterState::Committed;
        Ok((digest, size))
    }
}

impl Drop for LmdbBlobWriter {
    fn drop(&mut self) {
        if !matches!(self.state, WriterState::Committed) {
            // Best effort: if this fails, the collector finds the chunks once the lock is gone.
            let _ = delete_staged(&self.env, self.staging.id());
        }
    }
}
