//! The crash harness's worker and driver (see `oci_store_conformance::crash`).
//!
//! - `crash list-points`: every crash point compiled in, one per line.
//! - `crash worker --trial DIR --work NAME --phase setup|run --attempt N --blobs B --index I
//!   --extra X --kv K`: one phase of one work, in this process (the harness arms crash points
//!   through `OCI_STORE_CRASH_AT` and logs them through `OCI_STORE_CRASH_LOG`).
//! - `crash trials [--backend NAME]... [--trials N] [--seed S] [--random-share F]
//!   [--blobs-in-database] [--verbose]`: the long mode: N trials (default 200) per metadata
//!   backend, each crash point at least once; prints one summary line per backend. Blobs are in
//!   `fs`, or with `--blobs-in-database` in the metadata backend itself.

use std::path::PathBuf;
use std::process::ExitCode;

use oci_store::traits::registry::backends_for;
use oci_store::traits::Role;
use oci_store_conformance::crash::harness::{run_combination, CampaignOptions};
use oci_store_conformance::crash::trial::Trial;
use oci_store_conformance::crash::works;
use oci_store_conformance::matrix::{metadata_combinations, Combination};

fn leaked(value: &str) -> &'static str {
    Box::leak(value.to_string().into_boxed_str())
}

fn worker(arguments: &[String]) -> Result<(), String> {
    let mut trial = None;
    let mut work = None;
    let mut phase = None;
    let mut attempt = 0;
    let mut roles: [Option<&'static str>; 4] = [None; 4];
    let mut iter = arguments.iter();
    while let Some(flag) = iter.next() {
        let value = iter.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--trial" => trial = Some(PathBuf::from(value)),
            "--work" => work = Some(works::named(value)?),
            "--phase" => phase = Some(value.clone()),
            "--attempt" => attempt = value.parse().map_err(|e| format!("--attempt: {e}"))?,
            "--blobs" => roles[0] = Some(leaked(value)),
            "--index" => roles[1] = Some(leaked(value)),
            "--extra" => roles[2] = Some(leaked(value)),
            "--kv" => roles[3] = Some(leaked(value)),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let role = |n: usize| roles[n].ok_or("--blobs, --index, --extra and --kv are required");
    let combination = Combination {
        blobs: role(0)?,
        index: role(1)?,
        extra: role(2)?,
        kv: role(3)?,
    };
    let trial = Trial::new(&trial.ok_or("--trial is required")?, &combination, attempt);
    let work = work.ok_or("--work is required")?;
    match phase.as_deref() {
        Some("setup") => work.setup(&trial),
        Some("run") => work.run(&trial),
        other => Err(format!("--phase setup|run, not {other:?}")),
    }
}

fn trials(arguments: &[String]) -> Result<(), String> {
    let mut options = CampaignOptions {
        trials: 200,
        seed: 1,
        random_share: 0.25,
        verbose: false,
    };
    let mut backends = Vec::new();
    let mut blobs_in_database = false;
    let mut iter = arguments.iter();
    while let Some(flag) = iter.next() {
        if flag == "--verbose" {
            options.verbose = true;
            continue;
        }
        if flag == "--blobs-in-database" {
            blobs_in_database = true;
            continue;
        }
        let value = iter.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--backend" => backends.push(value.clone()),
            "--trials" => options.trials = value.parse().map_err(|e| format!("--trials: {e}"))?,
            "--seed" => options.seed = value.parse().map_err(|e| format!("--seed: {e}"))?,
            "--random-share" => {
                options.random_share = value.parse().map_err(|e| format!("--random-share: {e}"))?;
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let exe = std::env::current_exe().map_err(|e| format!("finding this program: {e}"))?;
    for mut combination in metadata_combinations() {
        if !backends.is_empty() && !backends.iter().any(|b| b == combination.index) {
            continue;
        }
        if blobs_in_database {
            if !backends_for(Role::Blobs).contains(&combination.index) {
                continue;
            }
            combination.blobs = combination.index;
        }
        let report = run_combination(&exe, &combination, &options)?;
        println!("{}", report.summary());
    }
    Ok(())
}

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let result = match arguments.first().map(String::as_str) {
        Some("list-points") => {
            for point in oci_store::crash_points::all() {
                println!("{point}");
            }
            Ok(())
        }
        Some("worker") => worker(&arguments[1..]),
        Some("trials") => trials(&arguments[1..]),
        _ => Err("usage: crash list-points | worker ... | trials ...".to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("crash: {error}");
            ExitCode::FAILURE
        }
    }
}
