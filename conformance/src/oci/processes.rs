//! OCI importers beside an OCI GC loop, in separate processes (issue 4: "a concurrency test runs
//! GC in a loop while other processes import: no import fails, nothing a ref reaches is lost";
//! DESIGN.md invariant 6). `conformance-worker --mode oci-import` runs [`run_importer`],
//! `--mode oci-gc` runs [`run_collector`]; `tests/multi_process.rs` prepares the layouts with
//! [`prepare_layouts`], starts the workers on one store and checks the result with
//! [`check_after_oci_processes`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_store::stores::oci::{ImportOptions, OciStore};
use oci_store::Store;
use serde::{Deserialize, Serialize};

use super::support::{finish, layer, new_builder, signature, tar_layout};
use crate::check::TestResult;
use crate::workload::check_consistent;
use crate::{ensure, ensure_eq, Context};

/// One importer's work: the layout (directory or archive) and the ref it imports from it.
#[derive(Clone, Debug)]
pub struct ImporterPlan {
    pub source: PathBuf,
    pub ref_name: String,
    /// Whether the layout also holds a referrer (a signature) of the image.
    pub signed: bool,
}

/// Layouts for `importers` processes, in `dir`: each image has the same base layer (so
/// importers and the GC contend for one blob) and layers of its own; importer 1's layout also
/// holds a signature of its image, and importer 2's is an `oci-archive` tar.
pub fn prepare_layouts(dir: &Path, importers: usize) -> Result<Vec<ImporterPlan>, String> {
    let base = layer("shared-base")?;
    (0..importers)
        .map(|importer| {
            let ref_name = format!("importer-{importer}");
            let layout = dir.join(&ref_name);
            let mut builder = new_builder(&layout)?;
            let mut layers = vec![base.clone()];
            for position in 0..3 {
                layers.push(layer(&format!("{ref_name}-layer-{position}"))?);
            }
            let image = builder
                .image("linux", "amd64", &layers)
                .context(format!("building {ref_name}"))?;
            builder.add_ref(Some(&ref_name), &image);
            let signed = importer % 3 == 1;
            if signed {
                let signed_by = signature(&mut builder, &image, &format!("{ref_name} is signed"))?;
                builder.add_ref(None, &signed_by);
            }
            finish(&builder)?;
            let source = if importer % 3 == 2 {
                let archive = dir.join(format!("{ref_name}.tar.gz"));
                tar_layout(&layout, &archive, true)?;
                archive
            } else {
                layout
            };
            Ok(ImporterPlan {
                source,
                ref_name,
                signed,
            })
        })
        .collect()
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ImporterStats {
    pub imports: u64,
    pub blobs_written: u64,
    pub refs_removed: u64,
}

/// Imports `ref_name` from `source` `iterations` times; after each import the ref must be
/// complete, rehashed (a GC in between must not have swept any of it). Every other iteration
/// removes the ref again, so the GC has something to sweep, the shared base layer included;
/// the last import stays.
pub fn run_importer(
    store: &Store,
    source: &Path,
    ref_name: &str,
    iterations: u64,
) -> Result<ImporterStats, String> {
    let oci = OciStore::new(store);
    let mut stats = ImporterStats::default();
    let options = ImportOptions {
        sref: Some(ref_name.to_string()),
        ..ImportOptions::default()
    };
    for iteration in 0..iterations {
        let report = oci
            .import_layout(source, &options)
            .context(format!("iteration {iteration}: importing {ref_name}"))?;
        stats.imports += 1;
        stats.blobs_written += report.blobs_written;
        let check = oci
            .check(ref_name, true)
            .context(format!("iteration {iteration}: checking {ref_name}"))?;
        ensure!(
            check.is_complete(),
            "iteration {iteration}: {ref_name} is not complete right after its import: {check:?}"
        );
        if iteration % 2 == 1 && iteration + 1 < iterations {
            oci.remove_ref(ref_name)
                .context(format!("iteration {iteration}: removing {ref_name}"))?;
            stats.refs_removed += 1;
        }
        // A moment without this importer's shared GC lock: flock does not queue, so a GC
        // waiting for it exclusively needs every importer to let go at once now and then.
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(stats)
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CollectorStats {
    pub gcs: u64,
    pub blobs_deleted: u64,
}

/// Runs the OCI GC until `stop_file` exists (at least once, at most `max_iterations` times),
/// pausing briefly between runs so the importers get the GC lock too.
pub fn run_collector(
    store: &Store,
    stop_file: &Path,
    max_iterations: u64,
) -> Result<CollectorStats, String> {
    let oci = OciStore::new(store);
    let mut stats = CollectorStats::default();
    while stats.gcs < max_iterations.max(1) {
        let report = oci
            .gc(false)
            .context(format!("gc number {}", stats.gcs + 1))?;
        stats.gcs += 1;
        stats.blobs_deleted += report.swept.iter().filter(|s| s.deleted).count() as u64;
        if stop_file.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(stats)
}

/// After every worker finished: each importer's ref is there and complete, rehashed, with its
/// referrer if it had one; the base store is consistent (fsck clean, no garbage); and one more
/// OCI GC keeps every ref whole.
pub fn check_after_oci_processes(store: &Store, plans: &[ImporterPlan]) -> TestResult {
    let oci = OciStore::new(store);
    let check_refs = |when: &str| -> TestResult {
        for plan in plans {
            let check = oci
                .check(&plan.ref_name, true)
                .context(format!("{when}: checking {}", plan.ref_name))?;
            ensure!(
                check.is_complete(),
                "{when}: {} is not complete: {check:?}",
                plan.ref_name
            );
            let referrers = oci
                .referrers(&check.digest, None)
                .context(format!("{when}: referrers of {}", plan.ref_name))?;
            ensure_eq!(
                referrers.len(),
                usize::from(plan.signed),
                "{when}: referrers of {}",
                plan.ref_name
            );
        }
        Ok(())
    };
    check_refs("after the workers")?;
    check_consistent(store)?;
    let report = oci.gc(false).context("gc after the workers")?;
    ensure!(
        report.swept.is_empty(),
        "a GC with every ref in place swept: {report:?}"
    );
    check_refs("after one more gc")?;
    let fsck = store.fsck(Default::default()).context("fsck")?;
    ensure!(fsck.is_clean(), "fsck at the end: {:?}", fsck.problems);
    Ok(())
}
