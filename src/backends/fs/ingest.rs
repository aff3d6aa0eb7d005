//! Staging files in `ingest/` and telling live ones from dead ones.
//!
//! A writer holds an exclusive `flock` on its staging file for its whole life. The lock belongs
//! to the open file description, so it disappears with the writer's process (crash included)
//! and conflicts even with a second `open` of the same file in the same process. Garbage
//! collection therefore removes exactly the staging files it can lock.

use std::fs::{self, File};
use std::io;
use std::path::Path;

use tempfile::NamedTempFile;

use crate::traits::{StorageError, StorageResult};

/// How often creating a staging file is retried when garbage collection removed it between
/// its creation and our lock (see [`create_locked_ingest_file`]). Each retry needs a collector
/// to win that microsecond-wide race again, so a handful is plenty.
const CREATE_ATTEMPTS: usize = 8;

/// A new, uniquely named staging file in `ingest_dir`, exclusively locked by the returned
/// handle. Dropping the handle removes the file and then releases the lock.
pub(super) fn create_locked_ingest_file(ingest_dir: &Path) -> StorageResult<NamedTempFile> {
    for _ in 0..CREATE_ATTEMPTS {
        let staging = new_staging_file(ingest_dir)?;
        fs2::FileExt::lock_exclusive(staging.as_file()).map_err(|source| {
            StorageError::io("locking the ingest file", staging.path(), source)
        })?;
        // Between creating and locking, a collector may have locked the still unlocked file
        // and removed it. Writing into an unlinked file would only fail at commit, so check
        // now, while holding the lock, that the name still leads to our file.
        if still_named(&staging)? {
            return Ok(staging);
        }
    }
    Err(StorageError::io(
        "creating an ingest file",
        ingest_dir,
        io::Error::other(format!(
            "removed by concurrent garbage collection {CREATE_ATTEMPTS} times in a row"
        )),
    ))
}

fn new_staging_file(ingest_dir: &Path) -> StorageResult<NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    builder.prefix("blob-").suffix(".partial");
    // tempfile defaults to 0600; committed blobs are renamed, not copied, so give them the
    // usual file mode (still narrowed by the umask) to stay readable like any other file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o644));
    }
    builder
        .tempfile_in(ingest_dir)
        .map_err(|source| StorageError::io("creating an ingest file", ingest_dir, source))
}

/// Whether the staging file's path still names the file its handle has open.
fn still_named(staging: &NamedTempFile) -> StorageResult<bool> {
    let by_path = match fs::metadata(staging.path()) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(source) => {
            return Err(StorageError::io(
                "checking the ingest file",
                staging.path(),
                source,
            ))
        }
    };
    let by_handle = staging
        .as_file()
        .metadata()
        .map_err(|source| StorageError::io("checking the ingest file", staging.path(), source))?;
    Ok(same_file(&by_path, &by_handle))
}

#[cfg(unix)]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(_a: &fs::Metadata, _b: &fs::Metadata) -> bool {
    // Staging names are random and never reused, so a name that still exists is ours.
    true
}

/// Removes every staging file in `ingest_dir` that no writer holds locked. Returns how many
/// files and how many bytes were removed.
pub(super) fn remove_dead_ingests(ingest_dir: &Path) -> StorageResult<(u64, u64)> {
    let entries = match fs::read_dir(ingest_dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok((0, 0)),
        Err(source) => {
            return Err(StorageError::io(
                "listing the ingest directory",
                ingest_dir,
                source,
            ))
        }
    };
    let (mut removed_files, mut removed_bytes) = (0, 0);
    for entry in entries {
        let entry = entry.map_err(|source| {
            StorageError::io("listing the ingest directory", ingest_dir, source)
        })?;
        if let Some(bytes) = remove_if_dead(&entry.path())? {
            removed_files += 1;
            removed_bytes += bytes;
        }
    }
    Ok((removed_files, removed_bytes))
}

/// Removes one staging file if nobody holds its lock; its size if it was removed.
fn remove_if_dead(path: &Path) -> StorageResult<Option<u64>> {
    let file = match File::open(path) {
        Ok(file) => file,
        // Committed (renamed away) or cleaned up by its writer since the listing.
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(StorageError::io("opening an ingest file", path, source)),
    };
    match fs2::FileExt::try_lock_exclusive(&file) {
        Ok(()) => {}
        Err(error) if error.kind() == fs2::lock_contended_error().kind() => return Ok(None),
        Err(source) => return Err(StorageError::io("locking an ingest file", path, source)),
    }
    // Measured under the lock, once no writer can still be growing it.
    let metadata = file
        .metadata()
        .map_err(|source| StorageError::io("reading an ingest file's size", path, source))?;
    if !metadata.is_file() {
        return Ok(None);
    }
    // Hold the lock until the name is gone: a writer that created this file but has not
    // locked it yet waits, then sees its file was removed and starts over.
    match fs::remove_file(path) {
        Ok(()) => Ok(Some(metadata.len())),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StorageError::io(
            "removing a dead ingest file",
            path,
            source,
        )),
    }
}
