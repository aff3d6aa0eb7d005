//! Copying a rendered tree out of the cache: the writing side of the tree-hash walk, so the
//! bytes hashed are the bytes written and the copy is verified against the recorded hash
//! without a second read. Nothing is followed on either side.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat, Timestamps};

use super::beneath::{open_child_dir, os};
use super::error::{RootfsError, RootfsResult};
use super::nofollow::NodeHandle;
use super::options::Ownership;
use super::tree_hash::{open_dir_path, walk_tree, TreeSummary};
use crate::util::io_context::IoContext;

/// Copies the tree below `source` into the existing, empty directory `target`: types, modes,
/// contents, symlinks, hard links (as links), FIFOs, times, and owners and device nodes when
/// `ownership` is [`Ownership::FromArchive`] (root); without it device nodes are skipped and
/// the hash still covers them. Returns the hash of what was read and copied, to compare
/// with a recorded one. Nothing is followed on either side.
pub fn copy_tree(source: &Path, target: &Path, ownership: Ownership) -> RootfsResult<TreeSummary> {
    let target_root = open_dir_path(target)?;
    let copy = Copy {
        ownership,
        linked: HashMap::new(),
        top: target.to_path_buf(),
        buffer: vec![0u8; 256 * 1024],
    };
    walk_tree(source, Some((copy, target_root)))
}

/// The writing side of [`copy_tree`]: creates in the target what the walk meets in the
/// source, in the same directory, never following anything there either.
pub(super) struct Copy {
    pub(super) ownership: Ownership,
    /// Files with several names: the path of the first copy, to link the others to.
    pub(super) linked: HashMap<(u64, u64), Vec<u8>>,
    pub(super) top: PathBuf,
    pub(super) buffer: Vec<u8>,
}

impl Copy {
    fn error(&self, what: &str, path: &[u8], e: impl Into<std::io::Error>) -> RootfsError {
        RootfsError::from(IoContext::new(what, self.top.join(os(path)), e.into()))
    }

    pub(super) fn make_directory(
        &self,
        target: BorrowedFd<'_>,
        name: &[u8],
        path: &[u8],
    ) -> RootfsResult<OwnedFd> {
        // Owner-writable until its children are in; the real mode comes after.
        rustix::fs::mkdirat(target, os(name), Mode::from_raw_mode(0o700))
            .map_err(|e| self.error("creating", path, e))?;
        open_child_dir(target, name).map_err(|e| self.error("opening", path, e))
    }

    pub(super) fn finish_directory(
        &self,
        dir: BorrowedFd<'_>,
        stat: &Stat,
        path: &[u8],
    ) -> RootfsResult<()> {
        self.finish_node(dir, stat, path)
    }

    pub(super) fn create_file(
        &self,
        target: BorrowedFd<'_>,
        name: &[u8],
        path: &[u8],
    ) -> RootfsResult<File> {
        let fd = rustix::fs::openat(
            target,
            os(name),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| self.error("creating", path, e))?;
        Ok(File::from(fd))
    }

    /// Owner (when kept), mode and times of a file or directory we hold open.
    pub(super) fn finish_node(
        &self,
        fd: BorrowedFd<'_>,
        stat: &Stat,
        path: &[u8],
    ) -> RootfsResult<()> {
        if self.ownership == Ownership::FromArchive {
            rustix::fs::fchown(fd, Some(uid(stat)), Some(gid(stat)))
                .map_err(|e| self.error("setting the owner of", path, e))?;
        }
        rustix::fs::fchmod(fd, Mode::from_raw_mode(stat.st_mode & 0o7777))
            .map_err(|e| self.error("setting the mode of", path, e))?;
        rustix::fs::futimens(fd, &times(stat))
            .map_err(|e| self.error("setting the times of", path, e))
    }

    pub(super) fn link(
        &self,
        target: BorrowedFd<'_>,
        name: &[u8],
        first: &[u8],
        path: &[u8],
    ) -> RootfsResult<()> {
        // `first` is a path this copy made, below the target's root, through directories only
        // (the walk made them); linkat does not follow a final symlink.
        let root = self.root()?;
        rustix::fs::linkat(&root, os(first), target, os(name), AtFlags::empty())
            .map_err(|e| self.error("linking", path, e))
    }

    fn root(&self) -> RootfsResult<OwnedFd> {
        open_dir_path(&self.top)
    }

    pub(super) fn symlink(
        &self,
        target: BorrowedFd<'_>,
        name: &[u8],
        link: &[u8],
        stat: &Stat,
        path: &[u8],
    ) -> RootfsResult<()> {
        rustix::fs::symlinkat(os(link), target, os(name))
            .map_err(|e| self.error("creating", path, e))?;
        self.finish_symlink(target, name, stat, path)
    }

    pub(super) fn node(
        &self,
        target: BorrowedFd<'_>,
        name: &[u8],
        file_type: FileType,
        stat: &Stat,
        path: &[u8],
    ) -> RootfsResult<()> {
        let device = matches!(file_type, FileType::CharacterDevice | FileType::BlockDevice);
        if (device && self.ownership != Ownership::FromArchive) || file_type == FileType::Socket {
            // Device nodes need root; sockets are not content. Both stay in the hash.
            return Ok(());
        }
        rustix::fs::mknodat(
            target,
            os(name),
            file_type,
            Mode::from_raw_mode(0o600),
            stat.st_rdev,
        )
        .map_err(|e| self.error("creating", path, e))?;
        // Owner, mode and times through a descriptor of the node itself, never a link put in
        // its place (see `nofollow`).
        let node = NodeHandle::open(target, name, file_type)
            .map_err(|e| self.error("opening what was made at", path, e))?;
        if self.ownership == Ownership::FromArchive {
            node.set_owner(uid(stat), gid(stat))
                .map_err(|e| self.error("setting the owner of", path, e))?;
        }
        node.set_mode(stat.st_mode & 0o7777)
            .map_err(|e| self.error("setting the mode of", path, e))?;
        node.set_times(&times(stat))
            .map_err(|e| self.error("setting the times of", path, e))
    }

    /// Owner and times of a symlink, on the link itself (`AT_SYMLINK_NOFOLLOW`); its mode
    /// means nothing and is never set.
    fn finish_symlink(
        &self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        stat: &Stat,
        path: &[u8],
    ) -> RootfsResult<()> {
        if self.ownership == Ownership::FromArchive {
            rustix::fs::chownat(
                dir,
                os(name),
                Some(uid(stat)),
                Some(gid(stat)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| self.error("setting the owner of", path, e))?;
        }
        rustix::fs::utimensat(dir, os(name), &times(stat), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| self.error("setting the times of", path, e))
    }
}

fn uid(stat: &Stat) -> rustix::fs::Uid {
    rustix::fs::Uid::from_raw(stat.st_uid)
}

fn gid(stat: &Stat) -> rustix::fs::Gid {
    rustix::fs::Gid::from_raw(stat.st_gid)
}

fn times(stat: &Stat) -> Timestamps {
    Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: stat.st_atime as _,
            tv_nsec: stat.st_atime_nsec as _,
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: stat.st_mtime as _,
            tv_nsec: stat.st_mtime_nsec as _,
        },
    }
}
