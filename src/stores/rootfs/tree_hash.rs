//! The content hash of a rendered tree: every name, type, permission mode, file content,
//! symlink target and device number, in bytewise name order, so the same tree always hashes
//! the same and any changed byte, mode, name or link shows. Owners and times are left out:
//! they differ between a root and a rootless render of the same image.
//!
//! The walk opens nothing through a symlink and reads only regular files (a FIFO in the tree
//! is hashed by type and mode, never opened). The same walk copies a tree
//! ([`super::copy_tree`]),
//! hashing exactly the bytes it writes, so a copy out of the store is verified by comparing
//! its hash with the one recorded at render time.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use serde::Serialize;

use super::beneath::{child_names, open_child_dir, os};
use super::error::{RootfsError, RootfsResult};
use super::tree_copy::Copy;
use crate::traits::{Algorithm, Digest, Hasher};

/// What [`tree_hash`] found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TreeSummary {
    /// `sha256:` of the canonical listing.
    pub hash: Digest,
    /// Bytes of regular file content, each inode once (hard links share theirs).
    pub size: u64,
    /// Entries below the root.
    pub entries: u64,
}

/// Hashes the tree below `dir` (the directory itself included by its mode).
pub fn tree_hash(dir: &Path) -> RootfsResult<TreeSummary> {
    walk_tree(dir, None)
}

/// Recomputes the hash of `dir` and compares it with `expected`.
pub fn verify_tree(dir: &Path, expected: &Digest) -> RootfsResult<TreeSummary> {
    let summary = tree_hash(dir)?;
    if &summary.hash != expected {
        return Err(RootfsError::TreeMismatch {
            path: dir.to_path_buf(),
            expected: expected.to_string(),
            actual: summary.hash.to_string(),
        });
    }
    Ok(summary)
}

pub(super) fn open_dir_path(dir: &Path) -> RootfsResult<OwnedFd> {
    rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| RootfsError::io("opening the tree", dir, e.into()))
}

pub(super) fn walk_tree(dir: &Path, copy: Option<(Copy, OwnedFd)>) -> RootfsResult<TreeSummary> {
    let root = open_dir_path(dir)?;
    let stat = rustix::fs::fstat(&root).map_err(|e| RootfsError::io("stat", dir, e.into()))?;
    let (copy, target_root) = match copy {
        Some((copy, fd)) => (Some(copy), Some(fd)),
        None => (None, None),
    };
    let mut walk = Walk {
        hasher: Hasher::new(Algorithm::Sha256),
        size: 0,
        entries: 0,
        inodes: std::collections::HashSet::new(),
        top: dir.to_path_buf(),
        copy,
    };
    walk.record(b"", b'd', stat.st_mode & 0o7777, &[]);
    walk.directory(root.as_fd(), b"", target_root.as_ref().map(|fd| fd.as_fd()))?;
    if let (Some(copy), Some(target)) = (&walk.copy, &target_root) {
        copy.finish_directory(target.as_fd(), &stat, b"")?;
    }
    Ok(TreeSummary {
        hash: walk.hasher.finish(),
        size: walk.size,
        entries: walk.entries,
    })
}

struct Walk {
    hasher: Hasher,
    size: u64,
    entries: u64,
    inodes: std::collections::HashSet<(u64, u64)>,
    top: PathBuf,
    copy: Option<Copy>,
}

impl Walk {
    /// One entry: type, path, mode and payload, each length-prefixed so that no two different
    /// listings encode to the same bytes.
    fn record(&mut self, path: &[u8], kind: u8, mode: u32, payload: &[u8]) {
        self.hasher.update(&[kind]);
        self.hasher.update(&(path.len() as u64).to_le_bytes());
        self.hasher.update(path);
        self.hasher.update(&mode.to_le_bytes());
        self.hasher.update(&(payload.len() as u64).to_le_bytes());
        self.hasher.update(payload);
    }

