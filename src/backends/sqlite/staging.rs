//! Staged (uncommitted) blob writes: their rows, and removing those of writers that are gone.
//!
//! A writer's rows (`staging`, `staged_chunks`) are keyed by the id of its staging file in
//! `meta/sqlite/staging/`, held locked by the shared staging protocol
//! (`backends/staging_lock.rs`) from before the `staging` row is inserted until after it is
//! deleted.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rusqlite::Transaction;

use super::super::staging_lock::sweep_dead;
pub(crate) use super::super::staging_lock::StagingLock;
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

/// Deletes a staged write's rows: its chunks and its staging row. Returns whether the staging
/// row existed and how many content bytes went.
pub(crate) fn discard_staged(
    transaction: &Transaction<'_>,
    staging_id: &str,
) -> rusqlite::Result<(bool, u64)> {
    let bytes: u64 = transaction
        .prepare_cached(
            "SELECT COALESCE(SUM(length(chunk_data.data)), 0)
             FROM staged_chunks JOIN chunk_data USING (chunk_id)
             WHERE staged_chunks.staging_id = ?1",
        )?
        .query_row([staging_id], |row| super::values::u64_column(row, 0))?;
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
