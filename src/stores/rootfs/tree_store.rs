//! Rendered trees cached in the store directory: flavour state, not base-store content.
//!
//! ```text
//! <store>/trees/<flavour>/<sha256 of key>/rootfs      the tree
//! <store>/trees/<flavour>/<sha256 of key>/tree.json   {key, hash, size, entries, created}
//! <store>/trees/<flavour>/.tmp-<id>-…                 a render in progress
//! ```
//!
//! `trees/`, `trees/<flavour>/` and each tree's directory are 0700: a root render keeps the
//! image's owners, setuid bits and device nodes, which must not be within another user's
//! reach (the class of Moby CVE-2021-41091). Directories an older version made 0755 are
//! tightened when the cache is opened.
//!
//! The key is whatever string the flavour chooses (appc: the resolved dependency list). A
//! tree is rendered into a temp directory beside its final place, hashed, its record written,
//! the file system synced, and then renamed into place: a tree directory exists only whole,
//! with its record. One named lock per key (striped: `locks/tree-<flavour>-<4 hex>.lock`)
//! is exclusive while a tree is rendered or removed and shared while it is read, so two
//! renders of one key at once do the work once: the second waits, then finds the tree.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::beneath::remove_tree;
use super::error::{RootfsError, RootfsResult};
use super::new_target::render_into_new_directory;
use super::options::Ownership;
use super::tree_copy::copy_tree;
use super::tree_hash::{tree_hash, verify_tree, TreeSummary};
use crate::store::locks::LockPaths;
use crate::store::{LockGuard, LockMode, Store};
use crate::traits::{Algorithm, Digest};
use crate::util::clock::{now_unix_ms, now_unix_nanos};
use crate::util::fsync::fsync_dir;
use crate::util::io_context::{IoContext, IoResultExt};

/// Directory of the tree cache inside a store directory.
pub const TREES_DIR: &str = "trees";
const RECORD_FILE: &str = "tree.json";
const ROOTFS_DIR: &str = "rootfs";
const TEMP_PREFIX: &str = ".tmp-";
const TRASH_PREFIX: &str = ".trash-";

/// One cached tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RenderedTree {
    pub key: String,
    /// The tree's directory (holding `rootfs/` and `tree.json`).
    pub dir: PathBuf,
    /// The rendered root file system.
    pub rootfs: PathBuf,
    /// [`tree_hash`] of `rootfs` when it was rendered.
    pub hash: Digest,
    /// Bytes of file content in the tree.
    pub size: u64,
    pub entries: u64,
    pub created_unix_ms: i64,
    /// Found in the cache rather than rendered by this call.
    pub reused: bool,
}

/// What [`TreeStore::copy_out`] copied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CopiedTree {
    pub tree: RenderedTree,
    pub target: PathBuf,
    /// The hash of what was copied (equal to the tree's recorded hash).
    pub summary: TreeSummary,
}

#[derive(Serialize, Deserialize)]
struct TreeRecord {
    key: String,
    hash: String,
    size: u64,
    entries: u64,
    created_unix_ms: i64,
}

/// What [`TreeStore::remove_dead_leftovers`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LeftoverReport {
    pub removed: u64,
    pub not_removed: Vec<LeftoverNotRemoved>,
}

/// A dead render's directory that could not be removed, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LeftoverNotRemoved {
    pub path: PathBuf,
    pub error: String,
}

/// The tree cache of one flavour in one store directory.
#[derive(Clone, Debug)]
pub struct TreeStore {
    root: PathBuf,
    flavour: String,
    locks: LockPaths,
}

impl TreeStore {
    /// The cache of `flavour` (lowercase letters, digits and `-`) in `store`'s directory.
    pub fn open(store: &Store, flavour: &str) -> RootfsResult<TreeStore> {
        let valid = !flavour.is_empty()
            && flavour
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid {
            return Err(RootfsError::InvalidOptions(format!(
                "tree cache flavour {flavour:?}: use lowercase letters, digits and '-'"
            )));
        }
        let trees = store.dir().join(TREES_DIR);
        let root = trees.join(flavour);
        for dir in [&trees, &root] {
            private_dir(dir).io_context("creating the tree cache", dir)?;
        }
        Ok(TreeStore {
            root,
            flavour: flavour.to_string(),
            locks: store.lock_paths().clone(),
        })
    }

