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
    grow_descriptor_table();
    oci_store::cli_main(std::env::args_os())
}

/// Grows the process's table of file descriptors to 1,024 slots while it has one thread. A GC
/// holds up to 256 digest stripe locks at once, each an open file, and the kernel grows the
/// table as descriptors are needed; once a process has threads, every growth waits for an RCU
/// grace period (`expand_fdtable`), which took 10-20 ms each on the bench machine, several
/// times per GC. Here it costs one `fcntl`. A failure (a lower descriptor limit) only leaves
/// the growth for later.
fn grow_descriptor_table() {
    let Ok(null) = std::fs::File::open("/dev/null") else {
        return;
    };
    // The lowest free descriptor at or above 1,023: the table is grown to hold it, then it
    // is closed again (dropped).
    let _grown = rustix::io::fcntl_dupfd_cloexec(&null, 1023);
}
