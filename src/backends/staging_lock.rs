//! The one staging protocol of every backend: how a staged (uncommitted) write proves it is
//! live, and how a sweep removes the writes of writers that are gone.
//!
//! **The rule.** A staged write is live exactly while its writer holds an exclusive `flock` on
//! its staging file `<id>.staging`. The file is created and locked before any staged data exists
//! (the `fs` backend writes the data into the file itself; `sqlite` and `lmdb` stage rows under
//! the id in their database) and is removed only after that data is gone, committed or
//! discarded. An flock belongs to an open file description, so it dies with its holder (a crash
//! included) and conflicts between two opens even inside one process. Hence a staging file that
//! a sweep can lock belongs to a dead writer, and is collected at once: no grace period.
//!
//! **The race this closes without waiting.** Between the writer's `create` and its `flock`, a
//! sweep may lock the new, still unlocked file and take it for dead. Both sides therefore
//! re-check under the lock that the file's name still leads to the file they hold: the sweep
//! removes the name while holding the lock, and the writer, whose blocking `flock` returns only
//! after the sweep let go, finds its name gone and starts over under a new id (before it has
//! staged anything). So a writer never stages data under a file a sweep removed, and the sweep
//! never removes a file a live writer locked.
//!
//! Staged data with no staging file at all (the sweep reads the staged ids before it lists the
//! directory) belongs to a writer that is gone too: a live writer's file exists from before its
//! first staged byte until after its last one is gone.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::traits::{Digest, StorageError, StorageResult};
use crate::util::clock::now_unix_nanos;
use crate::util::io_context::{IoContext, IoResultExt};

/// The name ending of every staging file.
pub(crate) const STAGING_SUFFIX: &str = ".staging";

/// How often creating a staging file is retried when a sweep removed it between its creation
/// and our lock. Each retry needs a sweep to win that microsecond-wide race again.
const CREATE_ATTEMPTS: usize = 8;

/// A live staged write: its id and its locked staging file. Dropping it removes the file, then
/// releases the lock (by closing it).
#[derive(Debug)]
pub(crate) struct StagingLock {
    id: String,
    path: PathBuf,
    file: File,
    /// Cleared once the file was renamed away ([`StagingLock::persist`]) or abandoned in a test.
    remove_on_drop: bool,
}

impl StagingLock {
    /// Creates and locks a new staging file in `dir` (created if missing) under a fresh id.
    pub(crate) fn create(dir: &Path) -> StorageResult<StagingLock> {
        Self::create_with_suffix(dir, STAGING_SUFFIX)
    }

    /// Creates and locks a new staging file in `dir` for a resumable write of `digest`: named
    /// `<id>.<algorithm>-<hex>.staging`, so that once its writer is gone the next resumable
    /// writer of `digest` finds it ([`StagingLock::adopt_dead`]). Its id is fresh like any
    /// other's, and a sweep sees an ordinary staging file.
    pub(crate) fn create_resumable(dir: &Path, digest: &Digest) -> StorageResult<StagingLock> {
        Self::create_with_suffix(dir, &resumable_suffix(digest))
    }

