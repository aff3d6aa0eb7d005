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
//! - A worker about to wait for something a result in the queue holds until its commit (a
//!   fetch lock) asks for the queue to be committed first ([`Worker::commit_waiting`]), so
//!   batching never makes workers of one process, or of two, wait on each other for good.

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
    let known = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
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

/// What a work item gets besides its item: a way to ask for the commit of what is waiting.
pub struct Worker<'w, R, E> {
    sender: &'w SyncSender<Message<R, E>>,
}

impl<R, E> Worker<'_, R, E> {
    /// Asks the committer to commit the results waiting now, before this worker waits for
    /// something one of them may hold until its commit (a lock another result of this process,
    /// or of another process that does the same, keeps).
    pub fn commit_waiting(&self) {
        let _ = self.sender.send(Message::CommitWaiting);
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
        let stop = AtomicBool::new(false);
        let (sender, receiver) = sync_channel::<Message<R, E>>((self.batch / 4).max(self.workers));
        let mut work_error: Option<(usize, E)> = None;
        let mut commit_error: Option<E> = None;
        std::thread::scope(|scope| {
            for _ in 0..self.workers.min(items.len()) {
                let sender = sender.clone();
                let (next, stop, work) = (&next, &stop, &work);
                scope.spawn(move || {
                    let worker = Worker { sender: &sender };
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
                        if pending.len() >= self.batch {
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
                        worker.commit_waiting();
                        while !released.load(Ordering::Relaxed) {
                            std::thread::yield_now();
                        }
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
}
