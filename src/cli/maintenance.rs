//! `oci-store fsck` and `stats`, and the base GC's report: keeping a store tidy and knowing
//! what is in it. (`gc` itself is the OCI flavour's, in `oci/gc.rs`.)

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use super::error::CliResult;
use super::output::bytes_with_unit;
use super::{Context, RunCommand};
use crate::store::{FsckProblem, FsckReport, GcReport, StoreStats};

/// The base GC's report as text; `gc` prints it after the OCI part.
pub fn print_gc_report(out: &mut dyn Write, report: &GcReport) -> std::io::Result<()> {
    for digest in &report.unindexed_blobs {
        writeln!(out, "removed unindexed content {digest}")?;
    }
    for digest in &report.unheld_blobs {
        writeln!(out, "removed {digest}: nothing held it any more")?;
    }
    for digest in &report.orphan_extra_data {
        writeln!(out, "removed orphaned extra data of {digest}")?;
    }
    for digest in &report.dangling_references {
        writeln!(
            out,
            "removed key/value entries referencing missing {digest}"
        )?;
    }
    writeln!(
        out,
        "unindexed blobs: {} ({})",
        report.unindexed_blobs.len(),
        bytes_with_unit(report.unindexed_bytes)
    )?;
    writeln!(
        out,
        "unheld blobs: {} ({})",
        report.unheld_blobs.len(),
        bytes_with_unit(report.unheld_bytes)
    )?;
    writeln!(
        out,
        "dead writes: {} ({})",
        report.dead_ingests,
        bytes_with_unit(report.dead_ingest_bytes)
    )?;
    writeln!(
        out,
        "orphaned extra data: {}, dangling references: {}",
        report.orphan_extra_data.len(),
        report.dangling_references.len()
    )?;
    writeln!(out, "freed {}", bytes_with_unit(report.freed_bytes()))
}

/// Rehashes every blob and cross-checks content, index, extra data and key/value references.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 when the store is clean or every problem found was repaired; \
                  1 when problems remain (run again with --repair) or the check failed."
)]
pub struct FsckCommand {
    /// Delete blobs whose content is missing or corrupt (with their extra data and entries)
    /// and blobs nothing holds, and remove unindexed content and orphaned data
    #[arg(long)]
    repair: bool,
}

impl RunCommand for FsckCommand {
    fn run(self, context: &Context) -> CliResult<ExitCode> {
        let progress = context.progress();
        let report = context
            .open_existing_store()?
            .fsck(crate::store::FsckOptions {
                repair: self.repair,
                progress: &*progress,
            })?;
        context
            .output()
            .value(&report, |out| print_fsck_report(out, &report))?;
        // `repaired` also counts what a concurrent change left to the repair's GC pass, so it
        // can exceed the problems listed.
        if report.repaired >= report.problems.len() as u64 {
            Ok(ExitCode::SUCCESS)
        } else {
            Ok(ExitCode::FAILURE)
        }
    }
}

fn print_fsck_report(out: &mut dyn Write, report: &FsckReport) -> std::io::Result<()> {
    for problem in &report.problems {
        writeln!(out, "{}", describe_problem(problem))?;
    }
    write!(
        out,
        "checked {} blobs ({}): ",
        report.blobs_checked,
        bytes_with_unit(report.bytes_checked)
    )?;
    if report.is_clean() {
        writeln!(out, "no problems")
    } else {
        writeln!(
            out,
            "{}, {} repaired",
            crate::cli::oci::plural(report.problems.len() as u64, "problem", "problems"),
            report.repaired
        )
    }
}

fn describe_problem(problem: &FsckProblem) -> String {
    match problem {
        FsckProblem::MissingContent { digest } => format!("missing content: {digest}"),
        FsckProblem::CorruptContent { digest, actual } => {
            format!("corrupt content: {digest} hashes to {actual}")
        }
        FsckProblem::SizeMismatch {
            digest,
            indexed,
            actual,
        } => format!("size mismatch: {digest} is indexed as {indexed} bytes, content has {actual}"),
        FsckProblem::UnindexedContent { digest } => format!("unindexed content: {digest}"),
        FsckProblem::OrphanExtraData { digest } => {
            format!("orphaned extra data: {digest} is not in the index")
        }
        FsckProblem::DanglingReference { digest } => {
            format!("dangling reference: key/value entries reference missing {digest}")
        }
        FsckProblem::UnheldBlob { digest } => {
            format!("unheld blob: no owner mark or key/value entry holds {digest} (garbage)")
        }
    }
}

/// Counts blobs, bytes and key/value entries, and names the backends.
#[derive(Debug, Args)]
pub struct StatsCommand {}

/// `stats` in JSON: the store directory and its statistics.
#[derive(Debug, Serialize)]
struct StatsJson<'a> {
    store: &'a Path,
    #[serde(flatten)]
    stats: &'a StoreStats,
}

impl RunCommand for StatsCommand {
    fn run(self, context: &Context) -> CliResult<ExitCode> {
        // Without a store: the counts of an empty one, with the backends a new store would
        // get; nothing is created (a mistyped --store must not leave a store behind).
        let stats = context.open_existing_store()?.stats()?;
        let json = StatsJson {
            store: context.store_dir(),
            stats: &stats,
        };
        context.output().value(&json, |out| {
            writeln!(out, "store:    {}", context.store_dir().display())?;
            let backends: Vec<String> = stats
                .backends
                .iter()
                .map(|(role, name)| format!("{role}={name}"))
                .collect();
            writeln!(out, "backends: {}", backends.join(" "))?;
            writeln!(out, "blobs:    {}", stats.blobs)?;
            writeln!(out, "bytes:    {}", bytes_with_unit(stats.bytes))?;
            if stats.data_entries.is_empty() {
                return writeln!(out, "data entries: none");
            }
            writeln!(out, "data entries:")?;
            for (data_type, count) in &stats.data_entries {
                writeln!(out, "  {data_type}: {count}")?;
            }
            Ok(())
        })?;
        Ok(ExitCode::SUCCESS)
    }
}
