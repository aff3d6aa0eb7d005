//! Invariant 6, threads: eight threads run the mixed workload on one store at once.

use super::StoreFixture;
use crate::check::TestResult;
use crate::workload::{check_after_workload, contents, run_workload, WorkloadStats};

pub const THREADS: u64 = 8;
pub const ITERATIONS_PER_THREAD: u64 = 40;

pub fn threads_share_one_store(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let contents = contents(false);
    let results: Vec<Result<WorkloadStats, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|thread| {
                let store = &store;
                scope.spawn(move || {
                    run_workload(store, 1000 + thread, ITERATIONS_PER_THREAD, contents)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|panic| Err(crate::fixture::panic_message(&panic)))
            })
            .collect()
    });
    let mut participants = Vec::new();
    let mut failures = Vec::new();
    for (thread, result) in results.into_iter().enumerate() {
        match result {
            Ok(stats) => participants.push(stats),
            Err(error) => failures.push(format!("thread {thread}: {error}")),
        }
    }
    if !failures.is_empty() {
        return Err(failures.join("\n"));
    }
    check_after_workload(&store, &participants)
}
