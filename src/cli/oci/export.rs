//! `oci-store export --sref REF [--dref REF] [--archive] [--format oci|docker-archive] PATH|-`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use crate::cli::error::{CliError, CliResult};
use crate::cli::output::bytes_with_unit;
use crate::cli::{Context, RunCommand};
use crate::stores::oci::{ExportFormat, ExportReport, ExportTarget, OciStore};

/// What `export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// An OCI image layout: a directory, or with --archive an oci-archive tar
    Oci,
    /// A tar that `docker load` and `podman load` read: the OCI layout plus Docker's
    /// manifest.json, as Docker 25's `docker save` writes (implies --archive)
    DockerArchive,
}

/// Writes a ref with every blob it reaches as an OCI image layout (v1.0), an oci-archive or a
/// docker-archive; every blob is verified as it is copied. An existing layout directory is
/// added to: its other refs are kept, one of the same name is replaced. An archive goes to a
/// file (replaced whole, only once complete) or with `-` to standard output (the summary then
/// goes to standard error).
#[derive(Debug, Args)]
pub struct ExportCommand {
    /// The stored ref to export
    #[arg(long, value_name = "REF")]
    sref: String,

    /// Name the ref gets in the layout [default: the stored name]
    #[arg(long, value_name = "REF")]
    dref: Option<String>,

    /// Write an archive (tar) instead of a directory (an existing file is replaced)
    #[arg(long)]
    archive: bool,

    /// What to write
    #[arg(long, value_enum, default_value = "oci")]
    format: FormatArg,

    /// Layout directory (created if absent) or, for an archive, the tar file or `-` for
    /// standard output
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
        let format = match self.format {
            FormatArg::Oci => ExportFormat::Oci,
            FormatArg::DockerArchive => ExportFormat::DockerArchive,
        };
        let archive = self.archive || format == ExportFormat::DockerArchive;
        let to_stdout = archive && self.path.as_os_str() == "-";
        let oci = OciStore::new(&store).with_progress(&*progress);
        let stdout_name = Path::new("<standard output>");
        let report = if to_stdout {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            let target = ExportTarget::ArchiveStream {
                out: &mut out,
                name: stdout_name,
            };
            oci.export_to(&self.sref, self.dref.as_deref(), target, format)?
        } else {
            let target = match archive {
                true => ExportTarget::ArchiveFile(&self.path),
                false => ExportTarget::Directory(&self.path),
            };
            oci.export_to(&self.sref, self.dref.as_deref(), target, format)?
        };
        drop(progress);
        let destination = match to_stdout {
            true => stdout_name.display().to_string(),
            false => self.path.display().to_string(),
        };
        let human = |out: &mut dyn Write| {
            writeln!(
                out,
                "exported {} as {} {} to {destination}",
                self.sref, report.name, report.digest,
            )?;
            writeln!(
                out,
                "blobs: {} ({}), written: {}",
                report.blobs,
                bytes_with_unit(report.bytes),
                report.blobs_written
            )
        };
        if to_stdout {
            // Standard output carries the archive: the summary goes to standard error.
            if !context.is_quiet() {
                summary_to_stderr(context, &report, human)?;
            }
        } else {
            context.output().value(&report, human)?;
        }
        Ok(ExitCode::SUCCESS)
    }
}

fn summary_to_stderr(
    context: &Context,
    report: &ExportReport,
    human: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> CliResult<()> {
    let stderr = std::io::stderr();
    let mut err = stderr.lock();
    let written = match context.output().is_json() {
        true => serde_json::to_writer_pretty(&mut err, report)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(err)),
        false => human(&mut err),
    };
    // Standard error gone is no reason to fail an export that succeeded.
    let _ = written;
    Ok(())
}
