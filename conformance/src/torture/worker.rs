//! One worker process of a torture run: opens the store, runs `threads` threads of random
//! operations until the deadline, each logging every operation to `logs/<thread>.jsonl`. A
//! watchdog thread notices an operation that runs past the time bound and writes
//! `stuck/<pid>-<thread>.txt` (the operation and how long it ran), for the orchestrator, which
//! takes the stacks of this process and ends the run.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::choose::next_op;
use super::event::{now_ns, Event};
use super::inputs::{seed_of, Inputs};
use super::ops::ThreadContext;
use super::own_model::OwnModel;
use crate::content::SeededRandom;
use crate::matrix::Combination;
use crate::Context;

#[derive(Clone, Debug)]
pub struct WorkerConfig {
    pub store_dir: PathBuf,
    pub work_dir: PathBuf,
    pub combination: Combination,
    pub process: usize,
    pub threads: usize,
    pub duration: Duration,
    pub seed: u64,
    pub op_timeout: Duration,
}

pub fn logs_dir(work: &Path) -> PathBuf {
    work.join("logs")
}

pub fn stuck_dir(work: &Path) -> PathBuf {
    work.join("stuck")
}

/// The operation a thread is running and since when.
type InFlight = Mutex<Option<(String, Instant)>>;

pub fn run_worker(config: &WorkerConfig) -> Result<(), String> {
    let inputs = Inputs::read(&config.work_dir)?;
    let store = config
        .combination
        .open(&config.store_dir)
        .context(format!("opening {}", config.store_dir.display()))?;
    let deadline = Instant::now() + config.duration;
    let slots: Vec<Arc<InFlight>> = (0..config.threads)
        .map(|_| Arc::new(Mutex::new(None)))
        .collect();
    let finished = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let watchdog = scope.spawn(|| watch(config, &slots, &finished));
        let threads: Vec<_> = (0..config.threads)
            .map(|thread| {
                let name = format!("p{}t{thread}", config.process);
                let slot = Arc::clone(&slots[thread]);
                let (store, inputs) = (&store, &inputs);
                scope.spawn(move || run_thread(config, &name, store, inputs, &slot, deadline))
            })
            .collect();
        let mut failures = Vec::new();
        for thread in threads {
            match thread.join() {
                Ok(Ok(())) => {}
                Ok(Err(error)) => failures.push(error),
                Err(_) => failures.push("a worker thread panicked".to_string()),
            }
        }
        finished.store(true, Ordering::Relaxed);
        let _ = watchdog.join();
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("\n"))
        }
    })
}

fn run_thread(
    config: &WorkerConfig,
    name: &str,
    store: &oci_store::Store,
    inputs: &Inputs,
    slot: &InFlight,
    deadline: Instant,
) -> Result<(), String> {
    let context = ThreadContext::new(name, store, inputs)?;
    let path = logs_dir(&config.work_dir).join(format!("{name}.jsonl"));
    let mut log = std::fs::File::create(&path).context(format!("creating {}", path.display()))?;
    let mut random = SeededRandom::new(config.seed ^ seed_of(name));
    let mut model = OwnModel::new();
    let mut op = context.begin();
    let mut seq = 0;
    loop {
        *slot.lock().expect("in-flight slot") = Some((format!("{op:?}"), Instant::now()));
        let start_ns = now_ns();
        let outcome = context.execute(&op);
        let end_ns = now_ns();
        *slot.lock().expect("in-flight slot") = None;
        // The model follows what the store answered, to choose the next arguments.
        model.judge(&op, &outcome);
        let event = Event {
            thread: name.to_string(),
            seq,
            start_ns,
            end_ns,
            op,
            outcome,
        };
        let mut line = serde_json::to_vec(&event).expect("events serialize");
        line.push(b'\n');
        log.write_all(&line)
            .context(format!("writing {}", path.display()))?;
        seq += 1;
        if Instant::now() >= deadline {
            return Ok(());
        }
        op = next_op(&mut random, &model);
    }
}

fn watch(config: &WorkerConfig, slots: &[Arc<InFlight>], finished: &AtomicBool) {
    let mut reported: Vec<Option<String>> = vec![None; slots.len()];
    while !finished.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(200));
        for (thread, slot) in slots.iter().enumerate() {
            let current = slot.lock().expect("in-flight slot").clone();
            let Some((op, since)) = current else {
                continue;
            };
            let elapsed = since.elapsed();
            if elapsed < config.op_timeout || reported[thread].as_ref() == Some(&op) {
                continue;
            }
            let name = format!("p{}t{thread}", config.process);
            let path =
                stuck_dir(&config.work_dir).join(format!("{}-{name}.txt", std::process::id()));
            let text = format!(
                "thread {name} (pid {}) has run {op} for {:.1} s (bound {} s)\n",
                std::process::id(),
                elapsed.as_secs_f64(),
                config.op_timeout.as_secs()
            );
            let _ = std::fs::write(&path, text);
            reported[thread] = Some(op);
        }
    }
}
