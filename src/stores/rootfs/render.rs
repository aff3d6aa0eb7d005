//! One render: several layers applied to one target, and the directories' final modes and
//! times given only when the last is in.
//!
//! While a render is in progress every directory it makes is [`RENDERING_DIR_MODE`] (0700):
//! a mode an entry asks for (0777, say) is recorded and applied by [`Render::finish`]. With
//! the mode live between layers, another local user could enter a directory and replace what
//! a later layer makes there by a symlink, and a root render would then change what the link
//! points to (issue 16). Modes of everything else are set through descriptors that never
//! follow a link (see `nofollow`), so even a name swapped inside the tree leads nowhere.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::Path;

use rustix::fs::{Mode, Timespec, Timestamps};

use super::apply::ApplyReport;
use super::beneath::{Beneath, IMPLICIT_DIR_MODE};
use super::dir_cursor::DirCursor;
use super::entry_path::RelativePath;
use super::error::{RootfsError, RootfsResult};
use super::options::ApplyOptions;
use crate::util::io_context::IoResultExt;

/// Layers applied to one target, in the order given; [`Render::finish`] gives the
/// directories their modes and times. Dropped without `finish`, directories stay 0700 (a
/// failed render is removed anyway).
pub struct Render {
    pub(super) beneath: Beneath,
    pub(super) deferred: DeferredModes,
}

impl Render {
    /// Starts a render into the existing directory `target`.
    pub fn begin(target: &Path) -> RootfsResult<Render> {
        let beneath = Beneath::open(target).io_context("opening the render target", target)?;
        Ok(Render {
            beneath,
            deferred: DeferredModes::default(),
        })
    }

    /// Applies one more layer (see [`super::apply_layer`] for the rules).
    pub fn apply_layer(
        &mut self,
        tar: impl Read,
        options: &ApplyOptions,
    ) -> RootfsResult<ApplyReport> {
        super::apply::apply_to(self, tar, options)
    }

    /// Gives every directory the mode (and, for an entry's directory, the mtime) it is to
    /// have, deepest first, so setting one never stops us reaching another (a directory made
    /// read-only, or not searchable, is done after everything below it).
    pub fn finish(self) -> RootfsResult<()> {
        let root = rustix::io::dup(self.beneath.root())
            .map_err(|e| RootfsError::entry(".", "opening the root", e.into()))?;
        let mut cursor = DirCursor::new(root);
        // Reverse byte order of the keys puts every directory after all of its descendants
        // (`a/b` < `a/b/c`), and neighbours share most of their path.
        for (key, dir) in self.deferred.dirs.iter().rev() {
            let shown = || String::from_utf8_lossy(key).into_owned();
            match seek(&mut cursor, key) {
                Ok(()) => {}
                // Gone or replaced by a non-directory since: nothing to give a mode to.
                Err(e) if is_gone(&e) => continue,
                Err(e) => return Err(RootfsError::entry(&shown(), "opening the directory", e)),
            }
            let fd = cursor
                .current()
                .map_err(|e| RootfsError::entry(&shown(), "opening the directory", e))?;
            rustix::fs::fchmod(fd, Mode::from_raw_mode(dir.mode))
                .map_err(|e| RootfsError::entry(&shown(), "setting the mode", e.into()))?;
            if let Some(mtime) = dir.mtime {
                rustix::fs::futimens(fd, &timestamps(mtime))
                    .map_err(|e| RootfsError::entry(&shown(), "setting the mtime", e.into()))?;
            }
        }
        Ok(())
    }
}

fn is_gone(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP)
    )
}

/// Moves `cursor` to the directory `key` (`a/b/c`; empty: the root), leaving only the
/// components it does not share.
fn seek(cursor: &mut DirCursor, key: &[u8]) -> io::Result<()> {
    let wanted: Vec<&[u8]> = if key.is_empty() {
        Vec::new()
    } else {
        key.split(|&b| b == b'/').collect()
    };
    let shared = cursor
        .names()
        .iter()
        .zip(&wanted)
        .take_while(|(have, want)| have.as_slice() == **want)
        .count();
    while cursor.depth() > shared {
        cursor.leave();
    }
    for name in &wanted[shared..] {
        cursor.enter(name)?;
    }
    Ok(())
}

/// The modes and times directories get at the end of a render, by path key.
#[derive(Default)]
pub(super) struct DeferredModes {
    dirs: BTreeMap<Vec<u8>, DeferredDir>,
}

struct DeferredDir {
    mode: u32,
    /// An entry's mtime; `None` for a directory no entry named (its time is when it was made).
    mtime: Option<u64>,
}

impl DeferredModes {
    /// An entry's directory: its metadata wins over anything recorded before.
    pub(super) fn entry(&mut self, path: &RelativePath, mode: u32, mtime: u64) {
        self.dirs.insert(
            path.key(),
            DeferredDir {
                mode,
                mtime: Some(mtime),
            },
        );
    }

    /// A directory the render made on its own way to an entry: [`IMPLICIT_DIR_MODE`].
    pub(super) fn made(&mut self, path: &RelativePath) {
        self.dirs.insert(
            path.key(),
            DeferredDir {
                mode: IMPLICIT_DIR_MODE,
                mtime: None,
            },
        );
    }

    /// A directory that was there before (not ours) and lacked its owner's rwx, which we
    /// added: it gets back `mode` unless an entry sets another.
    pub(super) fn opened_up(&mut self, path: &RelativePath, mode: u32) {
        self.dirs
            .entry(path.key())
            .or_insert(DeferredDir { mode, mtime: None });
    }

    /// `path` and everything below it went: what was recorded for them no longer applies.
    pub(super) fn forget(&mut self, path: &RelativePath) {
        let key = path.key();
        if key.is_empty() {
            return;
        }
        self.dirs.remove(&key);
        let mut below = key;
        below.push(b'/');
        let doomed: Vec<Vec<u8>> = self
            .dirs
            .range(below.clone()..)
            .map(|(k, _)| k)
            .take_while(|k| k.starts_with(&below))
            .cloned()
            .collect();
        for key in doomed {
            self.dirs.remove(&key);
        }
    }
}

pub(super) fn timestamps(mtime: u64) -> Timestamps {
    let time = Timespec {
        tv_sec: i64::try_from(mtime).unwrap_or(i64::MAX),
        tv_nsec: 0,
    };
    Timestamps {
        last_access: time,
        last_modification: time,
    }
}
