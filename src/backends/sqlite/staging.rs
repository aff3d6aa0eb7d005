//! Staged (uncommitted) blob writes: their rows, and removing those of writers that are gone.
//!
//! A writer's rows (`staging`, `staged_chunks`) are keyed by the id of its staging file in
//! `meta/sqlite/staging/`, held locked by the shared staging protocol
//! (`backends/staging_lock.rs`) from before the `staging` row is inserted until after it is
//! deleted.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rusqlite::Transaction;

pub(crate) use super::super::staging_lock::StagingLock;
use super::super::staging_lock::{probe_dead, sweep_dead};
use crate::traits::StorageResult;

/// `dir/meta/sqlite/staging`.
pub(crate) fn staging_dir(store_dir: &Path) -> PathBuf {
    super::connection::database_dir(store_dir).join("staging")
}

/// Removes the staged writes of writers that are gone: first those whose staging file a sweep
/// can lock, then those staged (in `staged`, read before the sweep) with no staging file left.
/// `discard` deletes one write's rows and says whether they existed and how many bytes went.
pub(crate) fn remove_dead_staged(
    staging_dir: &Path,
    staged: BTreeSet<String>,
    mut discard: impl FnMut(&str) -> StorageResult<(bool, u64)>,
) -> StorageResult<(u64, u64)> {
    let (mut removed, mut removed_bytes) = (0, 0);
    let mut count = |(existed, bytes): (bool, u64)| {
        if existed {
            removed += 1;
            removed_bytes += bytes;
        }
    };
    let listed = sweep_dead(staging_dir, |dead| {
        count(discard(&dead.id)?);
        Ok(())
    })?;
    for id in staged.iter().filter(|id| !listed.contains(*id)) {
        count(discard(id)?);
    }
    Ok((removed, removed_bytes))
}

/// What [`remove_dead_staged`] would remove now, changing nothing: the same writes (dead
/// staging files, then staged ids read before the listing with no staging file) measured by
/// `measure`, which says whether the write's staging row exists and how many content bytes
/// it has (what `discard` would say).
pub(crate) fn measure_dead_staged(
    staging_dir: &Path,
    staged: BTreeSet<String>,
    mut measure: impl FnMut(&str) -> StorageResult<(bool, u64)>,
) -> StorageResult<(u64, u64)> {
    let (mut writes, mut bytes) = (0, 0);
    let mut count = |(exists, staged_bytes): (bool, u64)| {
        if exists {
            writes += 1;
            bytes += staged_bytes;
        }
    };
    let listed = probe_dead(staging_dir, |dead| {
        count(measure(&dead.id)?);
        Ok(())
    })?;
    for id in staged.iter().filter(|id| !listed.contains(*id)) {
        count(measure(id)?);
    }
    Ok((writes, bytes))
}

/// Whether a staged write's staging row exists and how many content bytes its chunks hold:
/// what [`discard_staged`] would remove.
pub(crate) fn staged_usage(
    connection: &rusqlite::Connection,
    staging_id: &str,
) -> rusqlite::Result<(bool, u64)> {
    let exists = connection
        .prepare_cached("SELECT 1 FROM staging WHERE staging_id = ?1")?
        .exists([staging_id])?;
    let bytes = staged_bytes(connection, staging_id)?;
    Ok((exists, bytes))
}

fn staged_bytes(connection: &rusqlite::Connection, staging_id: &str) -> rusqlite::Result<u64> {
    connection
        .prepare_cached(
            "SELECT COALESCE(SUM(length(chunk_data.data)), 0)
             FROM staged_chunks JOIN chunk_data USING (chunk_id)
             WHERE staged_chunks.staging_id = ?1",
        )?
        .query_row([staging_id], |row| super::values::u64_column(row, 0))
}

/// Deletes a staged write's rows: its chunks and its staging row. Returns whether the staging
/// row existed and how many content bytes went.
pub(crate) fn discard_staged(
    transaction: &Transaction<'_>,
    staging_id: &str,
) -> rusqlite::Result<(bool, u64)> {
    let bytes = staged_bytes(transaction, staging_id)?;
    transaction
        .prepare_cached(
            "DELETE FROM chunk_data WHERE chunk_id IN
                (SELECT chunk_id FROM staged_chunks WHERE staging_id = ?1)",
        )?
        .execute([staging_id])?;
    transaction
        .prepare_cached("DELETE FROM staged_chunks WHERE staging_id = ?1")?
        .execute([staging_id])?;
    let removed = transaction
        .prepare_cached("DELETE FROM staging WHERE staging_id = ?1")?
        .execute([staging_id])?;
    Ok((removed > 0, bytes))
}