    fn directory(
        &mut self,
        dir: BorrowedFd<'_>,
        path: &[u8],
        target: Option<BorrowedFd<'_>>,
    ) -> RootfsResult<()> {
        let top = self.top.clone();
        let io_error = |what: &str, path: &[u8], e: std::io::Error| {
            RootfsError::io(what, top.join(os(path)), e)
        };
        let names = child_names(dir).map_err(|e| io_error("listing", path, e))?;
        for name in names {
            let mut child_path = path.to_vec();
            if !child_path.is_empty() {
                child_path.push(b'/');
            }
            child_path.extend_from_slice(&name);
            let stat = rustix::fs::statat(dir, os(&name), AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| io_error("stat", &child_path, e.into()))?;
            let mode = stat.st_mode & 0o7777;
            self.entries += 1;
            let first_name_of_inode = self.inodes.insert((stat.st_dev, stat.st_ino));
            match FileType::from_raw_mode(stat.st_mode) {
                FileType::Directory => {
                    self.record(&child_path, b'd', mode, &[]);
                    let child = open_child_dir(dir, &name)
                        .map_err(|e| io_error("opening", &child_path, e))?;
                    let target_child = match (&self.copy, target) {
                        (Some(copy), Some(target)) => {
                            Some(copy.make_directory(target, &name, &child_path)?)
                        }
                        _ => None,
                    };
                    self.directory(
                        child.as_fd(),
                        &child_path,
                        target_child.as_ref().map(|fd| fd.as_fd()),
                    )?;
                    if let (Some(copy), Some(target_child)) = (&self.copy, &target_child) {
                        copy.finish_directory(target_child.as_fd(), &stat, &child_path)?;
                    }
                }
                FileType::RegularFile => {
                    let file = rustix::fs::openat(
                        dir,
                        os(&name),
                        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(|e| io_error("opening", &child_path, e.into()))?;
                    let linked_copy = match (&self.copy, target) {
                        (Some(copy), Some(_)) if !first_name_of_inode => {
                            copy.linked.get(&(stat.st_dev, stat.st_ino)).cloned()
                        }
                        _ => None,
                    };
                    let (content, length) = match (self.copy.as_mut(), target, linked_copy) {
                        (Some(copy), Some(target), Some(first)) => {
                            // Another name of a file already copied: link it, hash its content.
                            copy.link(target, &name, &first, &child_path)?;
                            hash_file(File::from(file), None, &mut vec![0u8; 64 * 1024])
                        }
                        (Some(copy), Some(target), None) => {
                            let out = copy.create_file(target, &name, &child_path)?;
                            let hashed = hash_file(File::from(file), Some(&out), &mut copy.buffer);
                            if hashed.is_ok() {
                                copy.finish_node(out.as_fd(), &stat, &child_path)?;
                                if stat.st_nlink > 1 {
                                    copy.linked
                                        .insert((stat.st_dev, stat.st_ino), child_path.clone());
                                }
                            }
                            hashed
                        }
                        _ => hash_file(File::from(file), None, &mut vec![0u8; 256 * 1024]),
                    }
                    .map_err(|e| io_error("reading", &child_path, e))?;
                    let mut payload = length.to_le_bytes().to_vec();
                    payload.extend_from_slice(content.as_str().as_bytes());
                    self.record(&child_path, b'f', mode, &payload);
                    if first_name_of_inode {
                        self.size += length;
                    }
                }
                FileType::Symlink => {
                    let link = rustix::fs::readlinkat(dir, os(&name), Vec::new())
                        .map_err(|e| io_error("reading the link", &child_path, e.into()))?;
                    if let (Some(copy), Some(target)) = (&self.copy, target) {
                        copy.symlink(target, &name, link.as_bytes(), &stat, &child_path)?;
                    }
                    // A symlink's own mode is meaningless on Linux (always 0777).
                    self.record(&child_path, b'l', 0, link.as_bytes());
                }
                other => {
                    let (kind, payload) = match other {
                        FileType::Fifo => (b'p', Vec::new()),
                        FileType::CharacterDevice => (b'c', stat.st_rdev.to_le_bytes().to_vec()),
                        FileType::BlockDevice => (b'b', stat.st_rdev.to_le_bytes().to_vec()),
                        FileType::Socket => (b's', Vec::new()),
                        _ => (b'?', Vec::new()),
                    };
                    if let (Some(copy), Some(target)) = (&self.copy, target) {
                        copy.node(target, &name, other, &stat, &child_path)?;
                    }
                    self.record(&child_path, kind, mode, &payload);
                }
            }
        }
        Ok(())
    }
}

/// Streams a file through sha256, writing each chunk to `copy` too when given.
fn hash_file(
    mut file: File,
    mut copy: Option<&File>,
    buffer: &mut [u8],
) -> std::io::Result<(Digest, u64)> {
    let mut hasher = Hasher::new(Algorithm::Sha256);
    let mut length = 0u64;
    loop {
        let read = match file.read(buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buffer[..read]);
        if let Some(out) = copy.as_mut() {
            out.write_all(&buffer[..read])?;
        }
        length += read as u64;
    }
    Ok((hasher.finish(), length))
}