    #[cfg(any(test, feature = "test-support"))]
    /// Where this flavour's trees live.
    pub fn dir(&self) -> &Path {
        &self.root
    }

    /// The cached tree of `key`, if there is one.
    pub fn get(&self, key: &str) -> RootfsResult<Option<RenderedTree>> {
        let _lock = self.lock(key, LockMode::Shared)?;
        self.read(key)
    }

    /// The cached tree of `key`; rendered first by `render` (given an empty directory to fill)
    /// when there is none. Concurrent calls for one key render once. A failed render leaves
    /// nothing behind.
    pub fn get_or_render<E, F>(&self, key: &str, render: F) -> Result<RenderedTree, E>
    where
        E: From<RootfsError>,
        F: FnOnce(&Path) -> Result<(), E>,
    {
        let _lock = self.lock(key, LockMode::Exclusive)?;
        if let Some(tree) = self.read(key)? {
            return Ok(tree);
        }
        let id = key_id(key);
        // Under the key's exclusive lock, any temp or trash directory of this key belongs to a
        // renderer or remover that died.
        self.remove_leftovers(&id)?;
        let temp = self
            .root
            .join(format!("{TEMP_PREFIX}{id}-{}", unique_suffix()));
        let rootfs = temp.join(ROOTFS_DIR);
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&temp)
            .io_context("creating a render directory", &temp)
            .map_err(RootfsError::from)?;
        // 0755 whatever the umask, so the tree's hash (which covers the root's mode) depends
        // only on what was rendered; an image's own root entry may still change it. Out of
        // other users' reach all the same: `temp` (the tree's directory) is 0700.
        let built = fs::create_dir(&rootfs)
            .and_then(|()| fs::set_permissions(&rootfs, fs::Permissions::from_mode(0o755)))
            .map_err(|e| {
                RootfsError::from(IoContext::new("creating a render directory", &rootfs, e)).into()
            })
            .and_then(|()| render(&rootfs))
            .and_then(|()| self.seal(key, &temp).map_err(E::from));
        let record = match built {
            Ok(record) => record,
            Err(error) => {
                let _ = remove_tree(&temp);
                return Err(error);
            }
        };
        let dir = self.root.join(&id);
        crate::crash_point!("rootfs.tree.before-rename");
        if let Err(error) = fs::rename(&temp, &dir).and_then(|()| fsync_dir(&self.root)) {
            let _ = remove_tree(&temp);
            return Err(RootfsError::from(IoContext::new(
                "moving the rendered tree into place",
                &dir,
                error,
            ))
            .into());
        }
        crate::crash_point!("rootfs.tree.after-rename");
        Ok(self.tree_of(record, dir, false)?)
    }

    /// Removes the tree of `key`; false if there was none. Waits for readers holding
    /// [`TreeStore::lock_shared`].
    pub fn remove(&self, key: &str) -> RootfsResult<bool> {
        let _lock = self.lock(key, LockMode::Exclusive)?;
        let id = key_id(key);
        let dir = self.root.join(&id);
        if fs::symlink_metadata(&dir).is_err() {
            return Ok(false);
        }
        // Renamed away first, in one step: a half-removed tree is never taken for a tree.
        let trash = self
            .root
            .join(format!("{TRASH_PREFIX}{id}-{}", unique_suffix()));
        fs::rename(&dir, &trash)
            .and_then(|()| fsync_dir(&self.root))
            .io_context("removing the rendered tree", &dir)?;
        crate::crash_point!("rootfs.tree-remove.after-rename");
        remove_tree(&trash).io_context("removing the rendered tree", &trash)?;
        Ok(true)
    }

    /// Removes the render and removal directories (`.tmp-<id>-*`, `.trash-<id>-*`) that dead
    /// processes left, of any key: each under its key's exclusive lock, tried without waiting
    /// (a key locked now has a live renderer or remover, whose directories are not dead).
    /// A crash between a removal's rename and its delete leaves a trash directory that no
    /// render of that key may ever come to clean; the flavour's GC calls this. Returns how
    /// many went, and the ones that could not be removed (each reported, none stopping the
    /// others: one stuck directory must not make every GC fail).
    pub fn remove_dead_leftovers(&self) -> RootfsResult<LeftoverReport> {
        let mut report = LeftoverReport::default();
        let entries = fs::read_dir(&self.root).io_context("listing", &self.root)?;
        for entry in entries {
            let entry = entry.io_context("listing", &self.root)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(id) = [TEMP_PREFIX, TRASH_PREFIX]
                .iter()
                .find_map(|prefix| name.strip_prefix(prefix))
                .and_then(|rest| rest.split('-').next())
                .filter(|id| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()))
            else {
                continue;
            };
            let lock_name = format!("tree-{}-{}", self.flavour, &id[..4]);
            let Some(_lock) =
                LockGuard::try_acquire(&self.locks.named(&lock_name), LockMode::Exclusive)?
            else {
                continue;
            };
            match remove_tree(&entry.path()) {
                Ok(()) => report.removed += 1,
                Err(error) => report.not_removed.push(LeftoverNotRemoved {
                    path: entry.path(),
                    error: error.to_string(),
                }),
            }
        }
        Ok(report)
    }

    /// Every cached tree of this flavour, by key.
    pub fn list(&self) -> RootfsResult<Vec<RenderedTree>> {
        let mut trees = Vec::new();
        let entries = fs::read_dir(&self.root).io_context("listing", &self.root)?;
        for entry in entries {
            let entry = entry.io_context("listing", &self.root)?;
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            if let Some(record) = read_record(&entry.path())? {
                trees.push(self.tree_of(record, entry.path(), true)?);
            }
        }
        trees.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(trees)
    }

    /// Recomputes the hash of `key`'s tree and compares it with the recorded one.
    pub fn verify(&self, key: &str) -> RootfsResult<TreeSummary> {
        let _lock = self.lock(key, LockMode::Shared)?;
        let tree = self.read(key)?.ok_or_else(|| RootfsError::BadTreeRecord {
            path: self.root.join(key_id(key)),
            reason: format!("no rendered tree for {key:?}"),
        })?;
        verify_tree(&tree.rootfs, &tree.hash)
    }

    /// Copies `key`'s tree into `target` (new, or an empty directory), verified: the copy's
    /// hash must be the one recorded when the tree was rendered, else nothing is left at
    /// `target`. Holds the key's shared lock, so the tree is not removed meanwhile.
    pub fn copy_out(
        &self,
        key: &str,
        target: &Path,
        ownership: Ownership,
    ) -> RootfsResult<CopiedTree> {
        let _lock = self.lock(key, LockMode::Shared)?;
        let tree = self.read(key)?.ok_or_else(|| RootfsError::BadTreeRecord {
            path: self.root.join(key_id(key)),
            reason: format!("no rendered tree for {key:?}"),
        })?;
        let summary = render_into_new_directory(target, |staging| {
            let summary = copy_tree(&tree.rootfs, staging, ownership)?;
            if summary.hash != tree.hash {
                return Err(RootfsError::TreeMismatch {
                    path: tree.rootfs.clone(),
                    expected: tree.hash.to_string(),
                    actual: summary.hash.to_string(),
                });
            }
            Ok(summary)
        })?;
        Ok(CopiedTree {
            tree,
            target: target.to_path_buf(),
            summary,
        })
    }

    #[cfg(any(test, feature = "test-support"))]
    /// The key's lock, shared: hold it while using a tree (copying it out) so that it is not
    /// removed meanwhile.
    pub fn lock_shared(&self, key: &str) -> RootfsResult<LockGuard> {
        self.lock(key, LockMode::Shared)
    }

    fn lock(&self, key: &str, mode: LockMode) -> RootfsResult<LockGuard> {
        let id = key_id(key);
        let name = format!("tree-{}-{}", self.flavour, &id[..4]);
        Ok(LockGuard::acquire(&self.locks.named(&name), mode)?)
    }

    fn read(&self, key: &str) -> RootfsResult<Option<RenderedTree>> {
        let dir = self.root.join(key_id(key));
        let Some(record) = read_record(&dir)? else {
            return Ok(None);
        };
        if record.key != key {
            return Err(RootfsError::BadTreeRecord {
                path: dir,
                reason: format!("recorded for key {:?}, not {key:?}", record.key),
            });
        }
        Ok(Some(self.tree_of(record, dir, true)?))
    }

    fn tree_of(
        &self,
        record: TreeRecord,
        dir: PathBuf,
        reused: bool,
    ) -> RootfsResult<RenderedTree> {
        let hash = Digest::parse(&record.hash).map_err(|e| RootfsError::BadTreeRecord {
            path: dir.clone(),
            reason: format!("hash {:?}: {e}", record.hash),
        })?;
        Ok(RenderedTree {
            key: record.key,
            rootfs: dir.join(ROOTFS_DIR),
            dir,
            hash,
            size: record.size,
            entries: record.entries,
            created_unix_ms: record.created_unix_ms,
            reused,
        })
    }

    /// Hashes a finished render, writes its record and syncs it all to disk.
    fn seal(&self, key: &str, temp: &Path) -> RootfsResult<TreeRecord> {
        let summary = tree_hash(&temp.join(ROOTFS_DIR))?;
        let record = TreeRecord {
            key: key.to_string(),
            hash: summary.hash.to_string(),
            size: summary.size,
            entries: summary.entries,
            created_unix_ms: now_unix_ms(),
        };
        let path = temp.join(RECORD_FILE);
        let json = serde_json::to_vec_pretty(&record).expect("a tree record serializes");
        let write = || -> std::io::Result<()> {
            let mut file = fs::File::create(&path)?;
            file.write_all(&json)?;
            // One syncfs for the whole tree rather than an fsync per file.
            rustix::fs::syncfs(&file)?;
            Ok(())
        };
        write().io_context("writing the tree record", &path)?;
        Ok(record)
    }

    fn remove_leftovers(&self, id: &str) -> RootfsResult<()> {
        let entries = fs::read_dir(&self.root).io_context("listing", &self.root)?;
        for entry in entries {
            let entry = entry.io_context("listing", &self.root)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let leftover = [TEMP_PREFIX, TRASH_PREFIX]
                .iter()
                .any(|prefix| name.starts_with(&format!("{prefix}{id}-")));
            // A tree directory without its record cannot come from a completed render.
            let unrecorded = name == id && read_record(&entry.path())?.is_none();
            if leftover || unrecorded {
                remove_tree(&entry.path())
                    .map_err(|e| IoContext::new("removing a dead render", entry.path(), e))?;
            }
        }
        Ok(())
    }
}

/// The directory name of a key: its sha256, so any string is a valid key.
fn key_id(key: &str) -> String {
    Digest::of_bytes(Algorithm::Sha256, key.as_bytes())
        .hex()
        .to_string()
}

fn read_record(dir: &Path) -> RootfsResult<Option<TreeRecord>> {
    let path = dir.join(RECORD_FILE);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(RootfsError::from(IoContext::new(
                "reading the tree record",
                &path,
                e,
            )))
        }
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| RootfsError::BadTreeRecord {
            path,
            reason: e.to_string(),
        })
}

/// Makes `dir` (and missing parents) 0700, or tightens it to 0700 when it exists with more:
/// what it holds is for its owner alone.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let metadata = fs::metadata(dir)?;
    if metadata.permissions().mode() & 0o077 != 0 {
        // Best effort: only the owner may, and another user's open must not fail for it
        // (the owner's next open tightens it).
        let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    }
    Ok(())
}

fn unique_suffix() -> String {
    let nanos = now_unix_nanos();
    format!("{}-{nanos}", std::process::id())
}
