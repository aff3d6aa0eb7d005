//! `oci-store import [--sref REF] [--dref REF] [--all] PATH|-`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::cli::error::{CliError, CliResult};
use crate::cli::output::bytes_with_unit;
use crate::cli::{Context, RunCommand};
use crate::stores::oci::{ImportOptions, OciStore};

/// Imports an OCI image layout directory, an oci-archive tar of one, a pre-1.0 layout
/// (`refs/<name>`), or a Docker archive (`docker save`, Docker 25 or older, `podman save`,
/// skopeo's docker-archive), archives plain, gzip or zstd, from a file or with `-` from
/// standard input. Every blob is verified as it streams in; an archive is read once, never
/// extracted. A Docker archive's images are imported under their `RepoTags`, normalised
/// (`busybox:1` becomes `docker.io/library/busybox:1`). All or nothing: on failure no ref is
/// written and nothing stays stored.
#[derive(Debug, Args)]
pub struct ImportCommand {
    /// Import only the layout's ref of this name (`org.opencontainers.image.ref.name`)
    #[arg(long, value_name = "REF")]
    sref: Option<String>,

    /// Store the imported ref under this name instead of its name in the layout
    #[arg(long, value_name = "REF")]
    dref: Option<String>,

    /// Import every named ref of the layout under its own name
    #[arg(long, conflicts_with_all = ["sref", "dref"])]
    all: bool,

    /// Refuse an archive with more tar entries than this
    #[arg(long, value_name = "N", default_value_t = ImportOptions::default().max_archive_entries)]
    max_archive_entries: u64,

    /// Refuse an archive whose members declare more bytes than this
    #[arg(long, value_name = "BYTES", default_value_t = ImportOptions::default().max_archive_bytes)]
    max_archive_bytes: u64,

    /// Layout directory, archive file, or `-` for an archive on standard input
    path: PathBuf,
}

impl RunCommand for ImportCommand {
    fn run(self, context: &Context) -> CliResult<ExitCode> {
        if let Some(dref) = &self.dref {
            crate::stores::oci::RefName::parse(dref).map_err(CliError::usage)?;
        }
        // The path the user named may be a symbolic link (to an archive or a layout): it is
        // followed here, once; links inside a layout or archive are still never followed.
        let path = match self.path.symlink_metadata() {
            Ok(metadata) if metadata.file_type().is_symlink() => std::fs::canonicalize(&self.path)
                .map_err(|source| CliError::Input {
                    context: "following the symbolic link",
                    path: self.path.clone(),
                    source,
                })?,
            _ => self.path.clone(),
        };
        let store = context.open_store()?;
        let options = ImportOptions {
            sref: self.sref,
            dref: self.dref,
            all: self.all,
            max_archive_entries: self.max_archive_entries,
            max_archive_bytes: self.max_archive_bytes,
        };
        let progress = context.progress();
        let oci = OciStore::new(&store).with_progress(&*progress);
        let report = match self.path.as_os_str() == "-" {
            true => {
                let stdin = std::io::stdin();
                crate::util::pipe::enlarge_pipe_buffer(std::os::fd::AsFd::as_fd(&stdin));
                oci.import_archive_stream(stdin.lock(), &options)?
            }
            false => oci.import_layout(&path, &options)?,
        };
        drop(progress);
        context.output().value(&report, |out| {
            for imported in &report.refs {
                writeln!(out, "imported {} {}", imported.name, imported.digest)?;
            }
            if report.referrers > 0 {
                writeln!(out, "with {} referrers from the layout", report.referrers)?;
            }
            writeln!(
                out,
                "blobs written: {} ({}), already stored: {}",
                report.blobs_written,
                bytes_with_unit(report.bytes_written),
                report.blobs_skipped
            )
        })?;
        Ok(ExitCode::SUCCESS)
    }
}
