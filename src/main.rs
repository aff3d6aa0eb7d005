//! `oci-store`: parse the command line, run it, report errors as `oci-store: <error>` with a
//! next step where there is one. Exit status: 0 success, 1 failure, 2 usage.

use std::process::ExitCode;

fn main() -> ExitCode {
    oci_store::cli::main_with(std::env::args_os())
}
