//! The store under test, driven as users drive it: the release `oci-store` binary, one whole
//! process per command, for each backend configuration of the OCI sections.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use oci_store::traits::registry::find_backend;
use oci_store::traits::Role;

use super::measure::BenchResult;
use super::process::{self, Run};
use super::settings::Settings;

/// Blob content in `fs` (the default) and metadata in `metadata`.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    pub label: &'static str,
    pub metadata: &'static str,
}

/// The default backends, then LMDB metadata.
const CONFIGS: [Config; 2] = [
    Config {
        label: "fs+sqlite",
        metadata: "sqlite",
    },
    Config {
        label: "fs+lmdb",
        metadata: "lmdb",
    },
];

/// The configurations registered and selected (`OCI_STORE_BENCH_BACKENDS` names metadata
/// backends here).
pub fn configs(settings: &Settings) -> Vec<Config> {
    CONFIGS
        .into_iter()
        .filter(|config| settings.wants_backend(config.metadata))
        .filter(|config| find_backend(config.metadata, Role::Index).is_ok())
        .collect()
}

/// The `oci-store` binary cargo built with this bench (bench profile = release).
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_oci-store"))
}

/// `oci-store --store STORE --backend M --blobs fs ARGS…`.
pub fn command<S: AsRef<OsStr>>(store: &Path, config: Config, args: &[S]) -> Command {
    let mut command = Command::new(binary());
    command
        .arg("--store")
        .arg(store)
        .arg("--backend")
        .arg(config.metadata)
        .arg("--blobs")
        .arg("fs")
        .args(args);
    command
}

/// Runs one command against the store, timed and measured.
pub fn run<S: AsRef<OsStr>>(store: &Path, config: Config, args: &[S]) -> BenchResult<Run> {
    process::run(&mut command(store, config, args))
}

/// Creates an empty store (untimed), so a timed command measures its own work, not creation.
pub fn create_store(store: &Path, config: Config) -> BenchResult<()> {
    run(store, config, &["stats"]).map(|_| ())
}

/// How `rm` takes several refs in one call, if it does: repeated `--ref`, or `--from-file`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MultiRemove {
    RepeatedRef,
    FromFile,
}

/// Reads `oci-store rm --help`: `--from-file` is used when listed; repeated `--ref` when the
/// help says the option repeats (clap prints `<REF>...`, or the text says "repeat"/"several"/
/// "multiple").
pub fn multi_remove() -> BenchResult<Option<MultiRemove>> {
    let help = process::output(Command::new(binary()).args(["rm", "--help"]))?;
    if help.contains("--from-file") {
        return Ok(Some(MultiRemove::FromFile));
    }
    let ref_lines: Vec<&str> = help.lines().filter(|l| l.contains("--ref")).collect();
    let repeats = ref_lines.iter().any(|line| {
        let lower = line.to_lowercase();
        line.contains("<REF>...")
            || ["repeat", "several", "multiple", "more than one"]
                .iter()
                .any(|word| lower.contains(word))
    });
    Ok(repeats.then_some(MultiRemove::RepeatedRef))
}

/// `rm` of every ref in `refs` in one process.
pub fn remove_refs(
    store: &Path,
    config: Config,
    how: MultiRemove,
    refs: &[String],
    scratch: &Path,
) -> BenchResult<Run> {
    let mut args: Vec<String> = vec!["rm".to_string()];
    match how {
        MultiRemove::RepeatedRef => {
            for name in refs {
                args.push("--ref".to_string());
                args.push(name.clone());
            }
        }
        MultiRemove::FromFile => {
            let list = scratch.join("refs-to-remove.txt");
            std::fs::write(&list, refs.join("\n") + "\n")?;
            args.push("--from-file".to_string());
            args.push(list.to_string_lossy().into_owned());
        }
    }
    run(store, config, &args)
}
