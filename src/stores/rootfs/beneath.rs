//! File-system access confined to a target directory, by file descriptor.
//!
//! Every path is walked one component at a time from a descriptor of the target with
//! `openat(O_DIRECTORY | O_NOFOLLOW)`: a component that is a symlink (whatever it points at,
//! even inside the target) or not a directory stops the walk, so nothing is ever resolved
//! through a link an earlier entry made, and `..` never reaches the kernel (entry paths are
//! checked first). The final component is then created or removed relative to its parent's
//! descriptor with the `*at` calls, never followed (`O_NOFOLLOW | O_EXCL` on create,
//! `AT_SYMLINK_NOFOLLOW` on stat and times, `linkat` without `AT_SYMLINK_FOLLOW`).
//!
//! Why not `openat2(RESOLVE_BENEATH)` or `cap-std`: both still follow symlinks that stay
//! inside the root (cap-std by design, openat2 unless `RESOLVE_NO_SYMLINKS`), which the rule
//! forbids; and openat2 is missing on older kernels and often blocked by container seccomp
//! profiles. The component walk works everywhere and its one rule is easy to audit.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use super::dir_cursor::DirCursor;
use super::entry_path::RelativePath;

/// Mode of directories the renderer makes on its own (parents no entry named), given once the
/// whole render is in (see [`super::Render`]).
pub const IMPLICIT_DIR_MODE: u32 = 0o755;

/// Mode of every directory while a render is in progress: its owner's alone, so no other user
/// can enter it and swap what the renderer just made for a link (issue 16).
pub const RENDERING_DIR_MODE: u32 = 0o700;

pub fn os(name: &[u8]) -> &OsStr {
    OsStr::from_bytes(name)
}

