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
//!
//! The walk is a loop over a stack of directories, not a recursion, and holds a bounded
//! number of descriptors ([`DirCursor`]): a tree thousands of directories deep costs neither
//! a stack frame nor a descriptor per level.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use serde::Serialize;

use super::beneath::{child_names, os};
use super::dir_cursor::DirCursor;
use super::error::{RootfsError, RootfsResult};
use super::tree_copy::Copy;
use crate::traits::{Algorithm, Digest, Hasher};
use crate::util::io_context::{IoContext, IoResultExt};

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
    .map_err(|e| RootfsError::from(IoContext::new("opening the tree", dir, e.into())))
}

pub(super) fn walk_tree(dir: &Path, copy: Option<(Copy, OwnedFd)>) -> RootfsResult<TreeSummary> {
    let root = open_dir_path(dir)?;
    let stat = rustix::fs::fstat(&root).io_context("stat", dir)?;
    let (copy, target) = match copy {
        Some((copy, fd)) => (Some(copy), Some(DirCursor::new(fd))),
        None => (None, None),
    };
    let mut walk = Walk {
        hasher: Hasher::new(Algorithm::Sha256),
        size: 0,
        entries: 0,
        inodes: std::collections::HashSet::new(),
        top: dir.to_path_buf(),
        copy,
        source: DirCursor::new(root),
        target,
        path: Vec::new(),
    };
    walk.record(b"", b'd', stat.st_mode & 0o7777, &[]);
    walk.run(stat)?;
    Ok(TreeSummary {
        hash: walk.hasher.finish(),
        size: walk.size,
        entries: walk.entries,
    })
}

/// A directory being walked: its names not yet visited (last first) and what the copy needs
/// to finish it.
struct Level {
    pending: Vec<Vec<u8>>,
    stat: Stat,
    /// Length of the walk's path when this directory's name was added (to take it off).
    path_len: usize,
}

struct Walk {
    hasher: Hasher,
    size: u64,
    entries: u64,
    inodes: std::collections::HashSet<(u64, u64)>,
    top: PathBuf,
    copy: Option<Copy>,
    /// Where the walk is in the tree hashed, and in the copy when there is one.
    source: DirCursor,
    target: Option<DirCursor>,
    /// The current entry's path below the top: one buffer, grown and cut as the walk goes.
    path: Vec<u8>,
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

    fn io_error(&self, what: &str, e: std::io::Error) -> RootfsError {
        RootfsError::from(IoContext::new(what, self.top.join(os(&self.path)), e))
    }

    /// Depth first, in name order, without recursion: a stack of [`Level`]s.
    fn run(&mut self, root_stat: Stat) -> RootfsResult<()> {
        let names = self.list()?;
        let mut stack = vec![Level {
            pending: names,
            stat: root_stat,
            path_len: 0,
        }];
        while let Some(level) = stack.last_mut() {
            let Some(name) = level.pending.pop() else {
                let done = stack.pop().expect("a level");
                if let (Some(copy), Some(target)) = (&self.copy, self.target.as_mut()) {
                    let fd = target.current().map_err(|e| {
                        RootfsError::from(IoContext::new(
                            "opening",
                            copy.top.join(os(&self.path)),
                            e,
                        ))
                    })?;
                    copy.finish_directory(fd, &done.stat, &self.path)?;
                }
                if !stack.is_empty() {
                    self.source.leave();
                    if let Some(target) = self.target.as_mut() {
                        target.leave();
                    }
                }
                self.path.truncate(done.path_len);
                continue;
            };
            let path_len = self.path.len();
            if !self.path.is_empty() {
                self.path.push(b'/');
            }
            self.path.extend_from_slice(&name);
            if let Some(stat) = self.entry(&name)? {
                // A directory: go in.
                let pending = self.list()?;
                stack.push(Level {
                    pending,
                    stat,
                    path_len,
                });
            } else {
                self.path.truncate(path_len);
            }
        }
        Ok(())
    }

    /// The names of the current directory, last first (the walk pops them).
    fn list(&mut self) -> RootfsResult<Vec<Vec<u8>>> {
        let at = self.top.join(os(&self.path));
        let dir = self
            .source
            .current()
            .map_err(|e| IoContext::new("opening", at.clone(), e))?;
        let mut names = child_names(dir).io_context("listing", &at)?;
        names.reverse();
        Ok(names)
    }

