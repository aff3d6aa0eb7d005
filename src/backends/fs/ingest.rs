//! Staging files in `ingest/`: each write streams into its own staging file, locked by the
//! shared staging protocol (`backends/staging_lock.rs`); the file is the staged data itself, so
//! removing a dead writer's file is all the clean-up there is.

use std::path::Path;

use super::super::staging_lock::sweep_dead;
use crate::traits::StorageResult;

/// Removes every staging file in `ingest_dir` that no writer holds locked. Returns how many
/// files and how many bytes were removed.
pub(super) fn remove_dead_ingests(ingest_dir: &Path) -> StorageResult<(u64, u64)> {
    let (mut removed_files, mut removed_bytes) = (0, 0);
    sweep_dead(ingest_dir, |dead| {
        removed_files += 1;
        removed_bytes += dead.file_bytes;
        Ok(())
    })?;
    Ok((removed_files, removed_bytes))
}
