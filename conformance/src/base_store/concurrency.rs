//! Invariant 6, threads: eight threads run the mixed workload on one store at once; and
//! opening a store that another process is creating.

use super::StoreFixture;
use crate::check::TestResult;
use crate::workload::{check_after_workload, contents, run_workload, WorkloadStats};
use crate::Context;

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

/// How long opening may take beside a process that holds the store open.
pub const OPEN_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// Invariant 6 at creation: a process that finds no `store.json` while another is creating
/// the store must open it once it exists, not wait until the creator closes it. The creator
/// is played here by a shared flock on `store.lock` held throughout (what a process keeps
/// while it has the store open: a GC loop, a server) and a `store.json` that appears a moment
/// after the opener started.
pub fn open_beside_a_long_lived_creator(fixture: &StoreFixture) -> TestResult {
    let dir = fixture.dir();
    let lock_path = dir.join("store.lock");
    let creator_lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .context(format!("opening {}", lock_path.display()))?;
    // std's `lock_shared` is flock(2), the lock the store itself takes.
    creator_lock
        .lock_shared()
        .context("taking the store lock shared")?;
    // The configuration the creator writes: that of a store of this kind made elsewhere.
    let elsewhere = tempfile::tempdir().context("creating a temporary directory")?;
    drop(fixture.open_in(elsewhere.path())?);

    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::scope(|scope| -> TestResult {
        scope.spawn(move || {
            // Sent whatever happens; the receiver may have given up already.
            let _ = sender.send(fixture.open().map(drop));
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        let staged = dir.join("store.json.creating");
        std::fs::copy(elsewhere.path().join("store.json"), &staged)
            .context("staging store.json")?;
        std::fs::rename(&staged, dir.join("store.json")).context("writing store.json")?;
        let opened = receiver.recv_timeout(OPEN_DEADLINE);
        // Let a blocked opener finish before the scope joins it.
        drop(creator_lock);
        match opened {
            Ok(result) => result,
            Err(_) => crate::fail!(
                "opening did not finish within {OPEN_DEADLINE:?} while another process held \
                 the store open: it waits for the creator to close the store"
            ),
        }
    })
}