/// What a walk did on its way, for the caller's records.
#[derive(Debug)]
pub enum WalkEvent<'a> {
    /// A missing directory was made.
    Created(&'a RelativePath),
    /// A read-only directory got its owner's write bit; it had this mode.
    OpenedUp(&'a RelativePath, u32),
}

/// Why a walk stopped.
#[derive(Debug)]
pub enum WalkError {
    /// A component is a symlink or not a directory: the walk will not go through it.
    Blocked {
        at: RelativePath,
        symlink: bool,
    },
    /// A component is absent (and the walk was not asked to create it).
    Missing(RelativePath),
    Io(RelativePath, io::Error),
}

/// The target directory, held open.
pub struct Beneath {
    root: OwnedFd,
}

impl Beneath {
    /// Opens the target itself (the caller chose that path; only what lies below it is
    /// confined).
    pub fn open(target: &Path) -> io::Result<Beneath> {
        let root = rustix::fs::open(
            target,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Beneath { root })
    }

    pub fn root(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }

    /// Opens the directory at `path`, component by component, without following anything.
    /// With `create`, missing components are made ([`RENDERING_DIR_MODE`]; the caller gives
    /// them [`IMPLICIT_DIR_MODE`] at the end); a read-only
    /// directory in the way is given its owner's write bit first when we are not root. Both
    /// are reported to `on_event`, so the caller can restore modes and know what it made.
    pub fn open_dir(
        &self,
        path: &RelativePath,
        create: bool,
        on_event: &mut dyn FnMut(WalkEvent<'_>),
    ) -> Result<OwnedFd, WalkError> {
        let mut current = rustix::io::dup(&self.root)
            .map_err(|e| WalkError::Io(RelativePath::root(), e.into()))?;
        // One growing path, for the events and errors (not a copy per component).
        let mut walked = RelativePath::root();
        for component in path.components() {
            walked.push(component);
            current = match open_child_dir(current.as_fd(), component) {
                Ok(fd) => fd,
                Err(error) if error.kind() == io::ErrorKind::NotFound && create => {
                    let mut made = rustix::fs::mkdirat(
                        &current,
                        os(component),
                        Mode::from_raw_mode(RENDERING_DIR_MODE),
                    );
                    if made == Err(rustix::io::Errno::ACCESS) {
                        let parent = walked.parent().expect("walked one component");
                        let original = make_owner_writable(current.as_fd())
                            .map_err(|e| WalkError::Io(parent.clone(), e))?;
                        if let Some(mode) = original {
                            on_event(WalkEvent::OpenedUp(&parent, mode));
                        }
                        made = rustix::fs::mkdirat(
                            &current,
                            os(component),
                            Mode::from_raw_mode(RENDERING_DIR_MODE),
                        );
                    }
                    match made {
                        Ok(()) => on_event(WalkEvent::Created(&walked)),
                        // Made meanwhile by someone else: open what is there, checked again.
                        Err(rustix::io::Errno::EXIST) => {}
                        Err(e) => return Err(WalkError::Io(walked, e.into())),
                    }
                    open_child_dir(current.as_fd(), component)
                        .map_err(|e| blocked_or_io(current.as_fd(), component, &walked, e))?
                }
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    return Err(WalkError::Missing(walked))
                }
                Err(error) => {
                    return Err(blocked_or_io(current.as_fd(), component, &walked, error))
                }
            };
        }
        Ok(current)
    }
}

/// Opens `name` in `dir` as a directory; a symlink or non-directory fails (ELOOP/ENOTDIR).
pub fn open_child_dir(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        os(name),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

fn blocked_or_io(
    dir: BorrowedFd<'_>,
    name: &[u8],
    at: &RelativePath,
    error: io::Error,
) -> WalkError {
    match file_type_at(dir, name) {
        Ok(Some(FileType::Directory) | None) | Err(_) => WalkError::Io(at.clone(), error),
        Ok(Some(file_type)) => WalkError::Blocked {
            at: at.clone(),
            symlink: file_type == FileType::Symlink,
        },
    }
}

/// The type of `name` in `dir`, not following a symlink; `None` when absent.
pub fn file_type_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<Option<FileType>> {
    match rustix::fs::statat(dir, os(name), AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => Ok(Some(FileType::from_raw_mode(stat.st_mode))),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Removes `name` from `dir` and, if it is a directory, everything below it, never following
/// a link. Directories are made writable first, so read-only trees (mode 0555, common in
/// images) can be removed without privileges. Absent: nothing to do. A loop over a stack of
/// directories, holding a bounded number of descriptors ([`DirCursor`]), so a tree of any
/// depth goes (a dead render left by an older version may be tens of thousands deep).
pub fn remove_all_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    match file_type_at(dir, name)? {
        None => return Ok(()),
        Some(FileType::Directory) => {}
        Some(_) => return ignore_absent(rustix::fs::unlinkat(dir, os(name), AtFlags::empty())),
    }
    let mut cursor = DirCursor::new(rustix::io::dup(dir)?);
    // Names still to remove in each directory entered, the top one's name last.
    let mut stack: Vec<(Vec<u8>, Vec<Vec<u8>>)> = Vec::new();
    let mut next = Some(name.to_vec());
    loop {
        if let Some(name) = next.take() {
            let parent = cursor.current()?;
            match file_type_at(parent, &name)? {
                None => {}
                Some(FileType::Directory) => {
                    cursor.enter(&name)?;
                    let current = cursor.current()?;
                    make_owner_writable(current)?;
                    let names = child_names(current)?;
                    stack.push((name, names));
                }
                Some(_) => {
                    ignore_absent(rustix::fs::unlinkat(parent, os(&name), AtFlags::empty()))?;
                }
            }
        }
        let Some((_, pending)) = stack.last_mut() else {
            return Ok(());
        };
        match pending.pop() {
            Some(child) => next = Some(child),
            None => {
                let (done, _) = stack.pop().expect("a level");
                cursor.leave();
                ignore_absent(rustix::fs::unlinkat(
                    cursor.current()?,
                    os(&done),
                    AtFlags::REMOVEDIR,
                ))?;
            }
        }
    }
}

/// Removes a whole directory tree at `path` (a rendered tree), never following links in it.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "refusing to remove a root directory",
        ));
    };
    let parent = rustix::fs::open(
        if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        },
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    remove_all_at(parent.as_fd(), name.as_bytes())
}

fn ignore_absent(result: rustix::io::Result<()>) -> io::Result<()> {
    match result {
        Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Adds `u+rwx` to a directory if it lacks any of them (needed to list and change it when we
/// are not root; root ignores the bits anyway). Returns the mode it had if it changed it.
pub fn make_owner_writable(dir: BorrowedFd<'_>) -> io::Result<Option<u32>> {
    let stat = rustix::fs::fstat(dir)?;
    let mode = stat.st_mode & 0o7777;
    if mode & 0o700 == 0o700 {
        return Ok(None);
    }
    rustix::fs::fchmod(dir, Mode::from_raw_mode(mode | 0o700))?;
    Ok(Some(mode))
}

/// The names in a directory (without `.` and `..`), sorted bytewise.
pub fn child_names(dir: BorrowedFd<'_>) -> io::Result<Vec<Vec<u8>>> {
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    names.sort();
    Ok(names)
}
