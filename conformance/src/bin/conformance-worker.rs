//! One process of the multi-process tests: opens the store, runs one mode, then prints its
//! statistics as JSON on stdout. Exits 1 with the failure on stderr.
//!
//! - `--mode workload` (the default): the mixed base-store workload
//!   (`conformance-worker --dir DIR --blobs fs --index sqlite --extra sqlite --kv sqlite
//!   --seed 7 --iterations 60 [--large]`).
//! - `--mode oci-import --layout PATH --ref NAME --iterations N`: imports ref NAME of the
//!   layout (or `oci-archive`) N times, checking it after each import.
//! - `--mode oci-gc --stop-file PATH --iterations N`: runs the OCI GC until PATH exists, at
//!   most N times.

use std::path::PathBuf;
use std::process::ExitCode;

use oci_store_conformance::matrix::Combination;
use oci_store_conformance::oci::processes::{run_collector, run_importer};
use oci_store_conformance::workload::{contents, run_workload};

enum Mode {
    Workload,
    OciImport,
    OciGc,
}

struct Arguments {
    dir: PathBuf,
    combination: Combination,
    mode: Mode,
    seed: u64,
    iterations: u64,
    large: bool,
    layout: Option<PathBuf>,
    ref_name: Option<String>,
    stop_file: Option<PathBuf>,
}

fn parse_arguments() -> Result<Arguments, String> {
    let mut dir = None;
    let mut roles: [Option<&'static str>; 4] = [None; 4];
    let mut mode = Mode::Workload;
    let mut seed = 1;
    let mut iterations = 50;
    let mut large = false;
    let mut layout = None;
    let mut ref_name = None;
    let mut stop_file = None;
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
            "--mode" => {
                mode = match value.as_str() {
                    "workload" => Mode::Workload,
                    "oci-import" => Mode::OciImport,
                    "oci-gc" => Mode::OciGc,
                    other => return Err(format!("unknown --mode {other}")),
                }
            }
            "--seed" => seed = value.parse().map_err(|e| format!("--seed {value}: {e}"))?,
            "--iterations" => {
                iterations = value
                    .parse()
                    .map_err(|e| format!("--iterations {value}: {e}"))?;
            }
            "--layout" => layout = Some(PathBuf::from(&value)),
            "--ref" => ref_name = Some(value),
            "--stop-file" => stop_file = Some(PathBuf::from(&value)),
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
        mode,
        seed,
        iterations,
        large,
        layout,
        ref_name,
        stop_file,
    })
}

fn run() -> Result<String, String> {
    let arguments = parse_arguments()?;
    let store = arguments
        .combination
        .open(&arguments.dir)
        .map_err(|e| format!("opening {}: {e}", arguments.dir.display()))?;
    let json = match arguments.mode {
        Mode::Workload => serde_json::to_string(&run_workload(
            &store,
            arguments.seed,
            arguments.iterations,
            contents(arguments.large),
        )?),
        Mode::OciImport => {
            let layout = arguments.layout.ok_or("--mode oci-import needs --layout")?;
            let ref_name = arguments.ref_name.ok_or("--mode oci-import needs --ref")?;
            serde_json::to_string(&run_importer(
                &store,
                &layout,
                &ref_name,
                arguments.iterations,
            )?)
        }
        Mode::OciGc => {
            let stop_file = arguments
                .stop_file
                .ok_or("--mode oci-gc needs --stop-file")?;
            serde_json::to_string(&run_collector(&store, &stop_file, arguments.iterations)?)
        }
    };
    json.map_err(|e| format!("printing statistics: {e}"))
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
