//! Walking a directory tree of any depth with a bounded number of open descriptors and no
//! recursion: a cursor holds the path from its root as names and keeps descriptors for at
//! most [`MAX_OPEN`] of the deepest directories on it. Leaving a directory whose parent's
//! descriptor was let go opens the path again from the root, one component at a time without
//! following links, so a tree `d` deep costs `d * d / MAX_OPEN` opens at worst and never a
//! descriptor per level (the render's trees are at most 2048 deep: see `entry_path`).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::beneath::open_child_dir;

/// Descriptors one cursor keeps open beyond its root.
pub const MAX_OPEN: usize = 48;

pub struct DirCursor {
    root: OwnedFd,
    /// The names from the root to the current directory.
    names: Vec<Vec<u8>>,
    /// `fds[i]`: the directory `names[..=i]`, while held; the held ones are a suffix.
    fds: Vec<Option<OwnedFd>>,
    held: usize,
}

impl DirCursor {
    pub fn new(root: OwnedFd) -> DirCursor {
        DirCursor {
            root,
            names: Vec::new(),
            fds: Vec::new(),
            held: 0,
        }
    }

    /// The names from the root to the current directory.
    pub fn names(&self) -> &[Vec<u8>] {
        &self.names
    }

    /// Directories below the root the cursor is in.
    pub fn depth(&self) -> usize {
        self.names.len()
    }

    /// The current directory, opened again from the root if its descriptor was let go.
    pub fn current(&mut self) -> io::Result<BorrowedFd<'_>> {
        if self.names.is_empty() {
            return Ok(self.root.as_fd());
        }
        if self.fds.last().is_some_and(Option::is_none) {
            self.reopen()?;
        }
        Ok(self
            .fds
            .last()
            .and_then(Option::as_ref)
            .expect("reopened")
            .as_fd())
    }

    /// Goes into the directory `name` of the current one (never through a symlink).
    pub fn enter(&mut self, name: &[u8]) -> io::Result<()> {
        let child = open_child_dir(self.current()?, name)?;
        self.enter_opened(name, child);
        Ok(())
    }

    /// Goes into `name`, already opened by the caller as `fd` (a directory it just made).
    pub fn enter_opened(&mut self, name: &[u8], fd: OwnedFd) {
        self.names.push(name.to_vec());
        self.fds.push(Some(fd));
        self.held += 1;
        self.let_go_of_the_shallowest();
    }

    /// Back to the parent directory.
    pub fn leave(&mut self) {
        self.names.pop();
        if let Some(Some(_)) = self.fds.pop() {
            self.held -= 1;
        }
    }

    fn let_go_of_the_shallowest(&mut self) {
        if self.held <= MAX_OPEN {
            return;
        }
        let first_held = self.fds.len() - self.held;
        self.fds[first_held] = None;
        self.held -= 1;
    }

    /// Opens the path again from the root, keeping the deepest [`MAX_OPEN`] descriptors.
    fn reopen(&mut self) -> io::Result<()> {
        let keep_from = self.names.len().saturating_sub(MAX_OPEN);
        // The directory above the next one, while it is not one of those kept.
        let mut passing: Option<OwnedFd> = None;
        for depth in 0..self.names.len() {
            let child = {
                let parent = if depth == 0 {
                    self.root.as_fd()
                } else if depth > keep_from {
                    self.fds[depth - 1].as_ref().expect("just kept").as_fd()
                } else {
                    passing.as_ref().expect("just opened").as_fd()
                };
                open_child_dir(parent, &self.names[depth])?
            };
            if depth >= keep_from {
                if self.fds[depth].is_none() {
                    self.held += 1;
                }
                self.fds[depth] = Some(child);
            } else {
                passing = Some(child);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use rustix::fs::{Mode, OFlags};

    use super::*;

    #[test]
    fn a_tree_deeper_than_the_descriptors_held_is_walked_down_and_up() {
        let temp = tempfile::tempdir().unwrap();
        let depth = MAX_OPEN * 3 + 5;
        let root = || {
            rustix::fs::open(
                temp.path(),
                OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .unwrap()
        };
        let mut cursor = DirCursor::new(root());
        for level in 0..depth {
            let name = format!("d{level}");
            rustix::fs::mkdirat(
                cursor.current().unwrap(),
                name.as_str(),
                Mode::from_raw_mode(0o700),
            )
            .unwrap();
            cursor.enter(name.as_bytes()).unwrap();
            assert!(cursor.held <= MAX_OPEN);
        }
        rustix::fs::mkdirat(
            cursor.current().unwrap(),
            "bottom",
            Mode::from_raw_mode(0o700),
        )
        .unwrap();
        for level in (0..depth).rev() {
            cursor.leave();
            // The directory we are in now holds the one we left.
            let name = format!("d{level}");
            assert!(rustix::fs::statat(
                cursor.current().unwrap(),
                name.as_str(),
                rustix::fs::AtFlags::SYMLINK_NOFOLLOW
            )
            .is_ok());
            assert!(cursor.held <= MAX_OPEN);
        }
        assert_eq!(cursor.depth(), 0);
    }
}
