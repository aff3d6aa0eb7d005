//! Invariant 6, processes. For every backend that fills all metadata roles (index, extra
//! data, key/value; blobs in `fs`), and for every backend that fills all four roles alone:
//!
//! - `workers_share_one_store`: several `conformance-worker` processes run the mixed workload
//!   on one store at once, creating it together. Afterwards every worker exited 0, fsck is
//!   clean, indexed content rehashes, the compare-and-set counters add up and GC leaves no
//!   garbage or staged write.
//! - `killed_workers_leave_only_garbage`: workers are killed (SIGKILL) mid-workload; what they
//!   leave (staged writes, half-done cascades) is garbage that one GC removes, after which
//!   the store is consistent (invariants 2 and 3).
//! - `oci_imports_beside_gc_loop`: three processes import OCI layouts (one of them an
//!   `oci-archive`, one with a referrer; all share a base layer), re-importing and removing
//!   their ref in a loop, while a fourth runs the OCI GC in a loop. Afterwards every worker
//!   exited 0 (no import failed, and each found its ref complete right after importing it),
//!   every ref rehashes complete, fsck is clean and one more GC sweeps nothing.
//!
//! `CONFORMANCE_SEED` changes the seeds (they are printed on failure); `CONFORMANCE_VERBOSE`
//! prints what GC found after the kill.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use libtest_mimic::{Arguments, Trial};
use oci_store_conformance::matrix::{multi_process_combinations, Combination};
use oci_store_conformance::oci::processes::{
    check_after_oci_processes, prepare_layouts, CollectorStats, ImporterStats,
};
use oci_store_conformance::workload::{check_after_workload, check_consistent, WorkloadStats};

const WORKERS: u64 = 4;
const ITERATIONS: u64 = 200;
/// How long killed workers run before SIGKILL.
const RUN_BEFORE_KILL: Duration = Duration::from_millis(700);
const OCI_IMPORTERS: usize = 3;
const OCI_IMPORT_ITERATIONS: u64 = 24;
/// A bound on the GC loop, should the stop file never come.
const OCI_GC_MAX_ITERATIONS: u64 = 20_000;

