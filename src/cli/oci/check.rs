//! `oci-store check REF [--verify]`.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;

use crate::cli::error::CliResult;
use crate::cli::output::bytes_with_unit;
use crate::cli::{Context, RunCommand};
use crate::stores::oci::{CheckReport, OciStore};

/// Checks that every blob a ref reaches is in the store; with --verify, also rehashes each.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 when the ref is complete (absent non-distributable layers are \
                  allowed); 3 when blobs are missing or corrupt; 1 when the check failed (no \
                  such ref, for one); 2 for a malformed argument."
)]
pub struct CheckCommand {
    /// A ref, or the digest (or unique prefix) of a stored manifest or index
    #[arg(value_name = "REF|DIGEST")]
    reference: String,

    /// Rehash every blob, not only manifests and indexes
    #[arg(long)]
    verify: bool,
}

impl RunCommand for CheckCommand {
    fn run(self, context: &Context) -> CliResult<ExitCode> {
        let store = context.open_existing_store()?;
        let report = OciStore::new(&store).check(&self.reference, self.verify)?;
        context
            .output()
            .value(&report, |out| print_check_report(out, &report))?;
        if report.is_complete() {
            Ok(ExitCode::SUCCESS)
        } else {
            Ok(ExitCode::from(crate::cli::EXIT_INCOMPLETE))
        }
    }
}

fn print_check_report(out: &mut dyn Write, report: &CheckReport) -> std::io::Result<()> {
    for missing in &report.missing {
        writeln!(out, "missing: {} ({})", missing.digest, missing.media_type)?;
    }
    for (digest, reason) in &report.corrupt {
        writeln!(out, "corrupt: {digest}: {reason}")?;
    }
    for absent in &report.absent_optional {
        writeln!(
            out,
            "absent, allowed: {} ({})",
            absent.digest, absent.media_type
        )?;
    }
    let checked = if report.verified {
        "present and verified"
    } else {
        "present"
    };
    write!(
        out,
        "{} {}: {} blobs {checked} ({})",
        report.name,
        report.digest,
        report.blobs_present,
        bytes_with_unit(report.bytes_present)
    )?;
    if report.is_complete() {
        writeln!(out, ", complete")
    } else {
        writeln!(
            out,
            ", INCOMPLETE: {} missing, {} corrupt",
            report.missing.len(),
            report.corrupt.len()
        )
    }
}
