//! The server's own retention: the configured prune policy applied every `interval`, and at
//! once when a write (a push, a mirrored blob) leaves the file system above the high
//! watermark. One prune at a time, on the blocking pool; each run that removes something, and
//! each that fails, is logged with what it freed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::state::SharedState;
use crate::store::retention::{FsSpace, RetentionPolicy};
use crate::stores::oci::{OciStore, PruneOptions};

/// When the server prunes, and by which policy.
#[derive(Clone, Debug)]
pub struct PruneSchedule {
    /// The policy (`[prune]` in the config file).
    pub policy: RetentionPolicy,
    /// How often it is applied.
    pub interval: Duration,
}

/// How often the watermark is looked at between writes: a write that crosses it is noticed
/// at once (the access log pokes), this catches space taken by other processes.
const WATERMARK_CHECK: Duration = Duration::from_secs(15);

/// The server's pruner: the schedule, and the wake-up writes give it.
#[derive(Default)]
pub struct Pruner {
    schedule: Option<PruneSchedule>,
    wrote: Notify,
    running: AtomicBool,
}

impl Pruner {
    pub fn new(schedule: Option<PruneSchedule>) -> Pruner {
        Pruner {
            schedule,
            ..Pruner::default()
        }
    }

    /// A write landed: the pruner looks at the watermark now.
    pub fn wrote(&self) {
        if self.schedule.is_some() {
            self.wrote.notify_one();
        }
    }
}

/// Runs the schedule until the server stops (the task is aborted).
pub async fn run(state: SharedState) {
    let Some(schedule) = state.pruner.schedule.clone() else {
        return;
    };
    let mut last_run = Instant::now();
    loop {
        let wait = schedule.interval.min(WATERMARK_CHECK);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = state.pruner.wrote.notified() => {}
        }
        let due = last_run.elapsed() >= schedule.interval;
        if due || above_high_watermark(&state, &schedule.policy) {
            last_run = Instant::now();
            prune_once(
                &state,
                &schedule.policy,
                if due { "scheduled" } else { "high watermark" },
            )
            .await;
        }
    }
}

fn above_high_watermark(state: &SharedState, policy: &RetentionPolicy) -> bool {
    let Some(marks) = policy.watermarks else {
        return false;
    };
    FsSpace::of(state.store.dir())
        .is_ok_and(|fs| fs.used_bytes() as f64 > fs.total_bytes as f64 * marks.high_percent / 100.0)
}

/// One prune on the blocking pool, unless one is running already; logged.
async fn prune_once(state: &SharedState, policy: &RetentionPolicy, why: &'static str) {
    if state.pruner.running.swap(true, Ordering::AcqRel) {
        return;
    }
    let store = state.store;
    let options = PruneOptions {
        policy: policy.clone(),
        ..PruneOptions::default()
    };
    let outcome = tokio::task::spawn_blocking(move || OciStore::new(store).prune(&options)).await;
    state.pruner.running.store(false, Ordering::Release);
    match outcome {
        Ok(Ok(report)) if report.removed.is_empty() => {}
        Ok(Ok(report)) => eprintln!(
            "prune ({why}): removed {} refs ({}), freed {} bytes",
            report.removed.len(),
            report.removed.join(", "),
            report.freed_bytes()
        ),
        Ok(Err(error)) => eprintln!("warning: prune ({why}) failed: {error}"),
        Err(join) => eprintln!("warning: prune ({why}) failed: {join}"),
    }
}
