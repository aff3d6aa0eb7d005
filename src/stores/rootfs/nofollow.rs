//! Changing the mode, owner and times of something the renderer just made (a FIFO, a device
//! node) without ever following a symbolic link, even if one took its name meanwhile.
//!
//! `chmod` by name follows links and Linux had no `lchmod` until `fchmodat2` (6.6), so the
//! node is opened with `O_PATH | O_NOFOLLOW` (which opens a symlink itself, never its target),
//! its type checked through that descriptor, and every change made through it:
//! - mode: `fchmodat2(fd, "", mode, AT_EMPTY_PATH)`; where the kernel lacks it (`ENOSYS`, or
//!   a seccomp profile answering `EPERM`), `chmod("/proc/self/fd/N")`, which names the
//!   inode the descriptor holds, not a path that could be swapped;
//! - owner: `fchownat(fd, "", AT_EMPTY_PATH)` (any kernel since 2.6.39);
//! - times: `utimensat(fd, "", AT_EMPTY_PATH)`, or through `/proc/self/fd/N` likewise.
//!
//! A symlink's own mode is never changed (it means nothing on Linux).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Timestamps, Uid};

use super::beneath::os;

/// A node held by an `O_PATH | O_NOFOLLOW` descriptor: what was at the name when opened,
/// whatever happens to the name afterwards.
pub struct NodeHandle {
    fd: OwnedFd,
    file_type: FileType,
}

impl NodeHandle {
    /// Opens `name` in `dir` without following it, and checks it is of `expected` type (a
    /// symlink or anything else put in place of what we made is refused: `ELOOP`/`EEXIST`).
    pub fn open(dir: BorrowedFd<'_>, name: &[u8], expected: FileType) -> io::Result<NodeHandle> {
        let fd = rustix::fs::openat(
            dir,
            os(name),
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let stat = rustix::fs::fstat(&fd)?;
        let file_type = FileType::from_raw_mode(stat.st_mode);
        if file_type != expected {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "expected a {expected:?} just made, found a {file_type:?}: replaced meanwhile"
                ),
            ));
        }
        Ok(NodeHandle { fd, file_type })
    }

    pub fn set_owner(&self, uid: Uid, gid: Gid) -> io::Result<()> {
        rustix::fs::chownat(
            &self.fd,
            "",
            Some(uid),
            Some(gid),
            AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW,
        )?;
        Ok(())
    }

    /// Sets the permission bits; a symlink keeps its own (nothing to set).
    pub fn set_mode(&self, mode: u32) -> io::Result<()> {
        if self.file_type == FileType::Symlink {
            return Ok(());
        }
        if !FCHMODAT2_MISSING.load(Ordering::Relaxed) {
            match fchmodat2_empty_path(self.fd.as_fd(), mode) {
                Ok(()) => return Ok(()),
                Err(e) if is_missing_syscall(&e) => {
                    FCHMODAT2_MISSING.store(true, Ordering::Relaxed);
                }
                Err(e) => return Err(e),
            }
        }
        self.set_mode_through_proc(mode)
    }

    /// The fallback of [`NodeHandle::set_mode`], public to the module's tests.
    pub(super) fn set_mode_through_proc(&self, mode: u32) -> io::Result<()> {
        rustix::fs::chmod(self.proc_path(), Mode::from_raw_mode(mode)).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("chmod through /proc/self/fd (is /proc mounted?): {e}"),
            )
        })
    }

    pub fn set_times(&self, times: &Timestamps) -> io::Result<()> {
        match rustix::fs::utimensat(&self.fd, "", times, AtFlags::EMPTY_PATH) {
            Ok(()) => Ok(()),
            // AT_EMPTY_PATH for utimensat is recent (Linux 5.8): the /proc name of the
            // descriptor is the inode itself.
            Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOENT)
                if self.file_type != FileType::Symlink =>
            {
                Ok(rustix::fs::utimensat(
                    rustix::fs::CWD,
                    self.proc_path(),
                    times,
                    AtFlags::empty(),
                )?)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn proc_path(&self) -> String {
        format!("/proc/self/fd/{}", self.fd.as_raw_fd())
    }
}

/// Set once `fchmodat2` turned out to be missing: later calls go straight to `/proc`.
static FCHMODAT2_MISSING: AtomicBool = AtomicBool::new(false);

/// `fchmodat2` has the same number on every architecture Linux gave it to (the unified
/// table), and libc does not wrap it everywhere yet.
const SYS_FCHMODAT2: libc::c_long = 452;

fn fchmodat2_empty_path(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    // SAFETY: a valid descriptor, a NUL-terminated empty path; the call writes nothing.
    let result = unsafe {
        libc::syscall(
            SYS_FCHMODAT2,
            fd.as_raw_fd(),
            c"".as_ptr(),
            mode as libc::c_uint,
            libc::AT_EMPTY_PATH,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `fchmodat2` absent (older kernel) or filtered (seccomp profiles answer ENOSYS or EPERM for
/// calls they do not know), or present without `AT_EMPTY_PATH` support (EINVAL).
fn is_missing_syscall(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::ENOSYS | libc::EPERM | libc::EINVAL)
    )
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;

    fn dir_fd(path: &std::path::Path) -> OwnedFd {
        rustix::fs::open(path, OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).unwrap()
    }

    #[test]
    fn a_symlink_put_in_place_is_refused_and_its_target_untouched() {
        let temp = tempfile::tempdir().unwrap();
        let target = temp.path().join("target");
        std::fs::write(&target, b"x").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink(&target, temp.path().join("p")).unwrap();
        let dir = dir_fd(temp.path());
        let error = NodeHandle::open(dir.as_fd(), b"p", FileType::Fifo)
            .err()
            .expect("a symlink is not the FIFO we made");
        assert!(error.to_string().contains("Symlink"), "{error}");
        // Even held as a symlink, its mode is left alone and its target's with it.
        let link = NodeHandle::open(dir.as_fd(), b"p", FileType::Symlink).unwrap();
        link.set_mode(0o666).unwrap();
        assert_eq!(std::fs::metadata(&target).unwrap().mode() & 0o7777, 0o600);
    }

    #[test]
    fn both_ways_of_setting_a_mode_reach_the_node_itself() {
        let temp = tempfile::tempdir().unwrap();
        let dir = dir_fd(temp.path());
        rustix::fs::mknodat(&dir, "p", FileType::Fifo, Mode::from_raw_mode(0o600), 0).unwrap();
        let node = NodeHandle::open(dir.as_fd(), b"p", FileType::Fifo).unwrap();
        node.set_mode(0o640).unwrap();
        let mode = || {
            std::fs::symlink_metadata(temp.path().join("p"))
                .unwrap()
                .mode()
                & 0o7777
        };
        assert_eq!(mode(), 0o640);
        node.set_mode_through_proc(0o604).unwrap();
        assert_eq!(mode(), 0o604);
        let time = rustix::fs::Timespec {
            tv_sec: 1_600_000_000,
            tv_nsec: 0,
        };
        node.set_times(&Timestamps {
            last_access: time,
            last_modification: time,
        })
        .unwrap();
        let metadata = std::fs::symlink_metadata(temp.path().join("p")).unwrap();
        assert_eq!(metadata.mtime(), 1_600_000_000);
    }
}
