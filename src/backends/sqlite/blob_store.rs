//! [`BlobStore`] keeping content inside the database, in chunks (see [`super::schema`] for the
//! tables). Writers stage chunks as they fill ([`super::blob_writer`]); readers fetch one chunk
//! at a time ([`super::blob_reader`]); so no blob is ever held whole in memory.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rusqlite::OptionalExtension;

use super::blob_reader::SqliteBlobReader;
use super::blob_writer::SqliteBlobWriter;
use super::connection::{Database, Durability};
use super::staging::{
    discard_staged, measure_dead_staged, remove_dead_staged, staged_usage, staging_dir,
};
use super::values::{digest_page, u64_column};
use crate::traits::{
    BlobRead, BlobStore, BlobWriter, Digest, Expected, SortedDigests, StorageError, StorageResult,
};
use crate::util::io_context::IoResultExt;

/// Bytes per stored chunk: large enough that per-row overhead is negligible, small enough that
/// one chunk in memory per reader or writer is nothing.
pub(crate) const DEFAULT_CHUNK_SIZE: usize = 1024 * 1024;

pub struct SqliteBlobStore {
    pub(crate) database: Database,
    pub(crate) staging_dir: PathBuf,
    pub(crate) chunk_size: usize,
}

impl SqliteBlobStore {
    /// Opens the blob store in the store directory `dir` (database
    /// `dir/meta/sqlite/store.db`, staging locks in `dir/meta/sqlite/staging/`).
    pub fn open(dir: &Path) -> StorageResult<Self> {
        Self::open_with_chunk_size(dir, DEFAULT_CHUNK_SIZE)
    }

    /// As [`SqliteBlobStore::open`], writing new blobs in chunks of `chunk_size` bytes. Stored
    /// blobs keep the chunk size they were written with, so stores with different sizes can
    /// share one database.
    pub(crate) fn open_with_chunk_size(dir: &Path, chunk_size: usize) -> StorageResult<Self> {
        if chunk_size == 0 {
            return Err(StorageError::InvalidArgument(
                "chunk size must not be 0".to_string(),
            ));
        }
        let database = Database::open(dir)?;
        let staging_dir = staging_dir(dir);
        crate::backends::staging_lock::private_dir(&staging_dir)
            .io_context("creating the staging folder", &staging_dir)?;
        Ok(SqliteBlobStore {
            database,
            staging_dir,
            chunk_size,
        })
    }
}

impl BlobStore for SqliteBlobStore {
    fn writer(&self, expected: Expected) -> StorageResult<Box<dyn BlobWriter + '_>> {
        Ok(Box::new(SqliteBlobWriter::start(self, expected)?))
    }

    /// The staged chunks of a dead writer of the digest (found by its staging file,
    /// `<id>.<alg>-<hex>.staging`) are read back through the hash and kept where they are.
    fn resumable_writer(&self, expected: Expected) -> StorageResult<Box<dyn BlobWriter + '_>> {
        let Some(digest) = expected.digest.clone() else {
            return self.writer(expected);
        };
        Ok(Box::new(SqliteBlobWriter::resume(self, expected, &digest)?))
    }

    fn open(&self, digest: &Digest) -> StorageResult<Box<dyn BlobRead + '_>> {
        let stored = self.database.read(
            || format!("opening blob {digest}"),
            |connection| {
                connection
                    .prepare_cached("SELECT size, chunk_size FROM blob_content WHERE digest = ?1")?
                    .query_row([digest.as_str()], |row| {
                        Ok((u64_column(row, 0)?, u64_column(row, 1)?))
                    })
                    .optional()
            },
        )?;
        match stored {
            None => Err(StorageError::BlobNotFound(digest.clone())),
            Some((size, chunk_size)) => Ok(Box::new(SqliteBlobReader::new(
                &self.database,
                digest.clone(),
                size,
                chunk_size,
            ))),
        }
    }

    fn size(&self, digest: &Digest) -> StorageResult<Option<u64>> {
        self.database.read(
            || format!("reading the size of blob {digest}"),
            |connection| {
                connection
                    .prepare_cached("SELECT size FROM blob_content WHERE digest = ?1")?
                    .query_row([digest.as_str()], |row| u64_column(row, 0))
                    .optional()
            },
        )
    }

    /// One transaction for all of them.
    fn delete_many(&self, digests: &[Digest]) -> StorageResult<u64> {
        if digests.is_empty() {
            return Ok(0);
        }
        let context = || match digests {
            [digest] => format!("deleting blob {digest}"),
            _ => format!("deleting {} blobs", digests.len()),
        };
        self.database
            .write(Durability::Full, context, |transaction| {
                // Foreign keys are deferred: the order inside the transaction is free.
                let mut chunk_data = transaction.prepare_cached(
                    "DELETE FROM chunk_data WHERE chunk_id IN
                    (SELECT chunk_id FROM blob_chunks WHERE digest = ?1)",
                )?;
                let mut chunks =
                    transaction.prepare_cached("DELETE FROM blob_chunks WHERE digest = ?1")?;
                let mut content =
                    transaction.prepare_cached("DELETE FROM blob_content WHERE digest = ?1")?;
                let mut deleted = 0;
                for digest in digests {
                    chunk_data.execute([digest.as_str()])?;
                    chunks.execute([digest.as_str()])?;
                    deleted += content.execute([digest.as_str()])? as u64;
                }
                Ok(deleted)
            })
    }

    fn sorted_digests(&self) -> StorageResult<SortedDigests<'_>> {
        Ok(SortedDigests::paged(|after, limit| {
            self.database.read(
                || "listing stored blobs".to_string(),
                |connection| {
                    digest_page(
                        connection,
                        "SELECT digest FROM blob_content WHERE digest > ?1 ORDER BY digest \
                         LIMIT ?2",
                        after,
                        limit,
                    )
                },
            )
        }))
    }

    fn remove_dead_ingests(&self) -> StorageResult<(u64, u64)> {
        let staged = self.staged_ids()?;
        remove_dead_staged(&self.staging_dir, staged, |staging_id| {
            // Counted only if the row was still there: the writer may have committed since the
            // listing, and then there is nothing to remove.
            self.database.write(
                Durability::Deferred,
                || format!("removing the dead staged write {staging_id}"),
                |transaction| Ok(discard_staged(transaction, staging_id)?),
            )
        })
    }

    /// As [`BlobStore::remove_dead_ingests`] finds them: each dead staging file's write and
    /// each staged write without a file, counted while its staging row exists, with the bytes
    /// of its staged chunks.
    fn dead_ingest_usage(&self) -> StorageResult<Option<(u64, u64)>> {
        let staged = self.staged_ids()?;
        let usage = measure_dead_staged(&self.staging_dir, staged, |staging_id| {
            self.database.read(
                || format!("measuring the dead staged write {staging_id}"),
                |connection| staged_usage(connection, staging_id),
            )
        })?;
        Ok(Some(usage))
    }
}

impl SqliteBlobStore {
    /// The ids of every staged write, read before the staging folder is listed (see
    /// `staging.rs`).
    fn staged_ids(&self) -> StorageResult<BTreeSet<String>> {
        self.database.read(
            || "listing staged blob writes".to_string(),
            |connection| {
                connection
                    .prepare_cached("SELECT staging_id FROM staging ORDER BY staging_id")?
                    .query_map([], |row| row.get(0))?
                    .collect()
            },
        )
    }
}