    /// Hashes (and copies) the entry `name` of the current directory, at `self.path`; for a
    /// directory, enters it (in the copy too) and returns its stat.
    fn entry(&mut self, name: &[u8]) -> RootfsResult<Option<Stat>> {
        let child_path = self.path.clone();
        let top = self.top.clone();
        let error = |what: &'static str| {
            let at = top.join(os(&child_path));
            move |e: std::io::Error| RootfsError::from(IoContext::new(what, at, e))
        };
        let stat = rustix::fs::statat(
            self.source.current().map_err(error("opening"))?,
            os(name),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| error("stat")(e.into()))?;
        let mode = stat.st_mode & 0o7777;
        self.entries += 1;
        let first_name_of_inode = self.inodes.insert((stat.st_dev, stat.st_ino));
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::Directory => {
                self.record(&child_path, b'd', mode, &[]);
                self.source.enter(name).map_err(error("opening"))?;
                if let (Some(copy), Some(target)) = (&self.copy, self.target.as_mut()) {
                    let parent = target.current().map_err(error("opening the copy of"))?;
                    let made = copy.make_directory(parent, name, &child_path)?;
                    target.enter_opened(name, made);
                }
                return Ok(Some(stat));
            }
            FileType::RegularFile => {
                let file = rustix::fs::openat(
                    self.source.current().map_err(error("opening"))?,
                    os(name),
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| error("opening")(e.into()))?;
                let (content, length) =
                    self.file(File::from(file), name, &stat, first_name_of_inode)?;
                let mut payload = length.to_le_bytes().to_vec();
                payload.extend_from_slice(content.as_str().as_bytes());
                self.record(&child_path, b'f', mode, &payload);
                if first_name_of_inode {
                    self.size += length;
                }
            }
            FileType::Symlink => {
                let link = rustix::fs::readlinkat(
                    self.source.current().map_err(error("opening"))?,
                    os(name),
                    Vec::new(),
                )
                .map_err(|e| error("reading the link")(e.into()))?;
                if let (Some(copy), Some(target)) = (&self.copy, self.target.as_mut()) {
                    let parent = target.current().map_err(error("opening the copy of"))?;
                    copy.symlink(parent, name, link.as_bytes(), &stat, &child_path)?;
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
                if let (Some(copy), Some(target)) = (&self.copy, self.target.as_mut()) {
                    let parent = target.current().map_err(error("opening the copy of"))?;
                    copy.node(parent, name, other, &stat, &child_path)?;
                }
                self.record(&child_path, kind, mode, &payload);
            }
        }
        Ok(None)
    }

    /// A regular file's content hash and length; copied (or linked, for another name of a
    /// file already copied) when copying.
    fn file(
        &mut self,
        file: File,
        name: &[u8],
        stat: &Stat,
        first_name_of_inode: bool,
    ) -> RootfsResult<(Digest, u64)> {
        let path = self.path.clone();
        let hashed = match (self.copy.as_mut(), self.target.as_mut()) {
            (Some(copy), Some(target)) => {
                let parent = target
                    .current()
                    .map_err(|e| IoContext::new("opening", copy.top.join(os(&path)), e))?;
                let linked = if first_name_of_inode {
                    None
                } else {
                    copy.linked.get(&(stat.st_dev, stat.st_ino)).cloned()
                };
                match linked {
                    Some(first) => {
                        // Another name of a file already copied: link it, hash its content.
                        copy.link(parent, name, &first, &path)?;
                        hash_file(file, None, &mut vec![0u8; 64 * 1024])
                    }
                    None => {
                        let out = copy.create_file(parent, name, &path)?;
                        let hashed = hash_file(file, Some(&out), &mut copy.buffer);
                        if hashed.is_ok() {
                            copy.finish_node(out.as_fd(), stat, &path)?;
                            if stat.st_nlink > 1 {
                                copy.linked.insert((stat.st_dev, stat.st_ino), path.clone());
                            }
                        }
                        hashed
                    }
                }
            }
            _ => hash_file(file, None, &mut vec![0u8; 256 * 1024]),
        };
        hashed.map_err(|e| self.io_error("reading", e))
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
