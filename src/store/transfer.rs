//! The transfer pipeline: the one bounded parallel worker pool that moves blobs (layout import,
//! pull, push; ready for a registry server's uploads and a mirror's fills, DESIGN.md "One
//! mechanism per protocol").
//!
//! [`Pipeline::run`] hands the items to at most [`Pipeline::new`]'s number of worker threads,
//! each taking the next position from one atomic counter, and commits what they produce on the
//! calling thread, batch by batch (each batch one call of the commit step, typically one locked
//! step of an [`Operation`](super::Operation)). Working and committing overlap; the results
//! waiting for the committer are bounded, and so are the open files they may hold.
//!
//! - First error by position: when an item fails, no worker takes a new item, and the error
//!   returned is that of the failed item first in the order of the items (whichever thread
//!   met it first), else the commit step's.
//! - Drain: after a failure or a cancellation, the committer receives until every worker has
//!   stopped, so everything produced and not committed (staging files, locks) is dropped
//!   before `run` returns.
//! - Cancellation ([`Pipeline::cancelled_by`]): no item starts once the flag is set, nothing
//!   more is committed, and `run` fails with [`StoreError::Cancelled`].
//! - Progress: each item done is a [`Progress::item_done`]; the work reports its own bytes or
//!   events (it knows the digest and sizes).
//! - A worker that must wait for something a result may hold until its commit (a fetch lock,
//!   which another pipeline of this process or of another may hold the same way) waits through
//!   [`Worker::while_waiting`]: what is queued is committed at once, and so is every result
//!   that arrives while any worker waits. A result's hold is then never kept waiting for a
//!   commit that waits for a worker, so batching cannot make pipelines wait on each other for
//!   good (two pulls of the same blobs in two processes).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};

use super::error::StoreError;
use super::progress::{Progress, NO_PROGRESS};

/// Most results handed to one commit step: bounds the time other writers of the same stripes
/// wait. Larger batches write fewer database pages per blob (records of random digests land on
/// every page of the index either way).
const MAX_COMMIT_BATCH: usize = 2048;

/// Fewest results per commit step, whatever the descriptor limit.
const MIN_COMMIT_BATCH: usize = 64;

/// Descriptors left for everything else: the 256 digest-lock files a commit step may hold,
/// the databases, the sources being read.
const RESERVED_DESCRIPTORS: u64 = 512;

/// How many results one commit step takes when each holds `descriptors` open files until it is
/// committed (a staging file; a lock) and up to a quarter of a batch more waits beyond the one
/// being gathered: sized to the process's descriptor limit.
pub fn commit_batch(descriptors: usize) -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct we pass.
    let known = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) } == 0;
    let soft = if known { limit.rlim_cur } else { 1024 };
    let spare = soft.saturating_sub(RESERVED_DESCRIPTORS) * 2 / 3;
    let per_result = descriptors.max(1) as u64;
    usize::try_from(spare / per_result)
        .unwrap_or(MAX_COMMIT_BATCH)
        .clamp(MIN_COMMIT_BATCH, MAX_COMMIT_BATCH)
}

/// How a set of items moves: worker threads, commit batches, cancellation, progress.
#[derive(Clone, Copy)]
pub struct Pipeline<'c> {
    workers: usize,
    batch: usize,
    cancel: Option<&'c AtomicBool>,
    progress: &'c dyn Progress,
}

enum Message<R, E> {
    Done(usize, Result<R, E>),
    CommitWaiting,
}

/// What a work item gets besides its item: a way to wait without holding up commits.
pub struct Worker<'w, R, E> {
    sender: &'w SyncSender<Message<R, E>>,
    /// Workers waiting in [`Worker::while_waiting`] now.
    waiting: &'w AtomicUsize,
}

impl<R, E> Worker<'_, R, E> {
    /// Runs `wait` (a blocking wait for something a result may hold until its commit: a lock
    /// that results of this pipeline, or of another process's, keep) with commits unbatched:
    /// what is queued is committed first, and every result arriving meanwhile as it arrives.
    pub fn while_waiting<T>(&self, wait: impl FnOnce() -> T) -> T {
        // Counted before the request is queued: a result the committer takes after the
        // request sees the count, or the wait is already over.
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let _ = self.sender.send(Message::CommitWaiting);
        let result = wait();
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        result
    }
}

impl<'c> Pipeline<'c> {
    /// `workers` threads (at least one), batches sized for one open file per waiting result.
    pub fn new(workers: usize) -> Self {
        Pipeline {
            workers: workers.max(1),
            batch: commit_batch(1),
            cancel: None,
            progress: &NO_PROGRESS,
        }
    }

