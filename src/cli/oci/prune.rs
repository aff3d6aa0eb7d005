//! `oci-store prune [POLICIES] [--dry-run]`, `pin REF...` and `unpin REF...`: retention by
//! policy (`store::retention`), through the OCI flavour's GC.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde::Serialize;

use crate::cli::duration::format_duration;
use crate::cli::error::{CliError, CliResult};
use crate::cli::output::bytes_with_unit;
use crate::cli::prune_policy::PolicyText;
use crate::cli::{Context, RunCommand};
use crate::store::retention::{Plan, Reason, RetentionPolicy};
use crate::stores::oci::{OciPruneReport, OciStore, PruneOptions};

/// Removes refs by retention policy, least recently used first, then collects what they alone
/// reached (shared layers stay with the refs that remain). Pinned refs, refs used within
/// `prune.last_used_interval`, leases and running imports, pulls and pushes are never touched.
/// The policies come from these flags, or, when none is given, from `[prune]` in the config
/// file. With a size goal (--max-size, --min-free, watermarks) refs go only until it is met;
/// without one, every ref the other policies allow goes.
#[derive(Debug, Args)]
pub struct PruneCommand {
    /// Only refs unused for longer than this may go (30s, 15m, 24h, 7d)
    #[arg(long, value_name = "DURATION")]
    until: Option<String>,

    /// Keep the N most recently used refs of each repository
    #[arg(long, value_name = "N")]
    keep_last: Option<String>,

    /// Remove refs until the store's blobs take at most SIZE (500MB, 20GiB, bytes)
    #[arg(long, value_name = "SIZE")]
    max_size: Option<String>,

    /// Remove refs until the file system has SIZE or PERCENT free (20GiB, 10%)
    #[arg(long, value_name = "SIZE|PERCENT")]
    min_free: Option<String>,

    /// Start when more than PERCENT of the file system is used...
    #[arg(long, value_name = "PERCENT")]
    high_watermark: Option<String>,

    /// ...and stop once PERCENT or less is [default: 5 points under the high watermark]
    #[arg(long, value_name = "PERCENT", requires = "high_watermark")]
    low_watermark: Option<String>,

    /// Only refs matching PATTERN may go (`*` matches anything; repeat for several)
    #[arg(long, value_name = "PATTERN")]
    filter: Vec<String>,

    /// Print the plan (each ref that would go, why, and the bytes it would free); change
    /// nothing
    #[arg(long)]
    dry_run: bool,

    /// Seconds to wait for running imports, tags and lease creations before giving up
    /// [default: gc.lock_wait]
    #[arg(long, value_name = "SECONDS")]
    lock_wait: Option<u64>,
}

impl PruneCommand {
    /// The flags' policy, or the config file's when no policy flag is given.
    fn policy(&self, context: &Context) -> CliResult<RetentionPolicy> {
        let flags = [
            ("until", "--until", &self.until),
            ("keep_last", "--keep-last", &self.keep_last),
            ("max_size", "--max-size", &self.max_size),
            ("min_free", "--min-free", &self.min_free),
            ("high_watermark", "--high-watermark", &self.high_watermark),
            ("low_watermark", "--low-watermark", &self.low_watermark),
        ];
        let mut text = PolicyText::default();
        for (key, flag, value) in flags {
            if let Some(value) = value {
                text.set(key, value).map_err(|message| CliError::Argument {
                    argument: flag,
                    message,
                })?;
            }
        }
        let mut policy = if text.is_empty() {
            context.settings().prune_policy()?
        } else {
            let mut policy = text.build().map_err(|message| CliError::Argument {
                argument: "--low-watermark",
                message,
            })?;
            policy.recent = context.settings().prune_policy()?.recent;
            policy
        };
        if !self.filter.is_empty() {
            policy.filters.clone_from(&self.filter);
        }
        if !policy.removes_anything() {
            return Err(CliError::Argument {
                argument: "prune",
                message: "no policy: give --until, --keep-last, --max-size, --min-free or \
                          --high-watermark, or set them under [prune] in the config file \
                          (see `oci-store config show`)"
                    .to_string(),
            });
        }
        Ok(policy)
    }
}

impl RunCommand for PruneCommand {
    fn run(self, context: &Context) -> CliResult<ExitCode> {
        let policy = self.policy(context)?;
        let store = context.open_existing_store()?;
        let progress = context.progress();
        let report = OciStore::new(&store)
            .with_progress(&*progress)
            .with_gc_lock_wait(self.lock_wait.map_or_else(
                || Duration::from_millis(context.settings().gc_lock_wait_ms.value.unsigned_abs()),
                Duration::from_secs,
            ))
            .prune(&PruneOptions {
                policy,
                dry_run: self.dry_run,
                ..PruneOptions::default()
            })?;
        context
            .output()
            .value(&PruneJson::of(&report), |out| print_report(out, &report))?;
        Ok(ExitCode::SUCCESS)
    }
}

/// `prune --json`: the report, with the bytes freed (estimated in a dry run) on top.
#[derive(Serialize)]
struct PruneJson<'a> {
    #[serde(flatten)]
    report: &'a OciPruneReport,
    freed_bytes: u64,
}

impl<'a> PruneJson<'a> {
    fn of(report: &'a OciPruneReport) -> Self {
        PruneJson {
            report,
            freed_bytes: report.freed_bytes(),
        }
    }
}

