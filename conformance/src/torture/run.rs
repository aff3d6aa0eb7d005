//! The orchestrator: prepares the shared inputs, starts the worker processes (the `stress`
//! binary again, with `--worker`), watches for operations past the time bound and for workers
//! that do not end, then judges the logs and checks the final state.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::final_state::check_final_state;
use super::inputs::Inputs;
use super::judge::{judge_events, read_logs};
use super::report::Report;
use super::stacks::stacks_of;
use super::worker::{logs_dir, stuck_dir};
use crate::matrix::Combination;
use crate::Context;

#[derive(Clone, Debug)]
pub struct StressConfig {
    /// The `stress` binary, started again as each worker.
    pub worker_exe: PathBuf,
    pub combination: Combination,
    pub processes: usize,
    pub threads: usize,
    pub duration: Duration,
    pub seed: u64,
    /// An operation running longer than this is reported stuck, with its process's stacks.
    pub op_timeout: Duration,
}

/// Where a run keeps its store and its work files (inputs, logs, scratch).
pub struct RunDirs {
    pub store: PathBuf,
    pub work: PathBuf,
}

impl RunDirs {
    pub fn under(root: &Path) -> RunDirs {
        RunDirs {
            store: root.join("store"),
            work: root.join("work"),
        }
    }
}

/// What the workers left: logs in `work/logs`, and what the watch saw.
pub struct WorkersRun {
    pub inputs: Inputs,
    pub stuck: Vec<String>,
    pub worker_failures: Vec<String>,
    pub wall_seconds: f64,
}

/// Runs the workers to the end (or until one is stuck).
pub fn run_workers(config: &StressConfig, dirs: &RunDirs) -> Result<WorkersRun, String> {
    for dir in [&dirs.work, &logs_dir(&dirs.work), &stuck_dir(&dirs.work)] {
        std::fs::create_dir_all(dir).context(format!("creating {}", dir.display()))?;
    }
    let inputs = Inputs::prepare(&dirs.work)?;
    // Created before the workers start, so they race on content, not on creation.
    drop(
        config
            .combination
            .open(&dirs.store)
            .context(format!("creating the store in {}", dirs.store.display()))?,
    );
    let started = Instant::now();
    let mut workers = Vec::new();
    for process in 0..config.processes {
        workers.push((process, spawn_worker(config, dirs, process)?));
    }
    let mut stuck = Vec::new();
    let give_up = started + config.duration + config.op_timeout + Duration::from_secs(30);
    let mut running: Vec<(usize, Child)> = workers;
    let mut worker_failures = Vec::new();
    while !running.is_empty() {
        std::thread::sleep(Duration::from_millis(200));
        let mut still = Vec::new();
        for (process, mut child) in running {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => {}
                Ok(Some(status)) => worker_failures.push(format!(
                    "worker {process} exited with {status}: {}",
                    stderr_of(&dirs.work, process)
                )),
                Ok(None) => still.push((process, child)),
                Err(error) => {
                    worker_failures.push(format!("waiting for worker {process}: {error}"));
                }
            }
        }
        running = still;
        let reports = stuck_reports(&dirs.work);
        let overdue = Instant::now() > give_up;
        if reports.is_empty() && !overdue {
            continue;
        }
        for (pid, text) in reports {
            stuck.push(format!("{text}stacks of pid {pid}:\n{}", stacks_of(pid)));
        }
        if overdue {
            for (process, child) in &running {
                stuck.push(format!(
                    "worker {process} (pid {}) did not end {} s after its deadline; stacks:\n{}",
                    child.id(),
                    (config.op_timeout + Duration::from_secs(30)).as_secs(),
                    stacks_of(child.id())
                ));
            }
        }
        // A stuck run is over: end the workers this run started.
        for (_, child) in &mut running {
            let _ = child.kill();
            let _ = child.wait();
        }
        running.clear();
    }
    Ok(WorkersRun {
        inputs,
        stuck,
        worker_failures,
        wall_seconds: started.elapsed().as_secs_f64(),
    })
}

fn spawn_worker(config: &StressConfig, dirs: &RunDirs, process: usize) -> Result<Child, String> {
    let stderr_path = dirs.work.join(format!("worker-{process}.stderr"));
    let stderr = std::fs::File::create(&stderr_path)
        .context(format!("creating {}", stderr_path.display()))?;
    let combination = &config.combination;
    Command::new(&config.worker_exe)
        .arg("--worker")
        .arg("--store")
        .arg(&dirs.store)
        .arg("--work")
        .arg(&dirs.work)
        .args(["--process", &process.to_string()])
        .args(["--threads", &config.threads.to_string()])
        .args(["--millis", &config.duration.as_millis().to_string()])
        .args(["--seed", &config.seed.to_string()])
        .args(["--op-timeout", &config.op_timeout.as_secs().to_string()])
        .args(["--blobs", combination.blobs])
        .args(["--index", combination.index])
        .args(["--extra", combination.extra])
        .args(["--kv", combination.kv])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .context(format!("starting worker {process}"))
}

fn stderr_of(work: &Path, process: usize) -> String {
    std::fs::read_to_string(work.join(format!("worker-{process}.stderr")))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// `(pid, text)` of each stuck report the watchdogs wrote.
fn stuck_reports(work: &Path) -> Vec<(u32, String)> {
    let Ok(entries) = std::fs::read_dir(stuck_dir(work)) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let pid = name.split('-').next()?.parse().ok()?;
            Some((pid, std::fs::read_to_string(entry.path()).ok()?))
        })
        .collect()
}

/// Judges the logs of a finished run and checks the store's final state.
pub fn check_run(config: &StressConfig, dirs: &RunDirs, run: &WorkersRun) -> Report {
    let mut report = Report {
        label: format!(
            "{} ({} processes x {} threads, {} s, seed {})",
            config.combination.label(),
            config.processes,
            config.threads,
            config.duration.as_secs_f64(),
            config.seed
        ),
        stuck: run.stuck.clone(),
        worker_failures: run.worker_failures.clone(),
        wall_seconds: run.wall_seconds,
        ..Report::default()
    };
    let events = match read_logs(&logs_dir(&dirs.work)) {
        Ok(events) => events,
        Err(error) => {
            report.final_violations.push(error);
            return report;
        }
    };
    let (models, history) = judge_events(&events, &mut report);
    match config.combination.open(&dirs.store) {
        Ok(store) => {
            report.final_violations =
                check_final_state(&store, &config.combination, &run.inputs, &models, &history);
        }
        Err(error) => report
            .final_violations
            .push(format!("reopening the store: {error}")),
    }
    report
}

/// A whole run in `root`: workers, then the checks.
pub fn run_stress(config: &StressConfig, root: &Path) -> Result<Report, String> {
    let dirs = RunDirs::under(root);
    let run = run_workers(config, &dirs)?;
    Ok(check_run(config, &dirs, &run))
}
