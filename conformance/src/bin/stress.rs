//! The torture command (issue 10): random operations from several processes × threads on one
//! store, then a check of every invariant from what each worker saw acknowledged.
//!
//! ```text
//! stress [--processes 8] [--threads 4] [--seconds 60] [--backend sqlite|lmdb]
//!        [--blobs fs|sqlite|lmdb] [--index|--extra|--kv NAME] [--seed N] [--op-timeout 120]
//!        [--dir DIR] [--keep]
//! ```
//!
//! `--backend` chooses the metadata backend (index, extra data, key/value; default `sqlite`),
//! `--blobs` the blob store (default `fs`); `--index`, `--extra` and `--kv` override one
//! metadata role, for mixed combinations. The store and the work files go to a temporary directory (removed at
//! the end unless `--keep`), or to `--dir`. Prints operation counts, p50/p99/max latency per
//! operation, errors (expected ones by class, unexpected ones in full) and every violation;
//! exits 1 on any violation, unexpected error or stuck operation, 2 on bad arguments.
//!
//! `stress --worker ...` is one worker process, started by the command itself.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use oci_store_conformance::matrix::Combination;
use oci_store_conformance::torture::{run_stress, run_worker, StressConfig, WorkerConfig};

/// Every flag that takes a value (the worker's included).
const KNOWN: &[&str] = &[
    "--processes",
    "--threads",
    "--seconds",
    "--backend",
    "--blobs",
    "--index",
    "--extra",
    "--kv",
    "--seed",
    "--op-timeout",
    "--dir",
    "--store",
    "--work",
    "--process",
    "--millis",
];

#[derive(Default)]
struct Arguments {
    worker: bool,
    values: std::collections::BTreeMap<String, String>,
    keep: bool,
}

impl Arguments {
    fn parse() -> Result<Arguments, String> {
        let mut arguments = Arguments::default();
        let mut input = std::env::args().skip(1);
        while let Some(flag) = input.next() {
            match flag.as_str() {
                "--worker" => arguments.worker = true,
                "--keep" => arguments.keep = true,
                "-h" | "--help" => return Err(String::new()),
                name if KNOWN.contains(&name) => {
                    let value = input
                        .next()
                        .ok_or_else(|| format!("{name} needs a value"))?;
                    arguments.values.insert(name[2..].to_string(), value);
                }
                other => return Err(format!("unknown argument {other}")),
            }
        }
        Ok(arguments)
    }

    fn text(&self, name: &str, default: &str) -> String {
        self.values
            .get(name)
            .cloned()
            .unwrap_or_else(|| default.to_string())
    }

    fn number(&self, name: &str, default: u64) -> Result<u64, String> {
        match self.values.get(name) {
            Some(value) => value.parse().map_err(|e| format!("--{name} {value}: {e}")),
            None => Ok(default),
        }
    }

    fn path(&self, name: &str) -> Result<PathBuf, String> {
        self.values
            .get(name)
            .map(PathBuf::from)
            .ok_or_else(|| format!("--{name} is required"))
    }

    /// Backend names live as long as the process; leaking them gives a `Combination`'s
    /// `&'static str`.
    fn backend(&self, name: &str, default: &str) -> &'static str {
        Box::leak(self.text(name, default).into_boxed_str())
    }
}

const USAGE: &str = "usage: stress [--processes 8] [--threads 4] [--seconds 60] \
[--backend sqlite|lmdb] [--blobs fs|sqlite|lmdb] [--index|--extra|--kv NAME] [--seed N] [--op-timeout SECONDS] [--dir DIR] \
[--keep]";

fn worker(arguments: &Arguments) -> Result<(), String> {
    let config = WorkerConfig {
        store_dir: arguments.path("store")?,
        work_dir: arguments.path("work")?,
        combination: Combination {
            blobs: arguments.backend("blobs", "fs"),
            index: arguments.backend("index", "sqlite"),
            extra: arguments.backend("extra", "sqlite"),
            kv: arguments.backend("kv", "sqlite"),
        },
        process: arguments.number("process", 0)? as usize,
        threads: arguments.number("threads", 1)? as usize,
        duration: Duration::from_millis(arguments.number("millis", 1000)?),
        seed: arguments.number("seed", 1)?,
        op_timeout: Duration::from_secs(arguments.number("op-timeout", 120)?),
    };
    run_worker(&config)
}

fn orchestrate(arguments: &Arguments) -> Result<bool, String> {
    let metadata = arguments.backend("backend", "sqlite");
    let config = StressConfig {
        worker_exe: std::env::current_exe().map_err(|e| format!("finding this program: {e}"))?,
        combination: Combination {
            blobs: arguments.backend("blobs", "fs"),
            index: arguments.backend("index", metadata),
            extra: arguments.backend("extra", metadata),
            kv: arguments.backend("kv", metadata),
        },
        processes: arguments.number("processes", 8)? as usize,
        threads: arguments.number("threads", 4)? as usize,
        duration: Duration::from_secs(arguments.number("seconds", 60)?),
        seed: arguments.number("seed", 20_261_201)?,
        op_timeout: Duration::from_secs(arguments.number("op-timeout", 120)?),
    };
    let (root, temporary) = match arguments.values.get("dir") {
        Some(dir) => (PathBuf::from(dir), None),
        None => {
            let dir = tempfile::Builder::new()
                .prefix("oci-store-stress-")
                .tempdir()
                .map_err(|e| format!("creating a temporary directory: {e}"))?;
            (dir.path().to_path_buf(), Some(dir))
        }
    };
    eprintln!(
        "stress: {} processes x {} threads for {} s on {} in {}",
        config.processes,
        config.threads,
        config.duration.as_secs(),
        config.combination.label(),
        root.display()
    );
    let report = run_stress(&config, &root)?;
    print!("{}", report.render());
    if arguments.keep {
        if let Some(dir) = temporary {
            eprintln!("stress: kept {}", dir.keep().display());
        }
    }
    Ok(report.is_clean())
}

fn main() -> ExitCode {
    let arguments = match Arguments::parse() {
        Ok(arguments) => arguments,
        Err(error) => {
            if !error.is_empty() {
                eprintln!("stress: {error}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    if arguments.worker {
        return match worker(&arguments) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("stress worker: {error}");
                ExitCode::FAILURE
            }
        };
    }
    match orchestrate(&arguments) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("stress: {error}");
            ExitCode::FAILURE
        }
    }
}
