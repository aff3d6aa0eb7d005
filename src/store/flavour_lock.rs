//! The lock protocol between a flavour's mutations and its GC (DESIGN.md, concurrency
//! protocol), implemented once for every flavour.
//!
//! A flavour has a GC lock `locks/gc-<flavour>.lock`: every mutation holds it shared for its
//! whole run, the GC holds it exclusive, so a GC never sweeps what a mutation is writing.
//! flock grants new shared locks while an exclusive one waits, so back-to-back mutations would
//! starve the GC: both sides enter through a turnstile `locks/gc-<flavour>-turnstile.lock`.
//! A mutation holds the turnstile shared only for the moment of entry; a GC holds it
//! exclusive while the running mutations drain, so new ones queue behind it.
//!
//! The GC's wait is bounded: it polls both locks, and when its budget runs out it lets go of
//! everything and fails with [`StoreError::FlavourLockTimeout`], so one hung mutation (an
//! import stuck reading its input) cannot freeze every mutation of every process behind a
//! waiting GC. A call chain never takes the mutation lock twice: the second request would
//! wait behind a GC queued at the turnstile, which waits for the first.

use std::path::Path;
use std::time::{Duration, Instant};

use super::error::{StoreError, StoreResult};
use super::locks::{LockGuard, LockMode, LockPaths};

/// The longest pause between two tries while a GC polls for its locks.
const POLL_MAX: Duration = Duration::from_millis(50);

/// What a GC that gave up was waiting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlavourLockHolder {
    /// The turnstile: another GC of the same flavour is running or waiting.
    AnotherGc,
    /// The GC lock: mutations of the flavour are running.
    Mutations,
}

/// The GC lock of one flavour of one store.
#[derive(Clone, Debug)]
pub struct FlavourLock<'s> {
    paths: &'s LockPaths,
    gc_lock: String,
    turnstile: String,
}

impl<'s> FlavourLock<'s> {
    pub(super) fn new(paths: &'s LockPaths, flavour: &str) -> Self {
        FlavourLock {
            paths,
            gc_lock: format!("gc-{flavour}"),
            turnstile: format!("gc-{flavour}-turnstile"),
        }
    }

    /// The lock a mutation holds for its whole run (shared), entered through the turnstile.
    pub fn mutation(&self) -> StoreResult<LockGuard> {
        let turnstile = LockGuard::acquire(&self.paths.named(&self.turnstile), LockMode::Shared)?;
        let gc_lock = LockGuard::acquire(&self.paths.named(&self.gc_lock), LockMode::Shared)?;
        drop(turnstile);
        Ok(gc_lock)
    }

    /// The lock a GC holds (exclusive), waiting at most `wait` for running mutations (and
    /// another GC) to finish; new mutations queue behind it meanwhile.
    pub fn gc(&self, wait: Duration) -> StoreResult<LockGuard> {
        let started = Instant::now();
        let deadline = started + wait;
        let turnstile = poll_exclusive(
            &self.paths.named(&self.turnstile),
            started,
            deadline,
            FlavourLockHolder::AnotherGc,
        )?;
        let gc_lock = poll_exclusive(
            &self.paths.named(&self.gc_lock),
            started,
            deadline,
            FlavourLockHolder::Mutations,
        )?;
        drop(turnstile);
        Ok(gc_lock)
    }
}

/// Tries for an exclusive lock until `deadline`, pausing a little longer each time.
fn poll_exclusive(
    path: &Path,
    started: Instant,
    deadline: Instant,
    holder: FlavourLockHolder,
) -> StoreResult<LockGuard> {
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(guard) = LockGuard::try_acquire(path, LockMode::Exclusive)? {
            return Ok(guard);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(StoreError::FlavourLockTimeout {
                lock: path.to_path_buf(),
                holder,
                waited_secs: now.duration_since(started).as_secs(),
            });
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(POLL_MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gc_gives_up_after_its_wait_and_then_lets_queued_mutations_in() {
        let dir = tempfile::tempdir().unwrap();
        let paths = LockPaths::new(dir.path()).unwrap();
        let lock = FlavourLock::new(&paths, "test");
        let hung_mutation = lock.mutation().unwrap();
        std::thread::scope(|scope| {
            let gc = scope.spawn(|| lock.gc(Duration::from_millis(500)));
            // A mutation arriving while the GC waits queues behind it at the turnstile...
            std::thread::sleep(Duration::from_millis(100));
            let queued = scope.spawn(|| lock.mutation().map(drop));
            match gc.join().unwrap() {
                Err(StoreError::FlavourLockTimeout { lock, holder, .. }) => {
                    assert!(lock.ends_with("gc-test.lock"), "{}", lock.display());
                    assert_eq!(holder, FlavourLockHolder::Mutations);
                }
                other => panic!("the GC should have given up, got {other:?}"),
            }
            // ...and gets in once the GC has given up.
            queued.join().unwrap().unwrap();
        });
        drop(hung_mutation);
        lock.gc(Duration::from_millis(500)).unwrap();
    }
}
