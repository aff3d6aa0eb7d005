//! Staged (uncommitted) blob content and how dead writers are told from live ones.
//!
//! Each writer stages its chunks under a unique staging id and holds an exclusive flock on
//! `meta/lmdb-staging/<id>.lock` for its whole life. An flock dies with its holder, so a lock
//! file that can be locked belongs to a writer that is gone, and its staged chunks are garbage.
//! The lock file is created as `<id>.locking`, locked, then renamed into place, so a
//! `<id>.lock` file is never seen unlocked while its writer lives.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::environment::SharedEnv;
use super::keys::{delete_prefix, distinct_first_parts, encode_u64, join, prefix_of, utf8};
use crate::traits::{StorageError, StorageResult};

const LOCK_SUFFIX: &str = ".lock";
const LOCKING_SUFFIX: &str = ".locking";

/// A `.locking` file left by a writer that died between creating and renaming it is removed
/// once it is this old (a live writer renames it within microseconds).
const ABANDONED_LOCKING_AGE: Duration = Duration::from_secs(60);

static NEXT_STAGING_NUMBER: AtomicU64 = AtomicU64::new(0);

/// The staging id of a live writer, proven by the flock it holds.
pub(crate) struct StagingLock {
    id: String,
    path: PathBuf,
    // Held, never read: closing it releases the flock.
    _file: File,
}

impl StagingLock {
    pub(crate) fn acquire(staging_dir: &Path) -> StorageResult<StagingLock> {
        fs::create_dir_all(staging_dir).map_err(|error| {
            StorageError::io("creating the LMDB staging directory", staging_dir, error)
        })?;
        let id = unique_staging_id();
        let locking = staging_dir.join(format!("{id}{LOCKING_SUFFIX}"));
        let path = staging_dir.join(format!("{id}{LOCK_SUFFIX}"));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&locking)
            .map_err(|error| StorageError::io("creating a staging lock file", &locking, error))?;
        fs2::FileExt::lock_exclusive(&file)
            .map_err(|error| StorageError::io("locking a staging lock file", &locking, error))?;
        fs::rename(&locking, &path)
            .map_err(|error| StorageError::io("publishing a staging lock file", &path, error))?;
        Ok(StagingLock {
            id,
            path,
            _file: file,
        })
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
    }
}

impl Drop for StagingLock {
    fn drop(&mut self) {
        // Unlink first, then the lock is released when the file closes; a collector that
        // opened the file meanwhile finds it lockable but with nothing left to remove.
        let _ = fs::remove_file(&self.path);
    }
}

fn unique_staging_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or(0);
    let number = NEXT_STAGING_NUMBER.fetch_add(1, Ordering::Relaxed);
    format!("{:x}-{nanos:x}-{number:x}", std::process::id())
}

/// `staging id \0 sequence`.
pub(crate) fn staged_chunk_key(staging_id: &str, sequence: u64) -> Vec<u8> {
    join(staging_id.as_bytes(), &encode_u64(sequence))
}

/// Deletes every chunk staged under `staging_id`; returns how many chunks and bytes went.
pub(crate) fn delete_staged(env: &SharedEnv, staging_id: &str) -> StorageResult<(u64, u64)> {
    env.write(|wtxn| {
        delete_prefix(
            &env.databases.blob_staging,
            wtxn,
            &prefix_of(staging_id.as_bytes()),
            &format!("staged chunks of {staging_id}"),
        )
    })
}

/// Removes the staged chunks of writers that are gone. Returns how many writes and bytes.
pub(crate) fn remove_dead_ingests(
    env: &SharedEnv,
    staging_dir: &Path,
) -> StorageResult<(u64, u64)> {
    // Staged ids are read before the directory: a writer that had chunks then still has its
    // lock file now unless it has ended, so an id without a lock file is never a live write.
    let mut unclaimed: BTreeSet<String> = env.read(|rtxn| {
        distinct_first_parts(&env.databases.blob_staging, rtxn, "staged writes")?
            .iter()
            .map(|part| Ok(utf8(part, "staging id")?.to_string()))
            .collect()
    })?;
    let mut removed_writes = 0;
    let mut removed_bytes = 0;
    for entry in lock_directory_entries(staging_dir)? {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if let Some(id) = name.strip_suffix(LOCK_SUFFIX) {
            unclaimed.remove(id);
            let Some(file) = lockable_file(&path)? else {
                continue;
            };
            let (chunks, bytes) = delete_staged(env, id)?;
            let removed_file = fs::remove_file(&path).is_ok();
            drop(file);
            if chunks > 0 || removed_file {
                removed_writes += 1;
                removed_bytes += bytes;
            }
        } else if name.ends_with(LOCKING_SUFFIX) && is_older_than(&path, ABANDONED_LOCKING_AGE) {
            if let Some(file) = lockable_file(&path)? {
                let _ = fs::remove_file(&path);
                drop(file);
            }
        }
    }
    for id in unclaimed {
        let (chunks, bytes) = delete_staged(env, &id)?;
        if chunks > 0 {
            removed_writes += 1;
            removed_bytes += bytes;
        }
    }
    Ok((removed_writes, removed_bytes))
}

fn lock_directory_entries(staging_dir: &Path) -> StorageResult<Vec<fs::DirEntry>> {
    let entries = match fs::read_dir(staging_dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => {
            return Err(StorageError::io(
                "listing the LMDB staging directory",
                staging_dir,
                error,
            ))
        }
    };
    entries
        .collect::<io::Result<Vec<_>>>()
        .map_err(|error| StorageError::io("listing the LMDB staging directory", staging_dir, error))
}

/// The lock file, locked by us, when no writer holds it; `None` when a writer does (or the
/// file is already gone).
fn lockable_file(path: &Path) -> StorageResult<Option<File>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(StorageError::io("opening a staging lock file", path, error)),
    };
    match fs2::FileExt::try_lock_exclusive(&file) {
        Ok(()) => Ok(Some(file)),
        // Held by a live writer (or unlockable for another reason: leave it alone).
        Err(_) => Ok(None),
    }
}

fn is_older_than(path: &Path, age: Duration) -> bool {
    fs::metadata(path)
        .and_then(|metadata| metadata.modified())
        .ok()
        .and_then(|modified| modified.elapsed().ok())
        .is_some_and(|elapsed| elapsed > age)
}
