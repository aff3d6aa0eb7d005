//! `oci-store`: parse the command line, run it, report errors as `oci-store: <error>` with a
//! next step where there is one. Exit status: 0 success, 1 failure, 2 usage.

use std::process::ExitCode;

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, so a write to a closed pipe (`oci-store list | head`) becomes an
    // error that every printer would have to treat as success. Like other command-line tools,
    // end quietly instead: the store is safe from being killed at any point.
    // SAFETY: setting a signal's disposition to its default before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    oci_store::cli_main(std::env::args_os())
}
