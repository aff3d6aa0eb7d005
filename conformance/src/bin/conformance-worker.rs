//! One process of the multi-process test: opens the store and runs the mixed workload, then
//! prints its statistics as JSON on stdout. Exits 1 with the failure on stderr.
//!
//! `conformance-worker --dir DIR --blobs fs --index sqlite --extra sqlite --kv sqlite
//!  --seed 7 --iterations 60 [--large]`

use std::path::PathBuf;
use std::process::ExitCode;

use oci_store_conformance::matrix::Combination;
use oci_store_conformance::workload::{contents, run_workload};

struct Arguments {
    dir: PathBuf,
    combination: Combination,
    seed: u64,
    iterations: u64,
    large: bool,
}

fn parse_arguments() -> Result<Arguments, String> {
    let mut dir = None;
    let mut roles: [Option<&'static str>; 4] = [None; 4];
    let mut seed = 1;
    let mut iterations = 50;
    let mut large = false;
    let mut arguments = std::env::args().skip(1);
    while let Some(flag) = arguments.next() {
        if flag == "--large" {
            large = true;
            continue;
        }
        let value = arguments
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))?;
        // Backend names live as long as the process; leaking them gives the `&'static str`
        // a `Combination` holds.
        let leaked = || -> &'static str { Box::leak(value.clone().into_boxed_str()) };
        match flag.as_str() {
            "--dir" => dir = Some(PathBuf::from(&value)),
            "--blobs" => roles[0] = Some(leaked()),
            "--index" => roles[1] = Some(leaked()),
            "--extra" => roles[2] = Some(leaked()),
            "--kv" => roles[3] = Some(leaked()),
            "--seed" => seed = value.parse().map_err(|e| format!("--seed {value}: {e}"))?,
            "--iterations" => {
                iterations = value
                    .parse()
                    .map_err(|e| format!("--iterations {value}: {e}"))?
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let role = |position: usize, name: &str| {
        roles[position].ok_or_else(|| format!("--{name} is required"))
    };
    Ok(Arguments {
        dir: dir.ok_or("--dir is required")?,
        combination: Combination {
            blobs: role(0, "blobs")?,
            index: role(1, "index")?,
            extra: role(2, "extra")?,
            kv: role(3, "kv")?,
        },
        seed,
        iterations,
        large,
    })
}

fn run() -> Result<String, String> {
    let arguments = parse_arguments()?;
    let store = arguments
        .combination
        .open(&arguments.dir)
        .map_err(|e| format!("opening {}: {e}", arguments.dir.display()))?;
    let stats = run_workload(
        &store,
        arguments.seed,
        arguments.iterations,
        contents(arguments.large),
    )?;
    serde_json::to_string(&stats).map_err(|e| format!("printing statistics: {e}"))
}

fn main() -> ExitCode {
    match run() {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("conformance-worker: {error}");
            ExitCode::FAILURE
        }
    }
}
