//! Running code as another user (uid/gid 65534, "nobody") in a forked child, so a test can
//! try what a local attacker could: reach into a store, race the renderer. The tests run as
//! root here and in CI (they need it to change uid); not root under CI=true is a failure.
//!
//! The child of a multi-threaded test process may only make async-signal-safe calls, so the
//! bodies given here use raw system calls on buffers prepared before the fork (no allocation).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub const NOBODY: u32 = 65534;

/// Whether the test can switch users; false (the caller skips) only outside CI.
pub fn can_switch_users(test: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test} needs root (to act as uid {NOBODY}), and CI runs as root"
    );
    eprintln!("{test}: skipped, not root");
    false
}

pub fn c_path(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).expect("no NUL in test paths")
}

/// Forks a child that drops to uid/gid [`NOBODY`] (no supplementary groups) and exits with
/// what `body` returns. Returns the child's pid.
pub fn fork_as_nobody(body: impl FnOnce() -> i32) -> libc::pid_t {
    // SAFETY: the child only makes async-signal-safe calls (the caller's body promises the
    // same) and leaves with _exit.
    unsafe {
        let pid = libc::fork();
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(NOBODY) != 0
                || libc::setuid(NOBODY) != 0
            {
                libc::_exit(100);
            }
            let code = body();
            libc::_exit(code);
        }
        pid
    }
}

/// Waits for `pid`; its exit code (a signal: 128 + its number).
pub fn wait_exit(pid: libc::pid_t) -> i32 {
    let mut status = 0;
    // SAFETY: our own child; the pointer is valid.
    let reaped = unsafe { libc::waitpid(pid, &raw mut status, 0) };
    assert_eq!(reaped, pid, "waitpid: {}", std::io::Error::last_os_error());
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    }
}

/// Kills and reaps `pid`.
pub fn kill(pid: libc::pid_t) {
    // SAFETY: our own child, not reaped yet.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    wait_exit(pid);
}

/// As nobody: `stat` of `path` (0 when it succeeded, else its errno).
pub fn stat_errno(path: &CString) -> i32 {
    // SAFETY: a valid C string and a zeroed stat buffer on the stack.
    unsafe {
        let mut buffer: libc::stat = std::mem::zeroed();
        if libc::stat(path.as_ptr(), &raw mut buffer) == 0 {
            0
        } else {
            *libc::__errno_location()
        }
    }
}

/// As nobody: `open` of `path` with `flags` (0 when it succeeded, else its errno).
pub fn open_errno(path: &CString, flags: i32) -> i32 {
    // SAFETY: a valid C string.
    unsafe {
        let fd = libc::open(path.as_ptr(), flags | libc::O_NONBLOCK | libc::O_CLOEXEC);
        if fd >= 0 {
            libc::close(fd);
            0
        } else {
            *libc::__errno_location()
        }
    }
}
