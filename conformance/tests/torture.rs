//! Issue 10, torture, in CI: for every combination the multi-process tests use (each metadata
//! backend with `fs` blobs, and each backend filling all four roles alone), a small run of the
//! `stress` command (2 processes × 2 threads, a few seconds of random operations over both
//! flavours, every GC and fsck), which must be clean: no violation, no unexpected error, no
//! stuck operation.
//!
//! `checker_sees_a_lost_blob` shows the checker is not blind: after a run, one blob the model
//! says is there is deleted behind its back, and the final check must name it.
//!
//! `a_stuck_operation_is_reported_with_stacks` stages a deadlock (a lock held forever) and
//! checks the run names the stuck operation and prints its process's stacks.
//!
//! `TORTURE_SECONDS` lengthens the runs; `CONFORMANCE_SEED` changes the seed.

use std::time::Duration;

use libtest_mimic::{Arguments, Trial};
use oci_store::store::LockMode;
use oci_store::traits::{Algorithm, Digest};
use oci_store_conformance::matrix::{multi_process_combinations, Combination};
use oci_store_conformance::torture::inputs::own_blob;
use oci_store_conformance::torture::judge::{judge_events, read_logs};
use oci_store_conformance::torture::races;
use oci_store_conformance::torture::worker::logs_dir;
use oci_store_conformance::torture::{
    check_run, run_stress, run_workers, Report, RunDirs, StressConfig,
};

fn seed() -> u64 {
    std::env::var("CONFORMANCE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_201)
}

fn config(combination: &Combination, processes: usize, threads: usize) -> StressConfig {
    let seconds = std::env::var("TORTURE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    StressConfig {
        worker_exe: env!("CARGO_BIN_EXE_stress").into(),
        combination: combination.clone(),
        processes,
        threads,
        duration: Duration::from_secs(seconds),
        seed: seed(),
        op_timeout: Duration::from_secs(90),
    }
}

fn scratch() -> Result<tempfile::TempDir, String> {
    tempfile::Builder::new()
        .prefix("oci-store-torture-")
        .tempdir()
        .map_err(|e| format!("creating a temporary directory: {e}"))
}

fn small_run_is_clean(combination: &Combination) -> Result<(), String> {
    let root = scratch()?;
    let report = run_stress(&config(combination, 2, 2), root.path())?;
    let expected_kinds = [
        "blob.write.shared",
        "oci.import.own",
        "appc.import",
        "oci.gc",
        "oci.prune",
    ];
    for kind in expected_kinds {
        if report.ops.get(kind).is_none_or(|stats| stats.count == 0) {
            return Err(format!("the run never ran {kind}:\n{}", report.render()));
        }
    }
    if report.is_clean() {
        Ok(())
    } else {
        Err(report.render())
    }
}

fn checker_sees_a_lost_blob(combination: &Combination) -> Result<(), String> {
    let root = scratch()?;
    let config = config(combination, 1, 1);
    let dirs = RunDirs::under(root.path());
    let run = run_workers(&config, &dirs)?;
    let events = read_logs(&logs_dir(&dirs.work))?;
    let (models, _) = judge_events(&events, &mut Report::default());
    let model = models.get("p0t0").ok_or("no log of thread p0t0")?;
    let slot = model
        .blobs
        .iter()
        .position(|blob| blob.present)
        .ok_or("the run left no own blob to lose; run longer (TORTURE_SECONDS)")?;
    let digest = Digest::of_bytes(Algorithm::Sha256, &own_blob("p0t0", slot));
    let store = combination.open(&dirs.store).map_err(|e| e.to_string())?;
    store.delete(&digest).map_err(|e| e.to_string())?;
    drop(store);
    let report = check_run(&config, &dirs, &run);
    let named = report
        .final_violations
        .iter()
        .any(|v| v.contains(&format!("own blob {slot}")) && v.contains(digest.as_str()));
    if named {
        Ok(())
    } else {
        Err(format!(
            "blob {digest} (own slot {slot}) was deleted behind the model's back, but the check \
             did not name it:\n{}",
            report.render()
        ))
    }
}

/// A deadlock, staged: the test holds the OCI GC turnstile exclusively (as a GC that never
/// ends would), so every OCI mutation of the workers waits forever. The run must report the
/// stuck operation with the stacks of its process, and end.
fn a_stuck_operation_is_reported_with_stacks(combination: &Combination) -> Result<(), String> {
    let root = scratch()?;
    let mut config = config(combination, 1, 2);
    config.duration = Duration::from_secs(3);
    config.op_timeout = Duration::from_secs(2);
    let dirs = RunDirs::under(root.path());
    let store = combination.open(&dirs.store).map_err(|e| e.to_string())?;
    let _held = store
        .named_lock("gc-oci-turnstile", LockMode::Exclusive)
        .map_err(|e| e.to_string())?;
    let run = run_workers(&config, &dirs)?;
    let Some(stuck) = run.stuck.first() else {
        return Err("an operation waited forever on the held lock, and no one noticed".into());
    };
    if std::env::var_os("CONFORMANCE_VERBOSE").is_some() {
        eprintln!("{stuck}");
    }
    let names_an_oci_op = ["Oci", "Lease"].iter().any(|op| stuck.contains(op));
    let has_stacks = stuck.contains("Thread ") || stuck.contains("task ");
    if names_an_oci_op && has_stacks && stuck.contains("stacks of pid") {
        Ok(())
    } else {
        Err(format!(
            "the stuck report lacks the operation or the stacks:\n{stuck}"
        ))
    }
}

fn replaced_entries_let_go_of_their_blobs(combination: &Combination) -> Result<(), String> {
    let dir = scratch()?;
    let store = combination.open(dir.path()).map_err(|e| e.to_string())?;
    races::replaced_entries_let_go_of_their_blobs(&store, 8, Duration::from_secs(3))
}

fn removed_entries_let_go_of_their_blobs(combination: &Combination) -> Result<(), String> {
    let dir = scratch()?;
    let store = combination.open(dir.path()).map_err(|e| e.to_string())?;
    races::removed_entries_let_go_of_their_blobs(&store, 8, Duration::from_secs(3))
}

fn main() {
    let arguments = Arguments::from_args();
    let mut trials = Vec::new();
    let combinations = multi_process_combinations();
    for combination in &combinations {
        let label = combination.label();
        let shared = combination.clone();
        let racing = combination.clone();
        trials.push(Trial::test(
            format!("{label}::torture::replaced_entries_let_go_of_their_blobs"),
            move || replaced_entries_let_go_of_their_blobs(&racing).map_err(Into::into),
        ));
        let removing = combination.clone();
        trials.push(Trial::test(
            format!("{label}::torture::removed_entries_let_go_of_their_blobs"),
            move || removed_entries_let_go_of_their_blobs(&removing).map_err(Into::into),
        ));
        trials.push(Trial::test(
            format!("{label}::torture::small_run_is_clean"),
            move || small_run_is_clean(&shared).map_err(Into::into),
        ));
    }
    if let Some(first) = combinations.first().cloned() {
        trials.push(Trial::test(
            format!("{}::torture::checker_sees_a_lost_blob", first.label()),
            move || checker_sees_a_lost_blob(&first).map_err(Into::into),
        ));
    }
    if let Some(first) = combinations.first().cloned() {
        trials.push(Trial::test(
            format!(
                "{}::torture::a_stuck_operation_is_reported_with_stacks",
                first.label()
            ),
            move || a_stuck_operation_is_reported_with_stacks(&first).map_err(Into::into),
        ));
    }
    libtest_mimic::run(&arguments, trials).exit();
}
