//! The streaming writer of [`super::SqliteBlobStore`]: hashes as bytes arrive, stages every
//! full chunk in its own small transaction, and on commit moves the staged chunk mapping under
//! the digest in one transaction (the chunk bytes themselves are not copied).
//!
//! The last chunk is kept in memory until more bytes arrive or `finish` runs, so every stored
//! chunk but the last is exactly `chunk_size` long (readers compute chunk numbers from offsets)
//! and `finish` always has a final chunk to write with a synced commit, which makes all the
//! cheaper, unsynced chunk commits before it durable too.

use std::io::{self, Write};

use rusqlite::{params, Transaction};

use super::blob_store::SqliteBlobStore;
use super::connection::{Durability, WriteFailure};
use super::staging::{discard_staged, StagingLock};
use super::values::to_integer;
use super::BACKEND_NAME;
use crate::traits::{BlobWriter, Digest, Expected, Hasher, StorageError, StorageResult};
use crate::util::clock::now_unix_ms;

enum WriterState {
    Writing,
    Finished {
        digest: Digest,
        size: u64,
    },
    /// Failed or mismatched: the staged content is already gone.
    Failed,
}

/// Errors of the writer that are not SQLite's or the trait's own.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WriterError {
    #[error("staged write {staging_id} lost its content ({found} of {expected} chunks left); was it removed as dead?")]
    StagedContentLost {
        staging_id: String,
        expected: i64,
        found: i64,
    },
}

pub(crate) struct SqliteBlobWriter<'a> {
    store: &'a SqliteBlobStore,
    expected: Expected,
    staging_id: String,
    /// Held while staged rows may exist; `None` once they are committed or discarded.
    lock: Option<StagingLock>,
    hasher: Option<Hasher>,
    pending_chunk: Vec<u8>,
    staged_chunks: i64,
    written: u64,
    state: WriterState,
}

impl<'a> SqliteBlobWriter<'a> {
    /// Takes a liveness lock, then records the staging row.
    pub(crate) fn start(store: &'a SqliteBlobStore, expected: Expected) -> StorageResult<Self> {
        let lock = StagingLock::create(&store.staging_dir)?;
        Self::start_under(store, expected, lock)
    }

    /// A writer of `digest` whose staged chunks a later writer of the same digest takes over
    /// if this one dies (see `BlobStore::resumable_writer`): it takes over a dead one's now,
    /// if there are any, and goes on after them.
    pub(crate) fn resume(
        store: &'a SqliteBlobStore,
        expected: Expected,
        digest: &Digest,
    ) -> StorageResult<Self> {
        if let Some(lock) = StagingLock::adopt_dead(&store.staging_dir, digest)? {
            if let Some(writer) = Self::take_over(store, expected.clone(), lock)? {
                return Ok(writer);
            }
        }
        let lock = StagingLock::create_resumable(&store.staging_dir, digest)?;
        Self::start_under(store, expected, lock)
    }