fn base_seed() -> u64 {
    std::env::var("CONFORMANCE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_240_601)
}

/// A worker on the store in `dir` with these backends; the caller adds the mode's arguments.
fn worker_command(dir: &Path, combination: &Combination) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_conformance-worker"));
    command
        .arg("--dir")
        .arg(dir)
        .args(["--blobs", combination.blobs])
        .args(["--index", combination.index])
        .args(["--extra", combination.extra])
        .args(["--kv", combination.kv])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn spawn_worker(
    dir: &Path,
    combination: &Combination,
    seed: u64,
    iterations: u64,
) -> Result<Child, String> {
    worker_command(dir, combination)
        .args(["--seed", &seed.to_string()])
        .args(["--iterations", &iterations.to_string()])
        .arg("--large")
        .spawn()
        .map_err(|e| format!("starting a worker with seed {seed}: {e}"))
}

/// Waits for a worker and parses the statistics it printed; `what` names it in messages.
fn finish_worker<T: serde::de::DeserializeOwned>(child: Child, what: &str) -> Result<T, String> {
    let output = child
        .wait_with_output()
        .map_err(|e| format!("waiting for {what}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{what} exited with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| {
        format!(
            "{what} printed no statistics ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

fn temporary_store_dir() -> Result<tempfile::TempDir, String> {
    tempfile::Builder::new()
        .prefix("oci-store-multi-process-")
        .tempdir()
        .map_err(|e| format!("creating a temporary directory: {e}"))
}

fn workers_share_one_store(combination: &Combination) -> Result<(), String> {
    let dir = temporary_store_dir()?;
    let seed = base_seed();
    let children: Vec<(u64, Result<Child, String>)> = (0..WORKERS)
        .map(|worker| {
            let worker_seed = seed + worker;
            (
                worker_seed,
                spawn_worker(dir.path(), combination, worker_seed, ITERATIONS),
            )
        })
        .collect();
    let mut participants = Vec::new();
    let mut failures = Vec::new();
    for (worker_seed, child) in children {
        let what = format!("worker with seed {worker_seed}");
        match finish_worker::<WorkloadStats>(child?, &what) {
            Ok(stats) => participants.push(stats),
            Err(error) => failures.push(error),
        }
    }
    if !failures.is_empty() {
        return Err(failures.join("\n"));
    }
    let store = combination
        .open(dir.path())
        .map_err(|e| format!("opening the store after the workers: {e}"))?;
    check_after_workload(&store, &participants)
}

fn killed_workers_leave_only_garbage(combination: &Combination) -> Result<(), String> {
    let dir = temporary_store_dir()?;
    let seed = base_seed() + 100;
    let mut children = Vec::new();
    for worker in 0..WORKERS {
        children.push((
            seed + worker,
            spawn_worker(dir.path(), combination, seed + worker, 1_000_000)?,
        ));
    }
    std::thread::sleep(RUN_BEFORE_KILL);
    for (worker_seed, child) in &mut children {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                std::io::Read::read_to_string(&mut pipe, &mut stderr).ok();
            }
            return Err(format!(
                "worker with seed {worker_seed} ended before it was killed ({status}): {}",
                stderr.trim()
            ));
        }
        child
            .kill()
            .map_err(|e| format!("killing worker {worker_seed}: {e}"))?;
    }
    for (worker_seed, mut child) in children {
        child
            .wait()
            .map_err(|e| format!("waiting for killed worker {worker_seed}: {e}"))?;
    }
    let store = combination
        .open(dir.path())
        .map_err(|e| format!("opening the store after killing the workers: {e}"))?;
    // A kill can land between any two steps: a staged write, content committed but not yet
    // indexed, a delete cascade half done. All of that is garbage for one GC.
    let report = store
        .gc(Default::default())
        .map_err(|e| format!("gc after killing the workers: {e}"))?;
    if std::env::var_os("CONFORMANCE_VERBOSE").is_some() {
        eprintln!("{}: gc after the kill: {report:?}", combination.label());
    }
    check_consistent(&store)
}

fn oci_imports_beside_gc_loop(combination: &Combination) -> Result<(), String> {
    let dir = temporary_store_dir()?;
    let layouts = tempfile::Builder::new()
        .prefix("oci-store-multi-process-layouts-")
        .tempdir()
        .map_err(|e| format!("creating a temporary directory: {e}"))?;
    let plans = prepare_layouts(layouts.path(), OCI_IMPORTERS)?;
    let stop_file = layouts.path().join("stop-gc");
    let collector = worker_command(dir.path(), combination)
        .args(["--mode", "oci-gc"])
        .arg("--stop-file")
        .arg(&stop_file)
        .args(["--iterations", &OCI_GC_MAX_ITERATIONS.to_string()])
        .spawn()
        .map_err(|e| format!("starting the gc worker: {e}"))?;
    let mut importers = Vec::new();
    for plan in &plans {
        let started = worker_command(dir.path(), combination)
            .args(["--mode", "oci-import"])
            .arg("--layout")
            .arg(&plan.source)
            .args(["--ref", &plan.ref_name])
            .args(["--iterations", &OCI_IMPORT_ITERATIONS.to_string()])
            .spawn()
            .map_err(|e| format!("starting importer {}: {e}", plan.ref_name));
        importers.push((plan.ref_name.clone(), started));
    }
    let mut failures = Vec::new();
    let mut importer_stats = Vec::new();
    for (name, started) in importers {
        match started.and_then(|child| finish_worker::<ImporterStats>(child, &name)) {
            Ok(stats) => importer_stats.push((name, stats)),
            Err(error) => failures.push(error),
        }
    }
    // The collector stops at its next round, whatever happened to the importers.
    std::fs::write(&stop_file, b"").map_err(|e| format!("writing the stop file: {e}"))?;
    let collector_stats = finish_worker::<CollectorStats>(collector, "the gc worker");
    if std::env::var_os("CONFORMANCE_VERBOSE").is_some() {
        eprintln!(
            "{}: importers {importer_stats:?}, gc {collector_stats:?}",
            combination.label()
        );
    }
    if let Err(error) = &collector_stats {
        failures.push(error.clone());
    }
    if !failures.is_empty() {
        return Err(failures.join("\n"));
    }
    let store = combination
        .open(dir.path())
        .map_err(|e| format!("opening the store after the workers: {e}"))?;
    check_after_oci_processes(&store, &plans)
}

fn main() {
    let arguments = Arguments::from_args();
    let mut trials = Vec::new();
    for combination in multi_process_combinations() {
        let label = combination.label();
        let shared = combination.clone();
        trials.push(Trial::test(
            format!("{label}::multi_process::workers_share_one_store"),
            move || workers_share_one_store(&shared).map_err(Into::into),
        ));
        let killed = combination.clone();
        trials.push(Trial::test(
            format!("{label}::multi_process::killed_workers_leave_only_garbage"),
            move || killed_workers_leave_only_garbage(&killed).map_err(Into::into),
        ));
        trials.push(Trial::test(
            format!("{label}::multi_process::oci_imports_beside_gc_loop"),
            move || oci_imports_beside_gc_loop(&combination).map_err(Into::into),
        ));
    }
    libtest_mimic::run(&arguments, trials).exit();
}
