//! `oci-store`: parse the command line, run it, report errors as `oci-store: <error>`.

use std::process::ExitCode;

use clap::Parser;
use oci_store::cli::{run, Cli};

fn main() -> ExitCode {
    // Usage errors exit with clap's status 2; everything else that fails exits with 1.
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        // The reader of our output stopped reading: that is its choice, not our failure.
        Err(error) if error.is_broken_pipe() => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("oci-store: {}", error.report());
            ExitCode::FAILURE
        }
    }
}
