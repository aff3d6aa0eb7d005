//! Crash points (issue 10): for every metadata backend (fs blobs), the crash harness runs
//! each work once cleanly, then kills a worker at every crash point compiled into the
//! library (and at random moments), and checks each time that what the work acknowledged is
//! whole, what it had not committed is invisible, `fsck` finds only repairable garbage,
//! `fsck --repair` leaves the store clean, the same work then succeeds, and the store ends as
//! a clean run leaves it. The trial fails if a crash point is never crashed at.
//!
//! `CRASH_TRIALS` sets the trials per backend (default 80: one per crash point, the rest half at
//! random points, half at random moments; the long mode is
//! `cargo run -p oci-store-conformance --bin crash -- trials --trials 200`), `CRASH_SEED`
//! the seed, `CRASH_VERBOSE` prints every trial.

use std::path::Path;
use std::sync::Mutex;

use libtest_mimic::{Arguments, Trial};
use oci_store_conformance::crash::harness::{compiled_points, run_combination, CampaignOptions};
use oci_store_conformance::matrix::metadata_combinations;

fn options() -> CampaignOptions {
    let number = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    CampaignOptions {
        trials: number("CRASH_TRIALS", 80) as usize,
        seed: number("CRASH_SEED", 20_261_201),
        random_share: 0.5,
        verbose: std::env::var_os("CRASH_VERBOSE").is_some(),
    }
}

/// One combination at a time: a store lock this process holds while a sibling thread forks a
/// worker is held by the child too until it execs, and `backend convert` (which must find the
/// store unused) would then see it busy.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn main() {
    let arguments = Arguments::from_args();
    let worker = Path::new(env!("CARGO_BIN_EXE_crash"));
    let mut trials = vec![Trial::test("crash_points::compiled_in", move || {
        // The worker is built with the feature: without it, every check below would pass
        // vacuously (no point to crash at).
        let points = compiled_points(worker)?;
        if points.len() < 40 {
            return Err(
                format!("only {} crash points compiled in: {points:?}", points.len()).into(),
            );
        }
        Ok(())
    })];
    for combination in metadata_combinations() {
        let label = combination.label();
        trials.push(Trial::test(
            format!("{label}::crash_points::every_point_and_random_kills"),
            move || {
                let _alone = ONE_AT_A_TIME
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let report = run_combination(worker, &combination, &options())?;
                eprintln!("{}", report.summary());
                if report.trials.len() < options().trials {
                    return Err(format!("only {} trials ran", report.trials.len()).into());
                }
                Ok(())
            },
        ));
    }
    libtest_mimic::run(&arguments, trials).exit();
}
