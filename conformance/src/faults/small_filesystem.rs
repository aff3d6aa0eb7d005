//! A small real file system, for full-disk tests the wrappers cannot stand in for (SQLite's
//! and LMDB's own handling of `ENOSPC`, a rename or directory sync failing): a tmpfs of a
//! given size mounted on a temporary directory, filled with a ballast file to leave as little
//! room as a test asks for.
//!
//! Mounting needs `CAP_SYS_ADMIN` (root, as CI runs here). Elsewhere [`SmallFilesystem::mount`]
//! returns `None` and the caller skips, except under `CI=true`, where it is an error.

use std::ffi::CString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub struct SmallFilesystem {
    mount_point: tempfile::TempDir,
}

impl SmallFilesystem {
    /// A tmpfs of `size_bytes` on a new temporary directory; `Ok(None)` if this process may
    /// not mount (not root) and `CI` is not `true`.
    pub fn mount(size_bytes: u64) -> Result<Option<SmallFilesystem>, String> {
        let mount_point = tempfile::Builder::new()
            .prefix("oci-store-small-fs-")
            .tempdir()
            .map_err(|e| format!("creating a mount point: {e}"))?;
        let target = CString::new(mount_point.path().as_os_str().as_bytes())
            .map_err(|e| format!("mount point path: {e}"))?;
        let options = CString::new(format!("size={size_bytes},mode=0700")).expect("no NUL");
        // SAFETY: every pointer is to a NUL-terminated string that outlives the call.
        let mounted = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                options.as_ptr().cast(),
            )
        };
        if mounted != 0 {
            let error = std::io::Error::last_os_error();
            if std::env::var("CI").as_deref() == Ok("true") {
                return Err(format!(
                    "mounting a {size_bytes}-byte tmpfs on {} (CI runs as root, so this must \
                     work): {error}",
                    mount_point.path().display()
                ));
            }
            eprintln!("skipped: cannot mount a tmpfs here ({error}); run as root or with CI=true");
            return Ok(None);
        }
        Ok(Some(SmallFilesystem { mount_point }))
    }

    pub fn path(&self) -> &Path {
        self.mount_point.path()
    }

    fn ballast(&self) -> PathBuf {
        self.path().join("ballast")
    }

    /// Fills the file system, then frees `headroom` bytes of it: what is left for the work.
    pub fn leave_free(&self, headroom: u64) -> Result<(), String> {
        let path = self.ballast();
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("opening the ballast: {e}"))?;
        let chunk = vec![0u8; 64 * 1024];
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => return Err(format!("filling the ballast: {e}")),
            }
        }
        let size = file
            .metadata()
            .map_err(|e| format!("ballast size: {e}"))?
            .len();
        file.set_len(size.saturating_sub(headroom))
            .map_err(|e| format!("shrinking the ballast: {e}"))
    }

    /// Space returns: the ballast goes.
    pub fn free(&self) -> Result<(), String> {
        match std::fs::remove_file(self.ballast()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("removing the ballast: {e}")),
        }
    }
}

impl Drop for SmallFilesystem {
    fn drop(&mut self) {
        let target = CString::new(self.path().as_os_str().as_bytes()).expect("no NUL");
        // SAFETY: a NUL-terminated path; MNT_DETACH so open files never keep it mounted.
        unsafe {
            libc::umount2(target.as_ptr(), libc::MNT_DETACH);
        }
    }
}
