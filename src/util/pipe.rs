//! Reading a pipe in large pieces: a Linux pipe holds 64 KiB by default, so a 200 MB archive
//! piped in (`docker save img | oci-store import -`) arrives in about 3,000 reads, each a
//! switch to the writer and back. Asking for a 1 MiB pipe buffer (`F_SETPIPE_SZ`, allowed up
//! to `/proc/sys/fs/pipe-max-size`, 1 MiB by default, for an unprivileged process) lets the
//! writer run ahead and each read take up to 1 MiB.

use std::os::fd::{AsRawFd, BorrowedFd};

/// The pipe buffer asked for.
pub const PIPE_BUFFER: i32 = 1 << 20;

/// Grows the buffer of `fd` to [`PIPE_BUFFER`] when it is a pipe; returns whether it did.
/// Anything else (a file, a terminal, a refused size) is left as it is: this only speeds up.
pub fn enlarge_pipe_buffer(fd: BorrowedFd<'_>) -> bool {
    // SAFETY: fcntl on a descriptor we borrow, with an integer argument; it neither takes
    // ownership nor touches memory.
    let result = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_BUFFER) };
    result >= PIPE_BUFFER
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn a_pipe_grows_and_a_file_is_left_alone() {
        let (reader, _writer) = std::io::pipe().unwrap();
        assert!(enlarge_pipe_buffer(reader.as_fd()));
        let file = tempfile::tempfile().unwrap();
        assert!(!enlarge_pipe_buffer(file.as_fd()));
    }
}
