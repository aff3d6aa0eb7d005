//! File locks of a store directory (DESIGN.md, concurrency protocol).
//!
//! Every lock is an `flock` on a file we open for that lock alone. An flock belongs to an open
//! file description, so it orders threads of one process as well as processes, and it dies with
//! its holder: a crashed process leaves no stale lock.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use fs2::FileExt;

use super::error::{StoreError, StoreResult};
use crate::traits::Digest;
use crate::util::io_context::IoResultExt;

#[cfg(any(test, feature = "test-support"))]
/// Number of digest lock stripes. A digest maps to the stripe of its first hex byte.
pub const DIGEST_LOCK_STRIPES: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockMode {
    Shared,
    Exclusive,
}

/// A held lock; released when dropped (closing the file releases the flock).
#[derive(Debug)]
pub struct LockGuard {
    file: File,
    path: PathBuf,
}

impl LockGuard {
    /// Blocks until the lock is held.
    pub fn acquire(path: &Path, mode: LockMode) -> StoreResult<LockGuard> {
        let file = open_lock_file(path)?;
        let result = match mode {
            // Called through the trait on purpose: std's inherent `File::lock_shared` would
            // shadow fs2's method (a known trap).
            LockMode::Shared => FileExt::lock_shared(&file),
            LockMode::Exclusive => FileExt::lock_exclusive(&file),
        };
        result.map_err(|source| StoreError::Lock {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(LockGuard {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Takes the lock only if nobody holds a conflicting one.
    pub fn try_acquire(path: &Path, mode: LockMode) -> StoreResult<Option<LockGuard>> {
        let file = open_lock_file(path)?;
        let result = match mode {
            LockMode::Shared => FileExt::try_lock_shared(&file),
            LockMode::Exclusive => FileExt::try_lock_exclusive(&file),
        };
        match result {
            Ok(()) => Ok(Some(LockGuard {
                file,
                path: path.to_path_buf(),
            })),
            Err(error) if error.kind() == fs2::lock_contended_error().kind() => Ok(None),
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
            Err(source) => Err(StoreError::Lock {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Turns an exclusive lock into a shared one (used after creating a store).
    pub fn downgrade(&self) -> StoreResult<()> {
        FileExt::lock_shared(&self.file).map_err(|source| StoreError::Lock {
            path: self.path.clone(),
            source,
        })
    }
}

fn open_lock_file(path: &Path) -> StoreResult<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|source| StoreError::Lock {
            path: path.to_path_buf(),
            source,
        })
}

/// Paths of the locks of one store directory.
#[derive(Clone, Debug)]
pub struct LockPaths {
    dir: PathBuf,
}

impl LockPaths {
    pub fn new(store_dir: &Path) -> StoreResult<LockPaths> {
        let dir = store_dir.join("locks");
        std::fs::create_dir_all(&dir).io_context("creating the lock directory", &dir)?;
        Ok(LockPaths { dir })
    }

    pub fn store_lock(store_dir: &Path) -> PathBuf {
        store_dir.join("store.lock")
    }

    /// The stripe lock file of a digest: `locks/NN` with NN its first hex byte.
    pub fn digest_lock(&self, digest: &Digest) -> PathBuf {
        self.dir.join(&digest.hex()[..2])
    }

    /// The stripe lock of a key/value entry: `locks/kv-NN`, NN a byte of a hash of its data
    /// type and key. Held exclusively by whoever reads an entry to rewrite or remove it (and
    /// decide the blob it referenced), so two such writers of one entry never interleave.
    /// Taken before any digest lock.
    pub fn entry_lock(&self, data_type: &str, key: &str) -> PathBuf {
        let hash = data_type
            .bytes()
            .chain([0])
            .chain(key.bytes())
            .fold(0x811c_9dc5u32, |hash, byte| {
                (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
            });
        self.dir.join(format!("kv-{:02x}", hash & 0xff))
    }

    /// [`LockPaths::entry_lock`] of several entries, exclusive, in stripe order, each stripe
    /// once.
    pub fn lock_entries<'k>(
        &self,
        keys: impl IntoIterator<Item = (&'k str, &'k str)>,
    ) -> StoreResult<Vec<LockGuard>> {
        let mut stripes: Vec<PathBuf> = keys
            .into_iter()
            .map(|(data_type, key)| self.entry_lock(data_type, key))
            .collect();
        stripes.sort_unstable();
        stripes.dedup();
        stripes
            .iter()
            .map(|path| LockGuard::acquire(path, LockMode::Exclusive))
            .collect()
    }

    /// A named lock such as a flavour's GC lock (`locks/gc-oci.lock`).
    pub fn named(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.lock"))
    }

    /// The names of the named locks whose file exists and whose name starts with `prefix`.
    pub(super) fn named_with_prefix(&self, prefix: &str) -> StoreResult<Vec<String>> {
        let entries =
            std::fs::read_dir(&self.dir).io_context("listing the lock directory", &self.dir)?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.io_context("listing the lock directory", &self.dir)?;
            let file_name = entry.file_name();
            let name = file_name.to_string_lossy();
            if let Some(name) = name.strip_suffix(".lock").filter(|n| n.starts_with(prefix)) {
                names.push(name.to_string());
            }
        }
        Ok(names)
    }

    /// Locks several digests at once, in stripe order, each stripe once: taking them in one
    /// global order is what keeps two multi-digest operations from deadlocking.
    pub fn lock_digests(&self, digests: &[Digest], mode: LockMode) -> StoreResult<Vec<LockGuard>> {
        let mut stripes: Vec<&str> = digests.iter().map(|d| &d.hex()[..2]).collect();
        stripes.sort_unstable();
        stripes.dedup();
        stripes
            .into_iter()
            .map(|stripe| LockGuard::acquire(&self.dir.join(stripe), mode))
            .collect()
    }
}
