//! `oci-store unpack REF DIR [--platform os/arch[/variant]] [--rootless]`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::cli::error::{CliError, CliResult};
use crate::cli::output::bytes_with_unit;
use crate::cli::{Context, RunCommand};
use crate::stores::oci::{OciStore, Platform, UnpackOptions};

/// Renders an image's root file system into a new directory: layers applied in order with
/// whiteouts, each verified against its digest as it streams (like `umoci unpack`, but DIR is
/// the root file system itself, with no runtime bundle around it).
#[derive(Debug, Args)]
pub struct UnpackCommand {
    /// The ref to unpack
    #[arg(value_name = "REF")]
    reference: String,

    /// Directory to create (it must not exist, or be empty)
    dir: PathBuf,

    /// The image to take from an index [default: this machine's platform]
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,

    /// Render as an unprivileged user would even when run as root: every file owned by the
    /// caller, device nodes skipped (without it, owners and device nodes are kept only when
    /// running as root)
    #[arg(long)]
    rootless: bool,
}

impl RunCommand for UnpackCommand {
    fn run(self, context: &Context) -> CliResult<ExitCode> {
        let options = UnpackOptions {
            platform: self
                .platform
                .as_deref()
                .map(Platform::parse)
                .transpose()
                .map_err(CliError::usage)?,
            rootless: self.rootless,
        };
        let store = context.open_existing_store()?;
        let progress = context.progress();
        let report = OciStore::new(&store).with_progress(&*progress).unpack(
            &self.reference,
            &self.dir,
            &options,
        )?;
        context.output().value(&report, |out| {
            let applied = &report.applied;
            let platform = report
                .platform
                .as_deref()
                .map(|p| format!(", {p}"))
                .unwrap_or_default();
            writeln!(
                out,
                "unpacked {} ({}{platform}) to {}",
                report.name,
                report.manifest,
                report.target.display()
            )?;
            writeln!(
                out,
                "layers: {}, entries: {}, files: {} ({}), whiteouts: {}",
                report.layers.len(),
                applied.entries,
                applied.files,
                bytes_with_unit(applied.bytes),
                applied.whiteouts + applied.opaque_directories
            )?;
            if applied.devices_skipped > 0 {
                writeln!(
                    out,
                    "warning: {} device nodes skipped (creating them needs root)",
                    applied.devices_skipped
                )?;
            }
            Ok(())
        })?;
        Ok(ExitCode::SUCCESS)
    }
}