    /// Each waiting result holds `descriptors` open files (batches shrink to match).
    pub fn holding_descriptors(mut self, descriptors: usize) -> Self {
        self.batch = commit_batch(descriptors);
        self
    }

    #[cfg(any(test, feature = "test-support"))]
    /// Stops when `cancel` becomes true: no new item starts, nothing more is committed.
    pub fn cancelled_by(mut self, cancel: &'c AtomicBool) -> Self {
        self.cancel = Some(cancel);
        self
    }

    /// Reports an item done to `progress` as each item ends.
    pub fn with_progress(mut self, progress: &'c dyn Progress) -> Self {
        self.progress = progress;
        self
    }

    fn cancelled(&self) -> bool {
        self.cancel.is_some_and(|flag| flag.load(Ordering::Relaxed))
    }

    /// Runs `work` on every item on the worker threads and `commit` on batches of their
    /// results on this thread, in the order they arrive (see the module documentation).
    pub fn run<T, R, E>(
        &self,
        items: &[T],
        work: impl Fn(&T, &Worker<'_, R, E>) -> Result<R, E> + Sync,
        mut commit: impl FnMut(Vec<R>) -> Result<(), E>,
    ) -> Result<(), E>
    where
        T: Sync,
        R: Send,
        E: Send + From<StoreError>,
    {
        let next = AtomicUsize::new(0);
        let waiting = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let (sender, receiver) = sync_channel::<Message<R, E>>((self.batch / 4).max(self.workers));
        let mut work_error: Option<(usize, E)> = None;
        let mut commit_error: Option<E> = None;
        std::thread::scope(|scope| {
            for _ in 0..self.workers.min(items.len()) {
                let sender = sender.clone();
                let (next, stop, work, waiting) = (&next, &stop, &work, &waiting);
                scope.spawn(move || {
                    let worker = Worker {
                        sender: &sender,
                        waiting,
                    };
                    while !stop.load(Ordering::Relaxed) && !self.cancelled() {
                        let position = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(position) else {
                            break;
                        };
                        let result = work(item, &worker);
                        self.progress.item_done();
                        if result.is_err() {
                            stop.store(true, Ordering::Relaxed);
                        }
                        if sender.send(Message::Done(position, result)).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(sender);
            let mut pending = Vec::with_capacity(self.batch);
            let mut commit_pending = |pending: &mut Vec<R>| {
                if pending.is_empty() || stop.load(Ordering::Relaxed) || self.cancelled() {
                    return;
                }
                if let Err(error) = commit(std::mem::take(pending)) {
                    stop.store(true, Ordering::Relaxed);
                    commit_error = Some(error);
                }
            };
            // Receives until every worker has stopped: after a failure, what they produced is
            // dropped here, not left behind.
            for message in receiver {
                match message {
                    Message::Done(_, Ok(result)) => {
                        if stop.load(Ordering::Relaxed) || self.cancelled() {
                            continue;
                        }
                        pending.push(result);
                        if pending.len() >= self.batch || waiting.load(Ordering::SeqCst) > 0 {
                            commit_pending(&mut pending);
                        }
                    }
                    Message::Done(position, Err(error)) => {
                        if work_error
                            .as_ref()
                            .is_none_or(|(first, _)| position < *first)
                        {
                            work_error = Some((position, error));
                        }
                    }
                    Message::CommitWaiting => commit_pending(&mut pending),
                }
            }
            commit_pending(&mut pending);
        });
        if let Some((_, error)) = work_error {
            return Err(error);
        }
        if let Some(error) = commit_error {
            return Err(error);
        }
        if self.cancelled() {
            return Err(StoreError::Cancelled.into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum TestError {
        Item(usize),
        Store(String),
    }

    impl From<StoreError> for TestError {
        fn from(error: StoreError) -> Self {
            TestError::Store(error.to_string())
        }
    }

    #[test]
    fn every_result_is_committed_once_in_batches() {
        let items: Vec<usize> = (0..1000).collect();
        let mut committed = Vec::new();
        let mut batches = 0;
        Pipeline::new(4)
            .run(
                &items,
                |item, _| Ok::<_, TestError>(item * 2),
                |batch| {
                    batches += 1;
                    committed.extend(batch);
                    Ok(())
                },
            )
            .unwrap();
        committed.sort_unstable();
        assert_eq!(committed, (0..1000).map(|n| n * 2).collect::<Vec<_>>());
        assert!(batches < 1000, "{batches} commit steps for 1000 results");
    }

    #[test]
    fn the_error_returned_is_the_first_by_position() {
        let items: Vec<usize> = (0..200).collect();
        let result = Pipeline::new(4).run(
            &items,
            |item, _| match *item {
                // The later failure is met first (the earlier one waits a little).
                150 => Err(TestError::Item(150)),
                120 => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    Err(TestError::Item(120))
                }
                n => Ok(n),
            },
            |_| Ok(()),
        );
        assert_eq!(result, Err(TestError::Item(120)));
    }

    #[test]
    fn a_cancelled_run_starts_nothing_more_and_says_so() {
        let cancel = AtomicBool::new(false);
        let started = AtomicUsize::new(0);
        let items: Vec<usize> = (0..10_000).collect();
        let result = Pipeline::new(2).cancelled_by(&cancel).run(
            &items,
            |item, _| {
                started.fetch_add(1, Ordering::Relaxed);
                if *item == 10 {
                    cancel.store(true, Ordering::Relaxed);
                }
                Ok::<_, TestError>(())
            },
            |_| Ok(()),
        );
        assert!(matches!(result, Err(TestError::Store(ref m)) if m.contains("cancelled")));
        assert!(started.load(Ordering::Relaxed) < 100);
    }

    #[test]
    fn a_worker_waiting_on_what_a_queued_result_holds_gets_it_committed() {
        // Each result holds a token until committed; item 1 waits until item 0's is released.
        let released = AtomicBool::new(false);
        let items = [0usize, 1];
        Pipeline::new(2)
            .run(
                &items,
                |item, worker| {
                    if *item == 1 {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        worker.while_waiting(|| {
                            while !released.load(Ordering::Relaxed) {
                                std::thread::yield_now();
                            }
                        });
                    }
                    Ok::<_, TestError>(*item)
                },
                |batch| {
                    if batch.contains(&0) {
                        released.store(true, Ordering::Relaxed);
                    }
                    Ok(())
                },
            )
            .unwrap();
        assert!(released.load(Ordering::Relaxed));
    }

    /// A token held by a result until its commit, like a fetch lock; waiting for it gives up
    /// after a while, so a cycle fails the test instead of hanging it.
    struct Token(std::sync::Mutex<Option<&'static str>>);

    impl Token {
        fn try_take(&self, by: &'static str) -> bool {
            let mut holder = self.0.lock().unwrap();
            if holder.is_some() {
                return false;
            }
            *holder = Some(by);
            true
        }

        fn take_within(&self, by: &'static str, limit: std::time::Duration) -> bool {
            let deadline = std::time::Instant::now() + limit;
            while std::time::Instant::now() < deadline {
                if self.try_take(by) {
                    return true;
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            false
        }

        fn is_held(&self) -> bool {
            self.0.lock().unwrap().is_some()
        }

        fn release(&self) {
            *self.0.lock().unwrap() = None;
        }
    }

    /// One of two pipelines (two processes pulling the same blobs): its first item waits for
    /// the token the other pipeline holds, its second takes its own token at once and holds it
    /// until committed.
    fn pipeline_holding_one_waiting_for_other(
        name: &'static str,
        own: &Token,
        other: &Token,
    ) -> Result<(), TestError> {
        let items = [0usize, 1];
        Pipeline::new(2).run(
            &items,
            |item, worker| {
                if *item == 1 {
                    assert!(own.try_take(name));
                    std::thread::sleep(std::time::Duration::from_millis(50));
                    return Ok(1);
                }
                while !other.is_held() {
                    std::thread::yield_now();
                }
                if other.try_take(name) {
                    return Ok(0);
                }
                let limit = std::time::Duration::from_secs(5);
                match worker.while_waiting(|| other.take_within(name, limit)) {
                    true => Ok(0),
                    false => Err(TestError::Store(format!("{name} waited for good"))),
                }
            },
            |batch| {
                for item in batch {
                    match item {
                        1 => own.release(),
                        _ => other.release(),
                    }
                }
                Ok(())
            },
        )
    }

    #[test]
    fn two_pipelines_waiting_on_what_each_other_holds_until_commit_both_finish() {
        // Each pipeline holds one token in a result waiting for its commit while a worker
        // waits for the other's: the results must be committed while a worker waits, or
        // neither pipeline ever goes on (two pulls of the same blobs in two processes).
        let (x, y) = (Token(Default::default()), Token(Default::default()));
        let (a, b) = std::thread::scope(|scope| {
            let a = scope.spawn(|| pipeline_holding_one_waiting_for_other("a", &x, &y));
            let b = scope.spawn(|| pipeline_holding_one_waiting_for_other("b", &y, &x));
            (a.join().unwrap(), b.join().unwrap())
        });
        assert_eq!(a, Ok(()));
        assert_eq!(b, Ok(()));
    }
}