    /// Goes on with the staged write of a dead writer whose staging file `lock` holds: its
    /// chunks are read back one at a time through a new hash (the final digest check covers
    /// them), a short last chunk (staged by a `finish` that did not get to commit) becomes
    /// the pending chunk again, and the row says who writes now. `None`, with whatever was
    /// staged discarded and the staging file removed, when there is nothing to go on from or
    /// the chunks are not a blob's start as this store writes it (chunks of another size, a
    /// gap, more than the expected size).
    fn take_over(
        store: &'a SqliteBlobStore,
        expected: Expected,
        lock: StagingLock,
    ) -> StorageResult<Option<Self>> {
        let staging_id = lock.id().to_string();
        let chunks: Option<Vec<(i64, i64, u64)>> = store.database.read(
            || format!("reading the staged write {staging_id}"),
            |connection| {
                let recorded = connection
                    .prepare_cached("SELECT 1 FROM staging WHERE staging_id = ?1")?
                    .exists([&staging_id])?;
                if !recorded {
                    return Ok(None);
                }
                connection
                    .prepare_cached(
                        "SELECT seq, chunk_id, length(data) FROM staged_chunks
                         JOIN chunk_data USING (chunk_id)
                         WHERE staging_id = ?1 ORDER BY seq",
                    )?
                    .query_map([&staging_id], |row| {
                        Ok((row.get(0)?, row.get(1)?, super::values::u64_column(row, 2)?))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map(Some)
            },
        )?;
        let chunk_size = store.chunk_size as u64;
        let usable = chunks.filter(|chunks| {
            let total: u64 = chunks.iter().map(|(_, _, length)| length).sum();
            let last = chunks.len().saturating_sub(1);
            !chunks.is_empty()
                && chunks
                    .iter()
                    .enumerate()
                    .all(|(position, (seq, _, length))| {
                        *seq == position as i64
                            && *length > 0
                            && (*length == chunk_size || (position == last && *length < chunk_size))
                    })
                && expected.size.is_none_or(|size| total <= size)
        });
        let Some(mut chunks) = usable else {
            store.database.write(
                Durability::Deferred,
                || format!("discarding the staged write {staging_id}"),
                |transaction| Ok(discard_staged(transaction, &staging_id)?),
            )?;
            drop(lock);
            return Ok(None);
        };
        let mut hasher = Hasher::new(expected.algorithm());
        let mut written = 0;
        let mut pending_chunk = Vec::new();
        for (seq, chunk_id, _) in &chunks {
            let data: Vec<u8> = store.database.read(
                || format!("reading chunk {seq} of the staged write {staging_id}"),
                |connection| {
                    connection
                        .prepare_cached("SELECT data FROM chunk_data WHERE chunk_id = ?1")?
                        .query_row([chunk_id], |row| row.get(0))
                },
            )?;
            hasher.update(&data);
            written += data.len() as u64;
            pending_chunk = data;
        }
        let short_last = chunks
            .last()
            .filter(|(_, _, length)| *length < chunk_size)
            .map(|(seq, chunk_id, _)| (*seq, *chunk_id));
        if short_last.is_some() {
            chunks.pop();
        } else {
            pending_chunk = Vec::new();
        }
        store.database.write(
            Durability::Deferred,
            || format!("taking over the staged write {staging_id}"),
            |transaction| {
                transaction
                    .prepare_cached("UPDATE staging SET owner_pid = ?2 WHERE staging_id = ?1")?
                    .execute(params![staging_id, std::process::id()])?;
                if let Some((seq, chunk_id)) = short_last {
                    // In memory again, as the pending chunk.
                    transaction
                        .prepare_cached(
                            "DELETE FROM staged_chunks WHERE staging_id = ?1 AND seq = ?2",
                        )?
                        .execute(params![staging_id, seq])?;
                    transaction
                        .prepare_cached("DELETE FROM chunk_data WHERE chunk_id = ?1")?
                        .execute([chunk_id])?;
                }
                Ok(())
            },
        )?;
        Ok(Some(SqliteBlobWriter {
            store,
            hasher: Some(hasher),
            expected,
            staging_id,
            lock: Some(lock),
            pending_chunk,
            staged_chunks: chunks.len() as i64,
            written,
            state: WriterState::Writing,
        }))
    }

    /// Records the staging row of a new write under `lock`.
    fn start_under(
        store: &'a SqliteBlobStore,
        expected: Expected,
        lock: StagingLock,
    ) -> StorageResult<Self> {
        let staging_id = lock.id().to_string();
        let recorded = store.database.write(
            Durability::Deferred,
            || format!("starting the staged write {staging_id}"),
            |transaction| {
                transaction
                    .prepare_cached(
                        "INSERT INTO staging (staging_id, owner_pid, started_unix_ms)
                         VALUES (?1, ?2, ?3)",
                    )?
                    .execute(params![staging_id, std::process::id(), now_unix_ms()])?;
                Ok(())
            },
        );
        if let Err(error) = recorded {
            drop(lock);
            return Err(error);
        }
        Ok(SqliteBlobWriter {
            store,
            hasher: Some(Hasher::new(expected.algorithm())),
            expected,
            staging_id,
            lock: Some(lock),
            pending_chunk: Vec::new(),
            staged_chunks: 0,
            written: 0,
            state: WriterState::Writing,
        })
    }

    /// How the blob is named in errors before its digest is known.
    fn name_for_errors(&self) -> String {
        match &self.expected.digest {
            Some(digest) => digest.to_string(),
            None => format!("the blob being written (staged as {})", self.staging_id),
        }
    }

    fn accept(&mut self, bytes: &[u8]) -> StorageResult<usize> {
        match self.state {
            WriterState::Writing => {}
            WriterState::Finished { .. } => {
                return Err(StorageError::InvalidArgument(format!(
                    "write to {} after finish",
                    self.name_for_errors()
                )))
            }
            WriterState::Failed => {
                return Err(StorageError::InvalidArgument(format!(
                    "write to {} after the write failed",
                    self.name_for_errors()
                )))
            }
        }
        if bytes.is_empty() {
            return Ok(0);
        }
        let total = self.written + bytes.len() as u64;
        if let Some(expected_size) = self.expected.size {
            if total > expected_size {
                let error = StorageError::SizeMismatch {
                    digest: self.name_for_errors(),
                    expected: expected_size,
                    actual: total,
                };
                self.fail();
                return Err(error);
            }
        }
        if let Some(hasher) = self.hasher.as_mut() {
            hasher.update(bytes);
        }
        self.written = total;

        let mut remaining = bytes;
        while !remaining.is_empty() {
            if self.pending_chunk.len() == self.store.chunk_size {
                if let Err(error) = self.stage_pending_chunk(Durability::Deferred) {
                    self.fail();
                    return Err(error);
                }
            }
            if self.pending_chunk.capacity() == 0 {
                // Small blobs (the expected size says so) do not get a whole chunk's buffer.
                let capacity = self.expected.size.map_or(self.store.chunk_size, |size| {
                    usize::try_from(size)
                        .unwrap_or(usize::MAX)
                        .min(self.store.chunk_size)
                });
                self.pending_chunk.reserve_exact(capacity);
            }
            let room = self.store.chunk_size - self.pending_chunk.len();
            let (now, later) = remaining.split_at(room.min(remaining.len()));
            self.pending_chunk.extend_from_slice(now);
            remaining = later;
        }
        Ok(bytes.len())
    }

    /// Stores the pending chunk as the next staged chunk, in its own transaction.
    fn stage_pending_chunk(&mut self, durability: Durability) -> StorageResult<()> {
        let seq = self.staged_chunks;
        let (staging_id, chunk) = (&self.staging_id, &self.pending_chunk);
        self.store.database.write(
            durability,
            || format!("staging chunk {seq} of {}", self.name_for_errors()),
            |transaction| {
                transaction
                    .prepare_cached("INSERT INTO chunk_data (data) VALUES (?1)")?
                    .execute([chunk])?;
                let chunk_id = transaction.last_insert_rowid();
                transaction
                    .prepare_cached(
                        "INSERT INTO staged_chunks (staging_id, seq, chunk_id) VALUES (?1, ?2, ?3)",
                    )?
                    .execute(params![staging_id, seq, chunk_id])?;
                Ok(())
            },
        )?;
        self.staged_chunks += 1;
        self.pending_chunk.clear();
        Ok(())
    }

    /// Deletes what was staged (best effort: a leftover is removed later as a dead ingest once
    /// the lock is released) and releases the lock.
    fn discard(&mut self) {
        if let Some(lock) = self.lock.take() {
            let staging_id = &self.staging_id;
            let _ = self.store.database.write(
                Durability::Deferred,
                || format!("discarding the staged write {staging_id}"),
                |transaction| Ok(discard_staged(transaction, staging_id)?),
            );
            drop(lock);
        }
        self.pending_chunk = Vec::new();
    }

    fn fail(&mut self) {
        self.state = WriterState::Failed;
        self.hasher = None;
        self.discard();
    }
}

impl Write for SqliteBlobWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.accept(bytes).map_err(io::Error::other)
    }

