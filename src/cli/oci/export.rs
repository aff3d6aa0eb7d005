//! `oci-store export --sref REF [--dref REF] [--archive] PATH`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::cli::error::{CliError, CliResult};
use crate::cli::output::bytes_with_unit;
use crate::cli::{Context, RunCommand};
use crate::stores::oci::OciStore;

/// Writes a ref with every blob it reaches as an OCI image layout (v1.0). An existing layout
/// directory is added to: its other refs are kept, one of the same name is replaced.
#[derive(Debug, Args)]
pub struct ExportCommand {
    /// The stored ref to export
    #[arg(long, value_name = "REF")]
    sref: String,

    /// Name the ref gets in the layout [default: the stored name]
    #[arg(long, value_name = "REF")]
    dref: Option<String>,

    /// Write an oci-archive tar file instead of a directory (an existing file is replaced)
    #[arg(long)]
    archive: bool,

    /// Layout directory (created if absent) or, with --archive, the tar file
    path: PathBuf,
}

impl RunCommand for ExportCommand {
    fn run(self, context: &Context) -> CliResult<ExitCode> {
        // A file where a layout directory is to be written: say what to do, before anything
        // is opened (an archive replaces a file, a layout is a directory).
        if !self.archive && self.path.symlink_metadata().is_ok_and(|m| !m.is_dir()) {
            return Err(CliError::Argument {
                argument: "PATH",
                message: format!(
                    "{} is a file, not a layout directory: give --archive to write an \
                     oci-archive there, or name a directory (created if absent)",
                    self.path.display()
                ),
            });
        }
        if let Some(dref) = &self.dref {
            crate::stores::oci::RefName::parse(dref).map_err(CliError::usage)?;
        }
        let store = context.open_existing_store()?;
        let progress = context.progress();
        let report = OciStore::new(&store).with_progress(&*progress).export(
            &self.sref,
            self.dref.as_deref(),
            &self.path,
            self.archive,
        )?;
        context.output().value(&report, |out| {
            writeln!(
                out,
                "exported {} as {} {} to {}",
                self.sref,
                report.name,
                report.digest,
                self.path.display()
            )?;
            writeln!(
                out,
                "blobs: {} ({}), written: {}",
                report.blobs,
                bytes_with_unit(report.bytes),
                report.blobs_written
            )
        })?;
        Ok(ExitCode::SUCCESS)
    }
}
