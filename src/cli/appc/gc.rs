//! `appc gc [--grace-period 24h] [--keep-per-name N] [--dry-run]`.

use std::process::ExitCode;

use clap::Args;

use crate::cli::duration::parse_duration;
use crate::cli::error::CliResult;
use crate::cli::output::{bytes_with_unit, unix_ms_as_rfc3339};
use crate::cli::{Context, RunCommand};
use crate::stores::appc::{AppcGcOptions, AppcStore};

/// Removes images not used (rendered, exported, looked up to run) or imported within the grace
/// period, least recently used first, with their remote records and rendered trees; never one
/// that a kept image depends on. The OCI flavour's blobs are never touched; an image whose
/// blob the OCI flavour also holds loses only its appc side.
#[derive(Debug, Args)]
pub struct GcCommand {
    /// Keep images used within this long (90s, 15m, 24h, 7d) [default: 24h, or
    /// gc.appc_grace_period in the config file, or $OCI_STORE_APPC_GRACE_PERIOD]
    #[arg(long, value_parser = parse_duration)]
    grace_period: Option<i64>,

    /// Keep at least the N most recently used images of each name
    #[arg(long, value_name = "N")]
    keep_per_name: Option<usize>,

    /// Only list what would go; change nothing
    #[arg(long)]
    dry_run: bool,
}

impl RunCommand for GcCommand {
    fn run(self, context: &Context) -> CliResult<ExitCode> {
        let store = context.open_existing_store()?;
        let report = AppcStore::new(&store).gc(&AppcGcOptions {
            grace_period_ms: self
                .grace_period
                .unwrap_or(context.settings().appc_grace_period_ms.value),
            keep_per_name: self.keep_per_name,
            dry_run: self.dry_run,
            now_ms: None,
        })?;
        for leftover in &report.leftovers_not_removed {
            // On stderr whatever the output format: it needs someone to look.
            eprintln!(
                "oci-store: warning: could not remove a dead render's directory {} ({}); \
                 remove it by hand (`chattr -i` or unmount what holds it first)",
                leftover.path.display(),
                leftover.error
            );
        }
        context.output().value(&report, |out| {
            let verb = if report.dry_run {
                "would remove"
            } else {
                "removed"
            };
            for image in &report.removed {
                let note = if image.deleted {
                    ""
                } else {
                    " (blob kept: another holder)"
                };
                writeln!(
                    out,
                    "{verb} {} {} {} last used {} ({}){note}",
                    image.id,
                    image.name,
                    image.version.as_deref().unwrap_or("-"),
                    unix_ms_as_rfc3339(image.last_used_ms),
                    bytes_with_unit(image.size)
                )?;
            }
            for id in &report.unfinished {
                writeln!(out, "{verb} unfinished import {id}")?;
            }
            writeln!(
                out,
                "appc: {} kept ({} as dependencies), {} {verb}, {} freed",
                report.kept,
                report.kept_as_dependency.len(),
                report.removed.len(),
                bytes_with_unit(report.freed_bytes)
            )
        })?;
        Ok(ExitCode::SUCCESS)
    }
}
