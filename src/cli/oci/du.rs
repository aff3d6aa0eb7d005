//! `oci-store du`: where the store's space goes.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde::Serialize;

use crate::cli::error::CliResult;
use crate::cli::output::bytes_with_unit;
use crate::cli::{Context, RunCommand};
use crate::store::BlobsAndBytes;
use crate::stores::oci::{OciStore, RefUsage};

/// Version of `du --json`'s document.
pub const SCHEMA: &str = "oci-store.du.v1";

/// Shows the store's total; per ref, the bytes it reaches, those no other ref reaches
/// (unique: what removing it alone frees) and those it shares; per flavour (owner mark), the
/// bytes it holds; and what `gc --dry-run` says gc would free now.
#[derive(Debug, Args)]
pub struct DuCommand {
    /// Skip the gc dry run (it waits for running imports to finish)
    #[arg(long)]
    no_reclaimable: bool,
}

#[derive(Debug, Serialize)]
struct DuJson {
    schema: &'static str,
    total: BlobsAndBytes,
    refs: Vec<RefUsage>,
    /// Blobs and bytes reached by at least one ref, each blob once.
    reached_by_refs: BlobsAndBytes,
    /// Per holder (flavour owner mark: oci, appc, base for `blob put`); a blob held by
    /// several counts for each.
    flavours: BTreeMap<String, BlobsAndBytes>,
    /// Blobs no owner mark holds.
    no_holder: BlobsAndBytes,
    /// What `gc --dry-run` would free (the OCI sweep), absent with --no-reclaimable.
    reclaimable: Option<Reclaimable>,
}

#[derive(Debug, Serialize)]
struct Reclaimable {
    blobs: u64,
    bytes: u64,
}

impl RunCommand for DuCommand {
    fn run(self, context: &Context) -> CliResult<ExitCode> {
        let store = context.open_existing_store()?;
        let wait = Duration::from_millis(context.settings().gc_lock_wait_ms.value.max(0) as u64);
        let oci = OciStore::new(&store).with_gc_lock_wait(wait);
        let holders = store.usage_by_holder()?;
        let refs = oci.refs_usage()?;
        let reclaimable = if self.no_reclaimable {
            None
        } else {
            let report = oci.gc(true)?;
            // The sweep and what finishing dead operations (a killed pull) frees.
            let (_, dead_bytes) = store.dead_ingest_usage()?.unwrap_or((0, 0));
            Some(Reclaimable {
                blobs: report.deleted_blobs(),
                bytes: report.flavour_freed_bytes() + dead_bytes,
            })
        };
        let json = DuJson {
            schema: SCHEMA,
            total: holders.total,
            refs: refs.refs,
            reached_by_refs: BlobsAndBytes {
                blobs: refs.reached_blobs,
                bytes: refs.reached_bytes,
            },
            flavours: holders.holders,
            no_holder: holders.no_holder,
            reclaimable,
        };
        context.output().value(&json, |out| print_du(out, &json))?;
        Ok(ExitCode::SUCCESS)
    }
}

fn print_du(out: &mut dyn Write, du: &DuJson) -> io::Result<()> {
    writeln!(
        out,
        "total: {} blobs, {}",
        du.total.blobs,
        bytes_with_unit(du.total.bytes)
    )?;
    if du.refs.is_empty() {
        writeln!(out, "refs: none")?;
    } else {
        let width = du
            .refs
            .iter()
            .map(|r| r.name.len())
            .max()
            .unwrap_or(3)
            .max(3);
        writeln!(
            out,
            "{:<width$}  {:>6}  {:>14}  {:>14}  {:>14}",
            "REF", "BLOBS", "BYTES", "UNIQUE", "SHARED"
        )?;
        for usage in &du.refs {
            writeln!(
                out,
                "{:<width$}  {:>6}  {:>14}  {:>14}  {:>14}",
                usage.name, usage.blobs, usage.bytes, usage.unique_bytes, usage.shared_bytes
            )?;
        }
        writeln!(
            out,
            "reached by refs: {} blobs, {}",
            du.reached_by_refs.blobs,
            bytes_with_unit(du.reached_by_refs.bytes)
        )?;
    }
    for (flavour, usage) in &du.flavours {
        let flavour = if flavour == crate::store::Holder::BASE.name() {
            "base (blob put)"
        } else {
            flavour.as_str()
        };
        writeln!(
            out,
            "held by {flavour}: {} blobs, {}",
            usage.blobs,
            bytes_with_unit(usage.bytes)
        )?;
    }
    if du.no_holder.blobs > 0 {
        writeln!(
            out,
            "held by no flavour: {} blobs, {}",
            du.no_holder.blobs,
            bytes_with_unit(du.no_holder.bytes)
        )?;
    }
    if let Some(reclaimable) = &du.reclaimable {
        writeln!(
            out,
            "reclaimable by gc: {} blobs, {} (gc --dry-run)",
            reclaimable.blobs,
            bytes_with_unit(reclaimable.bytes)
        )?;
    }
    Ok(())
}