    /// Takes over the staging file a gone writer left for a resumable write of `digest`, if
    /// there is one: locked by us from now on, its id and staged data (the file's content on
    /// `fs`, rows under its id in a database) ours to go on with, to commit or to discard, as
    /// if we had created it. The largest such file is tried first (on `fs` it is the staged
    /// data itself). The sweep's own test decides what is dead (a lock we can take on a file
    /// its name still leads to), so a file a live writer holds is never taken, and one a sweep
    /// is removing is not either. The caller makes sure no other resumable writer of `digest`
    /// runs meanwhile: between its create and its lock, a new file is not yet held.
    pub(crate) fn adopt_dead(dir: &Path, digest: &Digest) -> StorageResult<Option<StagingLock>> {
        let suffix = resumable_suffix(digest);
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(StorageError::from(IoContext::new(
                    "listing the staging directory",
                    dir,
                    e,
                )))
            }
        };
        let mut candidates = Vec::new();
        for entry in entries {
            let entry = entry.io_context("listing the staging directory", dir)?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let Some(id) = name.strip_suffix(&suffix) else {
                continue;
            };
            let Ok(metadata) = entry.metadata() else {
                continue;
            };
            if name.starts_with('.') || id.contains('.') || !metadata.is_file() {
                continue;
            }
            candidates.push((metadata.len(), id.to_string(), entry.path()));
        }
        candidates.sort_by_key(|candidate| std::cmp::Reverse(candidate.0));
        for (_, id, path) in candidates {
            // A file that cannot be opened or locked for writing is not ours to take over: the
            // write then starts from nothing, as it would have before.
            if let Ok(Some(file)) = lock_if_dead(&path, Open::ForWriting) {
                return Ok(Some(StagingLock {
                    id,
                    path,
                    file,
                    remove_on_drop: true,
                }));
            }
        }
        Ok(None)
    }

    /// Creates and locks a new staging file named `<fresh id><suffix>` in `dir`.
    fn create_with_suffix(dir: &Path, suffix: &str) -> StorageResult<StagingLock> {
        for _ in 0..CREATE_ATTEMPTS {
            let id = new_staging_id();
            let path = dir.join(format!("{id}{suffix}"));
            let file = match create_file(&path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    // The folder is created on first use (the file's own create is the check,
                    // saving a mkdir per staged write).
                    private_dir(dir).io_context("creating the staging directory", dir)?;
                    create_file(&path)
                }
                other => other,
            }
            .io_context("creating a staging file", &path)?;
            fs2::FileExt::lock_exclusive(&file).io_context("locking a staging file", &path)?;
            if names_file(&path, &file)? {
                return Ok(StagingLock {
                    id,
                    path,
                    file,
                    remove_on_drop: true,
                });
            }
            // A sweep removed it before we held the lock; nothing was staged under this id.
        }
        Err(StorageError::from(IoContext::new(
            "creating a staging file",
            dir,
            io::Error::other(format!(
                "removed by a concurrent dead-writer sweep {CREATE_ATTEMPTS} times in a row"
            )),
        )))
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// Renames the staging file with its content to `target` (replacing what is there): the
    /// write is no longer staged. The lock goes with the handle, now. On failure the staging
    /// file is removed.
    pub(crate) fn persist(mut self, target: &Path) -> io::Result<()> {
        fs::rename(&self.path, target)?;
        self.remove_on_drop = false;
        Ok(())
    }

    /// Closes the file without removing it, as a crashed writer would leave it.
    #[cfg(test)]
    pub(crate) fn abandon(mut self) -> PathBuf {
        self.remove_on_drop = false;
        self.path.clone()
    }
}

impl Drop for StagingLock {
    fn drop(&mut self) {
        if self.remove_on_drop {
            // Unlink first, then close: a sweep that opened the file meanwhile gets the lock
            // only once the name is gone, sees that, and leaves it alone. A failure leaves an
            // unlocked file, which the next sweep removes.
            let _ = fs::remove_file(&self.path);
        }
    }
}

impl Write for StagingLock {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.file.write(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// The end of a resumable staging file's name after its id: `.<algorithm>-<hex>.staging`.
fn resumable_suffix(digest: &Digest) -> String {
    format!(
        ".{}-{}{STAGING_SUFFIX}",
        digest.algorithm().name(),
        digest.hex()
    )
}

/// An id no other staged write on this host uses: process id, time and a per-process counter.
/// It holds no `.`, so the id of a staging file is its name up to the first `.`.
fn new_staging_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = now_unix_nanos();
    let sequence = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:x}-{nanos:x}-{sequence:x}", std::process::id())
}

/// Makes a staging (or ingest) directory, and missing parents, 0700; tightens one an older
/// version made 0755. Writes in progress are their writer's, not other users' to read (the
/// store's permission model: docs/RELIABILITY.md). Tightening is best effort: only the owner
/// may, and another user's open must not fail for it.
pub(crate) fn private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    if fs::metadata(dir)?.permissions().mode() & 0o077 != 0 {
        let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    }
    Ok(())
}

fn create_file(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create_new(true);
    // The `fs` backend renames its staging file into place as the blob, so give it the usual
    // file mode (narrowed by the umask) rather than a private one.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o644);
    options.open(path)
}

/// Whether `path` still names the file `file` has open.
fn names_file(path: &Path, file: &File) -> StorageResult<bool> {
    let by_path = match fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => {
            return Err(StorageError::from(IoContext::new(
                "checking a staging file",
                path,
                e,
            )))
        }
    };
    let by_handle = file
        .metadata()
        .io_context("checking a staging file", path)?;
    Ok(same_file(&by_path, &by_handle))
}

#[cfg(unix)]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(_a: &fs::Metadata, _b: &fs::Metadata) -> bool {
    // Staging ids are never reused, so a name that still exists is the one we created.
    true
}

/// A staging file whose writer is gone, held locked by the sweep while its data is discarded.
pub(crate) struct DeadStaging {
    /// The staged write's id: the file name up to its first `.` (files left by older versions,
    /// `<id>.lock`, `<id>.locking`, `blob-<random>.partial`, are taken the same way).
    pub(crate) id: String,
    /// The file's size, measured under the lock (the `fs` backend's staged bytes).
    pub(crate) file_bytes: u64,
}

