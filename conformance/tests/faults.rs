//! Faults (issue 10): injected I/O errors and a full disk during commit, delete, import,
//! export, the GCs, render, upgrade and conversion, for every metadata backend (fs blobs).
//!
//! - `faults::<work>::io_error` and `::disk_full`: the work runs over fault-injecting wrappers
//!   of all four traits; a clean run counts the calls a fault can hit, then one trial per place
//!   (a spread of them; every place with `FAULTS_EXHAUSTIVE=1`) fails there, with `EIO` once or
//!   with `ENOSPC` from there on until space returns.
//! - `faults::<work>::small_filesystem`: the store on a real 24 MiB tmpfs, filled to leave the
//!   work from no room to enough (needs root, as CI has; skipped elsewhere, an error under
//!   `CI=true`). This reaches what wrappers cannot: SQLite's and LMDB's own full-disk handling,
//!   a rename or sync failing, upgrades and conversion.
//!
//! `FAULTS_VERBOSE` prints how each trial ended.
//!
//! Each trial checks: the error names the fault; what the work acknowledged is there and no
//! partial blob is visible (the work's check, `fsck` finds only repairable garbage, `fsck
//! --repair` leaves nothing); once the fault is gone the same work succeeds and the store ends
//! as a run without the fault leaves it.

use libtest_mimic::{Arguments, Trial};
use oci_store_conformance::crash::snapshot::Snapshot;
use oci_store_conformance::crash::works::{self, Work};
use oci_store_conformance::faults::small_filesystem::SmallFilesystem;
use oci_store_conformance::faults::trial::{run_with_fault, Injection};
use oci_store_conformance::faults::{FaultKind, FaultPlan};
use oci_store_conformance::matrix::{metadata_combinations, Combination};

/// Places a fault lands per work and kind, unless `FAULTS_EXHAUSTIVE` is set.
const SPREAD: u64 = 12;
const SMALL_FILESYSTEM_BYTES: u64 = 24 << 20;
/// Free space left to the work on the small file system, in bytes.
const HEADROOMS: &[u64] = &[
    0,
    4 << 10,
    32 << 10,
    128 << 10,
    512 << 10,
    1 << 20,
    3 << 20,
    8 << 20,
];

fn verbose(line: impl FnOnce() -> String) {
    if std::env::var_os("FAULTS_VERBOSE").is_some() {
        eprintln!("{}", line());
    }
}

fn scratch() -> Result<tempfile::TempDir, String> {
    tempfile::Builder::new()
        .prefix("oci-store-faults-")
        .tempdir()
        .map_err(|e| format!("creating a temporary directory: {e}"))
}

fn differs(snapshot: &Snapshot, reference: &Snapshot, what: &str) -> Result<(), String> {
    let differences = snapshot.differences(reference);
    if differences.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{what}: the store ends unlike a run without the fault:\n{}",
        differences.join("\n")
    ))
}

/// Which of `calls` places a fault is put at.
fn places(calls: u64) -> Vec<u64> {
    if std::env::var_os("FAULTS_EXHAUSTIVE").is_some() || calls <= SPREAD {
        return (0..calls).collect();
    }
    let mut chosen: Vec<u64> = (0..SPREAD).map(|n| n * calls / SPREAD).collect();
    chosen.push(calls - 1);
    chosen.dedup();
    chosen
}

fn wrapped(
    work: &'static dyn Work,
    combination: &Combination,
    kind: FaultKind,
) -> Result<(), String> {
    let dir = scratch()?;
    let counting = FaultPlan::counting(kind);
    let reference = run_with_fault(
        work,
        &dir.path().join("reference"),
        combination,
        Injection::Wrappers(counting.clone()),
    )
    .map_err(|e| format!("the run without a fault: {e}"))?;
    let calls = counting.calls();
    if calls == 0 {
        return Err(format!(
            "{} makes no call a {kind:?} fault can hit",
            work.name()
        ));
    }
    let (mut failed, mut missed) = (0, 0);
    let chosen = places(calls);
    for place in chosen.iter().copied() {
        let plan = FaultPlan::failing_at(kind, place);
        let what = format!("{kind:?} at call {place} of {calls}");
        let outcome = run_with_fault(
            work,
            &dir.path().join(format!("at-{place}")),
            combination,
            Injection::Wrappers(plan.clone()),
        )
        .map_err(|e| format!("{what}: {e}"))?;
        // The number of calls may differ a little between runs (how many staged files a
        // batch sync covers depends on timing): a place past this run's end is missed.
        missed += u64::from(plan.injected() == 0);
        failed += u64::from(outcome.error.is_some());
        verbose(|| {
            format!(
                "{} {}: {what}: {:?}",
                combination.label(),
                work.name(),
                outcome.error
            )
        });
        differs(&outcome.snapshot, &reference.snapshot, &what)?;
        let _ = std::fs::remove_dir_all(dir.path().join(format!("at-{place}")));
    }
    if failed == 0 || missed * 2 > chosen.len() as u64 {
        return Err(format!(
            "{failed} of {} faults made the work fail and {missed} were never injected: the \
             test proves little",
            chosen.len()
        ));
    }
    Ok(())
}

