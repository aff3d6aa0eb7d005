//! `oci-store gc [--dry-run]`: the OCI GC, then the base GC.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde::Serialize;

use crate::cli::error::CliResult;
use crate::cli::maintenance::print_gc_report;
use crate::cli::output::bytes_with_unit;
use crate::cli::{Context, RunCommand};
use crate::store::GcReport;
use crate::stores::oci::{OciGcReport, OciStore, SweptBlob};

/// Removes the images no ref, live lease or live referrer reaches (every blob the OCI flavour
/// owns, whatever its media type; blobs something else also holds, a `blob put` or another
/// flavour or a key/value entry, keep their content), removes expired leases, then runs the
/// base GC: blobs nothing holds, content no index record vouches for, staged writes of dead
/// writers, orphaned extra data and dangling key/value entries. Stops, sweeping nothing, if a
/// document an image needs cannot be read.
#[derive(Debug, Args)]
pub struct GcCommand {
    /// Only list what would go and the bytes it would free; change nothing
    #[arg(long)]
    dry_run: bool,

    /// Seconds to wait for running imports, exports, tags and lease creations to finish
    /// before giving up (new ones queue behind the waiting GC) [default: 60, or gc.lock_wait
    /// in the config file, or $OCI_STORE_GC_LOCK_WAIT]
    #[arg(long, value_name = "SECONDS")]
    lock_wait: Option<u64>,
}

/// `gc` in JSON: the OCI part, the base report's fields as they were before the OCI flavour
/// existed (absent in a dry run), and the bytes freed by both.
#[derive(Debug, Serialize)]
struct GcJson<'a> {
    dry_run: bool,
    marked: u64,
    swept: &'a [SweptBlob],
    oci_freed_bytes: u64,
    expired_leases: &'a [String],
    referrer_entries_removed: u64,
    stale_operations: &'a [crate::store::StaleOperation],
    #[serde(flatten)]
    base: Option<&'a GcReport>,
    /// In a dry run: the dead writes the base GC would remove.
    #[serde(skip_serializing_if = "Option::is_none")]
    dead_ingests: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dead_ingest_bytes: Option<u64>,
    freed_bytes: u64,
}

impl RunCommand for GcCommand {
    fn run(self, context: &Context) -> CliResult<ExitCode> {
        let store = context.open_existing_store()?;
        let progress = context.progress();
        let report = OciStore::new(&store)
            .with_progress(&*progress)
            .with_gc_lock_wait(self.lock_wait.map_or_else(
                || Duration::from_millis(context.settings().gc_lock_wait_ms.value.max(0) as u64),
                Duration::from_secs,
            ))
            .gc(self.dry_run)?;
        // A dry run counts what the base GC's removal of dead writes would free too (a killed
        // pull's staged layers), so it says what a real gc frees.
        let dead_writes = match report.base {
            None => store.dead_ingest_usage()?,
            Some(_) => None,
        };
        let base_freed = report.base.as_ref().map_or(0, GcReport::freed_bytes)
            + dead_writes.map_or(0, |(_, bytes)| bytes);
        let json = GcJson {
            dry_run: report.dry_run,
            marked: report.marked,
            swept: &report.swept,
            oci_freed_bytes: report.freed_bytes,
            expired_leases: &report.expired_leases,
            referrer_entries_removed: report.referrer_entries_removed,
            stale_operations: &report.stale_operations,
            base: report.base.as_ref(),
            dead_ingests: dead_writes.map(|(writes, _)| writes),
            dead_ingest_bytes: dead_writes.map(|(_, bytes)| bytes),
            freed_bytes: report.flavour_freed_bytes() + base_freed,
        };
        context
            .output()
            .value(&json, |out| print_oci_gc_report(out, &report, dead_writes))?;
        Ok(ExitCode::SUCCESS)
    }
}

fn print_oci_gc_report(
    out: &mut dyn Write,
    report: &OciGcReport,
    dead_writes: Option<(u64, u64)>,
) -> std::io::Result<()> {
    let (remove, drop_mark, removed) = if report.dry_run {
        ("would remove", "would drop", "would go")
    } else {
        ("removed", "dropped", "removed")
    };
    for blob in &report.swept {
        if blob.deleted {
            writeln!(
                out,
                "{remove} {} {} ({})",
                blob.digest,
                blob.media_type,
                bytes_with_unit(blob.size)
            )?;
        } else {
            writeln!(
                out,
                "{drop_mark} the oci mark of {} (kept: a blob put, another flavour or an entry holds it)",
                blob.digest
            )?;
        }
    }
    for lease in &report.expired_leases {
        writeln!(out, "{remove} expired lease {lease}")?;
    }
    for stale in &report.stale_operations {
        let (finished, frees) = if report.dry_run {
            ("would finish", "would free")
        } else {
            ("finished", "freed")
        };
        writeln!(
            out,
            "{finished} {} (process {} died): it held {}, {frees} {} ({})",
            stale.holder,
            stale.pid,
            plural(stale.held_blobs, "blob", "blobs"),
            plural(stale.freed_blobs, "blob", "blobs"),
            bytes_with_unit(stale.freed_bytes)
        )?;
    }
    let deleted = report.swept.iter().filter(|blob| blob.deleted).count();
    writeln!(
        out,
        "oci: {} blobs reachable, {deleted} {removed}, {} freed",
        report.marked,
        bytes_with_unit(report.freed_bytes)
    )?;
    match &report.base {
        Some(base) => {
            print_gc_report(out, base)?;
            writeln!(
                out,
                "total freed {}",
                bytes_with_unit(report.flavour_freed_bytes() + base.freed_bytes())
            )
        }
        None => {
            if let Some((writes, bytes)) = dead_writes {
                writeln!(
                    out,
                    "dead writes: {} would go ({})",
                    writes,
                    bytes_with_unit(bytes)
                )?;
            }
            writeln!(
                out,
                "dry run: nothing was changed; gc would free {} (and content without a \
                 record, if the base gc finds any)",
                bytes_with_unit(
                    report.flavour_freed_bytes() + dead_writes.map_or(0, |(_, bytes)| bytes)
                )
            )
        }
    }
}

/// `1 blob`, `2 blobs`.
pub fn plural(count: u64, one: &str, many: &str) -> String {
    if count == 1 {
        format!("{count} {one}")
    } else {
        format!("{count} {many}")
    }
}
