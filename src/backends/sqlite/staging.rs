//! Staged (uncommitted) blob writes: their ids, their liveness locks, and removing them.
//!
//! A writer's liveness is an `flock` on `meta/sqlite/staging/<id>.lock`, held from before its
//! `staging` row is inserted until after that row is deleted. The lock dies with the process,
//! so "the lock file can be locked" means "the writer is gone", across processes and threads
//! (an flock belongs to an open file, and two opens conflict even inside one process). The lock
//! file is created under a temporary name, locked, then renamed into place, so a `<id>.lock`
//! path is never seen unlocked while its writer lives.

use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fs2::FileExt;
use rusqlite::Transaction;

use crate::traits::{StorageError, StorageResult};

const LOCK_SUFFIX: &str = ".lock";
const UNPLACED_SUFFIX: &str = ".lock.new";

/// A lock file not yet renamed into place exists for microseconds while a writer starts; one
/// older than this was left by a writer that died right then.
const UNPLACED_GRACE: Duration = Duration::from_secs(600);

/// `dir/meta/sqlite/staging`.
pub(crate) fn staging_dir(store_dir: &Path) -> PathBuf {
    super::connection::database_dir(store_dir).join("staging")
}

/// An id no other write on this host uses: process id, time and a per-process counter.
pub(crate) fn new_staging_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let sequence = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{}-{nanos}-{sequence}", process::id())
}

/// The held liveness lock of one staged write. Dropping it without [`StagingLock::release`]
/// leaves the file, unlocked; [`claim_if_dead`] then finds it dead.
pub(crate) struct StagingLock {
    path: PathBuf,
    _file: File,
}

impl StagingLock {
    /// Creates and locks `<id>.lock`.
    pub(crate) fn acquire(staging_dir: &Path, staging_id: &str) -> StorageResult<StagingLock> {
        let path = lock_path(staging_dir, staging_id);
        let unplaced = staging_dir.join(format!("{staging_id}{UNPLACED_SUFFIX}"));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&unplaced)
            .map_err(|e| StorageError::io("creating a staging lock file", &unplaced, e))?;
        let placed = FileExt::try_lock_exclusive(&file)
            .and_then(|()| fs::rename(&unplaced, &path))
            .map_err(|e| StorageError::io("locking a staging lock file", &unplaced, e));
        if let Err(error) = placed {
            let _ = fs::remove_file(&unplaced);
            return Err(error);
        }
        Ok(StagingLock { path, _file: file })
    }

    /// Removes the lock file, then unlocks it (by closing). Call only once the staging rows are
    /// gone: from then on nothing refers to this id.
    pub(crate) fn release(self) {
        // Best effort: a file left behind is unlocked and removed by the next dead-ingest sweep.
        let _ = fs::remove_file(&self.path);
    }
}

fn lock_path(staging_dir: &Path, staging_id: &str) -> PathBuf {
    staging_dir.join(format!("{staging_id}{LOCK_SUFFIX}"))
}

/// What the liveness lock of a staging id says.
pub(crate) enum Liveness {
    /// Its writer holds the lock.
    Alive,
    /// No one holds it; the returned lock (if the file still exists) keeps it so while the
    /// staged rows are removed.
    Dead(Option<StagingLock>),
}

/// Tries to take the lock of `staging_id`. A missing file means dead too: a live writer's file
/// exists for as long as its staging row does.
pub(crate) fn claim_if_dead(staging_dir: &Path, staging_id: &str) -> StorageResult<Liveness> {
    let path = lock_path(staging_dir, staging_id);
    claim_path_if_dead(path)
}

fn claim_path_if_dead(path: PathBuf) -> StorageResult<Liveness> {
    let file = match OpenOptions::new().write(true).open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Liveness::Dead(None)),
        Err(e) => return Err(StorageError::io("opening a staging lock file", &path, e)),
    };
    match FileExt::try_lock_exclusive(&file) {
        Ok(()) => Ok(Liveness::Dead(Some(StagingLock { path, _file: file }))),
        Err(e) if e.kind() == fs2::lock_contended_error().kind() => Ok(Liveness::Alive),
        Err(e) => Err(StorageError::io("testing a staging lock file", &path, e)),
    }
}

/// Lock files whose writer is gone and that no staging row names (the writer died between
/// creating the file and inserting its row, or after deleting its row): removes them.
pub(crate) fn remove_orphan_lock_files(
    staging_dir: &Path,
    live_rows: &std::collections::HashSet<String>,
) -> StorageResult<()> {
    let entries = match fs::read_dir(staging_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(StorageError::io(
                "listing staging lock files",
                staging_dir,
                e,
            ))
        }
    };
    for entry in entries {
        let entry =
            entry.map_err(|e| StorageError::io("listing staging lock files", staging_dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(UNPLACED_SUFFIX) {
            // Between its creation and its lock, a starting writer's file looks dead: only
            // files far older than that window are taken for leftovers.
            let age = entry
                .metadata()
                .and_then(|metadata| metadata.modified())
                .ok()
                .and_then(|modified| modified.elapsed().ok());
            if age.is_none_or(|age| age <= UNPLACED_GRACE) {
                continue;
            }
        } else if let Some(staging_id) = name.strip_suffix(LOCK_SUFFIX) {
            if live_rows.contains(staging_id) {
                continue;
            }
        } else {
            continue;
        }
        if let Liveness::Dead(Some(lock)) = claim_path_if_dead(entry.path())? {
            lock.release();
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_alive_and_a_released_or_dropped_one_is_dead() {
        let dir = tempfile::tempdir().unwrap();
        let id = new_staging_id();
        assert_ne!(id, new_staging_id());

        let lock = StagingLock::acquire(dir.path(), &id).unwrap();
        assert!(matches!(
            claim_if_dead(dir.path(), &id).unwrap(),
            Liveness::Alive
        ));
        drop(lock); // as if the writer crashed: file left, unlocked
        match claim_if_dead(dir.path(), &id).unwrap() {
            Liveness::Dead(Some(claimed)) => claimed.release(),
            _ => panic!("a dropped lock must be claimable"),
        }
        assert!(matches!(
            claim_if_dead(dir.path(), &id).unwrap(),
            Liveness::Dead(None)
        ));
    }

    #[test]
    fn orphan_lock_files_are_removed_unless_held_or_named() {
        let dir = tempfile::tempdir().unwrap();
        let held = StagingLock::acquire(dir.path(), "held").unwrap();
        drop(StagingLock::acquire(dir.path(), "orphan").unwrap());
        drop(StagingLock::acquire(dir.path(), "named").unwrap());
        let named: std::collections::HashSet<String> = ["named".to_string()].into();
        remove_orphan_lock_files(dir.path(), &named).unwrap();
        assert!(dir.path().join("held.lock").exists());
        assert!(dir.path().join("named.lock").exists());
        assert!(!dir.path().join("orphan.lock").exists());
        held.release();
        assert!(!dir.path().join("held.lock").exists());
    }
}