fn small_filesystem(work: &'static dyn Work, combination: &Combination) -> Result<(), String> {
    let Some(filesystem) = SmallFilesystem::mount(SMALL_FILESYSTEM_BYTES)? else {
        return Ok(());
    };
    let reference = run_with_fault(
        work,
        &filesystem.path().join("reference"),
        combination,
        Injection::None,
    )
    .map_err(|e| format!("the run with room: {e}"))?;
    std::fs::remove_dir_all(filesystem.path().join("reference"))
        .map_err(|e| format!("removing the reference run: {e}"))?;
    let mut failed = 0;
    for &headroom in HEADROOMS {
        let dir = filesystem.path().join(format!("headroom-{headroom}"));
        let outcome = run_with_fault(
            work,
            &dir,
            combination,
            Injection::FullDisk {
                filesystem: &filesystem,
                headroom,
            },
        )
        .map_err(|e| format!("{headroom} bytes free: {e}"))?;
        failed += u64::from(outcome.error.is_some());
        verbose(|| {
            format!(
                "{} {}: {headroom} bytes free: {:?}",
                combination.label(),
                work.name(),
                outcome.error
            )
        });
        differs(
            &outcome.snapshot,
            &reference.snapshot,
            &format!("{headroom} bytes free"),
        )?;
        std::fs::remove_dir_all(&dir).map_err(|e| format!("removing {}: {e}", dir.display()))?;
    }
    // A work that frees space (a delete, a GC) may well succeed on a full disk; one that
    // needs room must have run out at the smallest headrooms, or the test proved nothing.
    if failed == 0 && !work.frees_space() {
        return Err("the work never ran out of space: the test proves nothing".to_string());
    }
    Ok(())
}

/// A store created on a file system with no room left (0 to 128 KiB free, by 4 KiB): the
/// worker process must fail with an
/// error naming the full disk, not die of a signal (a memory-mapped file whose pages the
/// full file system cannot back raises SIGBUS when touched).
fn new_store_on_a_full_disk(combination: &Combination) -> Result<(), String> {
    use std::os::unix::process::ExitStatusExt;
    let Some(filesystem) = SmallFilesystem::mount(SMALL_FILESYSTEM_BYTES)? else {
        return Ok(());
    };
    for headroom in (0..=32).map(|n| n * 4096) {
        let dir = filesystem.path().join(format!("headroom-{headroom}"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        filesystem.leave_free(headroom)?;
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_crash"))
            .arg("worker")
            .arg("--trial")
            .arg(&dir)
            .args(["--work", "blob-write", "--phase", "setup", "--attempt", "0"])
            .args(["--blobs", combination.blobs, "--index", combination.index])
            .args(["--extra", combination.extra, "--kv", combination.kv])
            .output()
            .map_err(|e| format!("starting the worker: {e}"))?;
        filesystem.free()?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if let Some(signal) = output.status.signal() {
            return Err(format!(
                "{headroom} bytes free: creating the store killed the process with signal \
                 {signal}: {stderr}"
            ));
        }
        if !output.status.success()
            && !["No space left on device", "is full"]
                .iter()
                .any(|text| stderr.contains(text))
        {
            return Err(format!("{headroom} bytes free: unclear error: {stderr}"));
        }
        std::fs::remove_dir_all(&dir).map_err(|e| format!("removing {}: {e}", dir.display()))?;
    }
    Ok(())
}

/// Spawning a process while another thread holds a store lock lets the child hold it too
/// until it execs; `backend convert`, which must find the store unused, would then see it
/// busy. The test that spawns and the conversion tests take turns.
static SPAWNING_OR_CONVERTING: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn taking_turns<T>(run: impl FnOnce() -> T) -> T {
    let _turn = SPAWNING_OR_CONVERTING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    run()
}

fn main() {
    let arguments = Arguments::from_args();
    let mut trials = Vec::new();
    for combination in metadata_combinations() {
        let label = combination.label();
        let fresh = combination.clone();
        trials.push(Trial::test(
            format!("{label}::faults::new_store_on_a_full_disk"),
            move || taking_turns(|| new_store_on_a_full_disk(&fresh)).map_err(Into::into),
        ));
        for work in works::all() {
            if !work.applies_to(&combination) {
                continue;
            }
            if work.runs_on_the_trial_store() {
                for (kind, name) in [
                    (FaultKind::Io, "io_error"),
                    (FaultKind::DiskFull, "disk_full"),
                ] {
                    if kind == FaultKind::DiskFull && !work.writes_the_store() {
                        // Nothing it does in the store can meet a full disk; its writes into
                        // the layout meet the small file system below.
                        continue;
                    }
                    let combination = combination.clone();
                    trials.push(Trial::test(
                        format!("{label}::faults::{}::{name}", work.name()),
                        move || wrapped(work, &combination, kind).map_err(Into::into),
                    ));
                }
            }
            let combination = combination.clone();
            trials.push(Trial::test(
                format!("{label}::faults::{}::small_filesystem", work.name()),
                move || {
                    if work.runs_on_the_trial_store() {
                        small_filesystem(work, &combination)
                    } else {
                        taking_turns(|| small_filesystem(work, &combination))
                    }
                    .map_err(Into::into)
                },
            ));
        }
    }
    libtest_mimic::run(&arguments, trials).exit();
}