    /// Nothing to do: a partial chunk cannot be stored before the chunk is full (all chunks but
    /// the last have the same size), and durability comes from `finish`.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl BlobWriter for SqliteBlobWriter<'_> {
    fn written(&self) -> u64 {
        self.written
    }

    fn finish(&mut self) -> StorageResult<(Digest, u64)> {
        match &self.state {
            WriterState::Writing => {}
            WriterState::Finished { digest, size } => return Ok((digest.clone(), *size)),
            WriterState::Failed => {
                return Err(StorageError::InvalidArgument(format!(
                    "finish of {} after the write failed",
                    self.name_for_errors()
                )))
            }
        }
        if !self.pending_chunk.is_empty() {
            if let Err(error) = self.stage_pending_chunk(Durability::Full) {
                self.fail();
                return Err(error);
            }
        }
        self.pending_chunk = Vec::new();
        let hasher = self
            .hasher
            .take()
            .unwrap_or_else(|| Hasher::new(self.expected.algorithm()));
        let digest = hasher.finish();
        let size = self.written;
        if let Err(error) = self.expected.verify(&digest, size) {
            self.fail();
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
        let stored_size = to_integer(size, || format!("size of {digest}"))?;
        let chunk_size = to_integer(self.store.chunk_size as u64, || "chunk size".to_string())?;
        let (staging_id, staged_chunks) = (&self.staging_id, self.staged_chunks);
        self.store.database.write(
            Durability::Full,
            || format!("committing blob {digest} (staged as {staging_id})"),
            |transaction| {
                move_staged_to_digest(
                    transaction,
                    staging_id,
                    staged_chunks,
                    &digest,
                    stored_size,
                    chunk_size,
                )
            },
        )?;
        // The staged rows are gone (moved or discarded): nothing for drop to clean up.
        if let Some(lock) = self.lock.take() {
            drop(lock);
        }
        Ok((digest, size))
    }
}

/// Publishes the staged chunks under `digest`, or drops them when the digest is already stored
/// (same digest, same content).
fn move_staged_to_digest(
    transaction: &Transaction<'_>,
    staging_id: &str,
    staged_chunks: i64,
    digest: &Digest,
    size: i64,
    chunk_size: i64,
) -> Result<(), WriteFailure> {
    let already_stored = transaction
        .prepare_cached("SELECT 1 FROM blob_content WHERE digest = ?1")?
        .exists([digest.as_str()])?;
    if already_stored {
        discard_staged(transaction, staging_id)?;
        return Ok(());
    }
    let staging_present = transaction
        .prepare_cached("SELECT 1 FROM staging WHERE staging_id = ?1")?
        .exists([staging_id])?;
    let found: i64 = transaction
        .prepare_cached("SELECT count(*) FROM staged_chunks WHERE staging_id = ?1")?
        .query_row([staging_id], |row| row.get(0))?;
    if !staging_present || found != staged_chunks {
        return Err(WriteFailure::Refused(StorageError::backend(
            BACKEND_NAME,
            format!("committing blob {digest}"),
            WriterError::StagedContentLost {
                staging_id: staging_id.to_string(),
                expected: staged_chunks,
                found,
            },
        )));
    }
    transaction
        .prepare_cached("INSERT INTO blob_content (digest, size, chunk_size) VALUES (?1, ?2, ?3)")?
        .execute(params![digest.as_str(), size, chunk_size])?;
    transaction
        .prepare_cached(
            "INSERT INTO blob_chunks (digest, seq, chunk_id)
             SELECT ?1, seq, chunk_id FROM staged_chunks WHERE staging_id = ?2",
        )?
        .execute(params![digest.as_str(), staging_id])?;
    transaction
        .prepare_cached("DELETE FROM staged_chunks WHERE staging_id = ?1")?
        .execute([staging_id])?;
    transaction
        .prepare_cached("DELETE FROM staging WHERE staging_id = ?1")?
        .execute([staging_id])?;
    Ok(())
}

impl Drop for SqliteBlobWriter<'_> {
    /// Aborts an uncommitted write: its staged chunks go now, or with the next dead-ingest sweep.
    fn drop(&mut self) {
        self.discard();
    }
}