fn print_report(out: &mut dyn Write, report: &OciPruneReport) -> std::io::Result<()> {
    let plan = &report.plan;
    let verb = if report.dry_run {
        "would remove"
    } else {
        "removing"
    };
    for victim in &plan.victims {
        let reasons: Vec<String> = victim.reasons.iter().map(describe).collect();
        writeln!(
            out,
            "{verb} {}: last used {}, frees {}{}; {}",
            victim.name,
            ago(plan.now_ms - victim.last_used_ms),
            bytes_with_unit(victim.frees_bytes),
            if victim.shared_bytes > 0 {
                format!(" ({} shared stays)", bytes_with_unit(victim.shared_bytes))
            } else {
                String::new()
            },
            reasons.join(", ")
        )?;
    }
    for spared in &report.spared {
        writeln!(out, "spared {}: {}", spared.name, spared.why)?;
    }
    print_kept(out, plan)?;
    if report.dry_run {
        writeln!(
            out,
            "would remove {} refs, freeing {}",
            plan.victims.len(),
            bytes_with_unit(plan.freed_bytes)
        )?;
    } else {
        writeln!(
            out,
            "removed {} refs, freed {}",
            report.removed.len(),
            bytes_with_unit(report.freed_bytes())
        )?;
    }
    if !plan.goal_met {
        writeln!(
            out,
            "the size goal is not met: {} asked, {} can go (the rest is pinned, recent or kept)",
            bytes_with_unit(plan.needed_bytes.unwrap_or(0)),
            bytes_with_unit(plan.freed_bytes)
        )?;
    }
    Ok(())
}

/// One line on what stayed and why, when something did.
fn print_kept(out: &mut dyn Write, plan: &Plan) -> std::io::Result<()> {
    let kept = &plan.protected;
    let parts: Vec<String> = [
        (kept.pinned, "pinned"),
        (kept.filtered_out, "not matching --filter"),
        (kept.recently_used, "used within prune.last_used_interval"),
        (kept.kept_last, "among the most recent of their repository"),
        (kept.used_within_until, "used within --until"),
        (kept.goal_met_before, "not needed for the size goal"),
    ]
    .into_iter()
    .filter(|(count, _)| *count > 0)
    .map(|(count, why)| format!("{count} {why}"))
    .collect();
    if parts.is_empty() {
        return Ok(());
    }
    writeln!(out, "kept: {}", parts.join(", "))
}

fn describe(reason: &Reason) -> String {
    match reason {
        Reason::Until {
            unused_ms,
            until_ms,
        } => format!(
            "unused for {} (--until {})",
            ago_span(*unused_ms),
            format_duration(*until_ms)
        ),
        Reason::KeepLast { keep, repository } => {
            format!("older than the {keep} most recently used of {repository}")
        }
        Reason::MaxSize { max_bytes } => {
            format!(
                "the store is over --max-size {}",
                bytes_with_unit(*max_bytes)
            )
        }
        Reason::MinFree { min_free_bytes } => format!(
            "the file system has less than --min-free {} free",
            bytes_with_unit(*min_free_bytes)
        ),
        Reason::Watermark {
            high_percent,
            low_percent,
        } => format!("the file system is over {high_percent}% used (down to {low_percent}%)"),
    }
}

fn ago(millis: i64) -> String {
    format!("{} ago", ago_span(millis))
}

fn ago_span(millis: i64) -> String {
    let seconds = (millis / 1000).max(0);
    match seconds {
        0..=59 => format!("{seconds}s"),
        60..=3_599 => format!("{}m", seconds / 60),
        3_600..=86_399 => format!("{}h", seconds / 3_600),
        _ => format!("{}d", seconds / 86_400),
    }
}

/// Pins refs: no prune removes them (an explicit `rm` still does, and forgets the pin).
#[derive(Debug, Args)]
pub struct PinCommand {
    /// Refs to pin
    #[arg(value_name = "REF", required = true)]
    names: Vec<String>,
}

/// Unpins refs: prunes may remove them again.
#[derive(Debug, Args)]
pub struct UnpinCommand {
    /// Refs to unpin
    #[arg(value_name = "REF", required = true)]
    names: Vec<String>,
}

#[derive(Serialize)]
struct PinsJson<'a> {
    pinned: &'a [String],
}

impl RunCommand for PinCommand {
    fn run(self, context: &Context) -> CliResult<ExitCode> {
        let store = context.open_existing_store()?;
        let oci = OciStore::new(&store);
        for name in &self.names {
            oci.pin(name)?;
        }
        let pinned = oci.pinned()?;
        context
            .output()
            .value(&PinsJson { pinned: &pinned }, |out| {
                self.names
                    .iter()
                    .try_for_each(|name| writeln!(out, "pinned {name}"))
            })?;
        Ok(ExitCode::SUCCESS)
    }
}

impl RunCommand for UnpinCommand {
    fn run(self, context: &Context) -> CliResult<ExitCode> {
        let store = context.open_existing_store()?;
        let oci = OciStore::new(&store);
        let mut lines = Vec::new();
        for name in &self.names {
            lines.push(if oci.unpin(name)? {
                format!("unpinned {name}")
            } else {
                format!("{name} was not pinned")
            });
        }
        let pinned = oci.pinned()?;
        context
            .output()
            .value(&PinsJson { pinned: &pinned }, |out| {
                lines.iter().try_for_each(|line| writeln!(out, "{line}"))
            })?;
        Ok(ExitCode::SUCCESS)
    }
}