/// Sweeps `dir`: for every staging file no writer holds, calls `discard` while holding its lock,
/// then removes the file. Returns the ids of every staging file listed, live or dead, so the
/// caller can treat staged data under any other id (read before this call) as dead too.
pub(crate) fn sweep_dead(
    dir: &Path,
    mut discard: impl FnMut(&DeadStaging) -> StorageResult<()>,
) -> StorageResult<HashSet<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(HashSet::new()),
        Err(e) => {
            return Err(StorageError::from(IoContext::new(
                "listing the staging directory",
                dir,
                e,
            )))
        }
    };
    let mut listed = HashSet::new();
    for entry in entries {
        let entry = entry.io_context("listing the staging directory", dir)?;
        let is_file = entry
            .file_type()
            .map_err(|e| IoContext::new("listing the staging directory", entry.path(), e))?
            .is_file();
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !is_file || name.starts_with('.') {
            continue;
        }
        let id = name.split('.').next().unwrap_or(name).to_string();
        listed.insert(id.clone());
        let path = entry.path();
        let Some(file) = lock_if_dead(&path, Open::ForReading)? else {
            continue;
        };
        let file_bytes = file
            .metadata()
            .io_context("reading a staging file's size", &path)?
            .len();
        discard(&DeadStaging { id, file_bytes })?;
        // Removed while still locked: a writer that created this file but has not locked it
        // yet waits, then finds its name gone and starts over.
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(StorageError::from(IoContext::new(
                    "removing a dead staging file",
                    &path,
                    e,
                )))
            }
        }
        drop(file);
    }
    Ok(listed)
}

/// [`sweep_dead`] that changes nothing: for every staging file no writer holds, calls
/// `measure` while holding its lock (so what it measures is not taken over or swept
/// meanwhile), and leaves it in place. Returns the ids of every staging file listed, live or
/// dead, as [`sweep_dead`] does, so a backend can count staged data under any other id (read
/// before this call) as dead too: what a GC's dry run says the sweep would remove.
pub(crate) fn probe_dead(
    dir: &Path,
    mut measure: impl FnMut(&DeadStaging) -> StorageResult<()>,
) -> StorageResult<HashSet<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(HashSet::new()),
        Err(e) => {
            return Err(StorageError::from(IoContext::new(
                "listing the staging directory",
                dir,
                e,
            )))
        }
    };
    let mut listed = HashSet::new();
    for entry in entries {
        let entry = entry.io_context("listing the staging directory", dir)?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let is_file = entry.file_type().is_ok_and(|kind| kind.is_file());
        if !is_file || name.starts_with('.') {
            continue;
        }
        let id = name.split('.').next().unwrap_or(&name).to_string();
        listed.insert(id.clone());
        let path = entry.path();
        let Some(file) = lock_if_dead(&path, Open::ForReading)? else {
            continue;
        };
        let file_bytes = file
            .metadata()
            .io_context("reading a staging file's size", &path)?
            .len();
        measure(&DeadStaging { id, file_bytes })?;
        drop(file);
    }
    Ok(listed)
}

/// How [`lock_if_dead`] opens a staging file: to look at it (a sweep), or to write on in it
/// (a take-over).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Open {
    ForReading,
    ForWriting,
}

/// The staging file at `path`, locked by us, when no writer holds it and the name still leads
/// to it; `None` when a writer holds it or it is gone (committed, or ended by its writer).
/// For writing, it is opened without following a final symlink and without waiting on a FIFO
/// (a take-over writes into what it opens; the caller skips any error).
fn lock_if_dead(path: &Path, open: Open) -> StorageResult<Option<File>> {
    let mut options = OpenOptions::new();
    options.read(true);
    if open == Open::ForWriting {
        options.write(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::custom_flags(
            &mut options,
            libc::O_NOFOLLOW | libc::O_NONBLOCK,
        );
    }
    let file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(StorageError::from(IoContext::new(
                "opening a staging file",
                path,
                e,
            )))
        }
    };
    match fs2::FileExt::try_lock_exclusive(&file) {
        Ok(()) => {}
        Err(e) if e.kind() == fs2::lock_contended_error().kind() => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
        Err(e) => {
            return Err(StorageError::from(IoContext::new(
                "locking a staging file",
                path,
                e,
            )))
        }
    }
    // Between our open and our lock its writer may have ended (and unlinked it) or committed it
    // (renamed it into place): then the file we hold is no staged write any more.
    if !names_file(path, &file)? {
        return Ok(None);
    }
    Ok(Some(file))
}

#[cfg(test)]
mod tests;
