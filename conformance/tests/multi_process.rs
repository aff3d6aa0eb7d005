//! Invariant 6, processes: for every backend that fills all metadata roles (index, extra
//! data, key/value; blobs in `fs`), several `conformance-worker` processes run the mixed
//! workload on one store at once, creating it together. Afterwards every worker exited 0,
//! fsck is clean, indexed content rehashes, the compare-and-set counters add up and GC leaves
//! no garbage or staged write.
//!
//! `CONFORMANCE_SEED` changes the seeds (they are printed on failure).

use std::process::{Command, Stdio};

use libtest_mimic::{Arguments, Trial};
use oci_store_conformance::matrix::{metadata_combinations, Combination};
use oci_store_conformance::workload::{check_after_workload, WorkloadStats};

const WORKERS: u64 = 4;
const ITERATIONS: u64 = 200;

fn base_seed() -> u64 {
    std::env::var("CONFORMANCE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_240_601)
}

fn workers_share_one_store(combination: &Combination) -> Result<(), String> {
    let dir = tempfile::Builder::new()
        .prefix("oci-store-multi-process-")
        .tempdir()
        .map_err(|e| format!("creating a temporary directory: {e}"))?;
    let seed = base_seed();
    let children: Vec<_> = (0..WORKERS)
        .map(|worker| {
            let worker_seed = seed + worker;
            let child = Command::new(env!("CARGO_BIN_EXE_conformance-worker"))
                .arg("--dir")
                .arg(dir.path())
                .args(["--blobs", combination.blobs])
                .args(["--index", combination.index])
                .args(["--extra", combination.extra])
                .args(["--kv", combination.kv])
                .args(["--seed", &worker_seed.to_string()])
                .args(["--iterations", &ITERATIONS.to_string()])
                .arg("--large")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| format!("starting worker {worker}: {e}"));
            (worker_seed, child)
        })
        .collect();
    let mut participants = Vec::new();
    let mut failures = Vec::new();
    for (worker_seed, child) in children {
        let output = child?
            .wait_with_output()
            .map_err(|e| format!("waiting for worker with seed {worker_seed}: {e}"))?;
        if !output.status.success() {
            failures.push(format!(
                "worker with seed {worker_seed} exited with {}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
            continue;
        }
        let stats: WorkloadStats = serde_json::from_slice(&output.stdout).map_err(|e| {
            format!(
                "worker with seed {worker_seed} printed no statistics ({e}): {}",
                String::from_utf8_lossy(&output.stdout)
            )
        })?;
        participants.push(stats);
    }
    if !failures.is_empty() {
        return Err(failures.join("\n"));
    }
    let store = combination
        .open(dir.path())
        .map_err(|e| format!("opening the store after the workers: {e}"))?;
    check_after_workload(&store, &participants)
}

fn main() {
    let arguments = Arguments::from_args();
    let trials = metadata_combinations()
        .into_iter()
        .map(|combination| {
            Trial::test(
                format!(
                    "{}::multi_process::workers_share_one_store",
                    combination.label()
                ),
                move || workers_share_one_store(&combination).map_err(Into::into),
            )
        })
        .collect();
    libtest_mimic::run(&arguments, trials).exit();
}
