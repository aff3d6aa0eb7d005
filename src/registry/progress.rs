//! Transfer events of a pull or push, per blob, for a progress display. The registry module
//! reports them; what shows them (a terminal bar, JSON lines, nothing) is the caller's.
//!
//! A pull or push reports [`TransferEvent::Planned`] once, then per blob either `Skipped`, or
//! `Started`, any number of `Advanced` and `Finished`; then `Done`. A one-phase progress bar is
//! a direct mapping: `Planned` starts it, `Advanced` adds bytes, `Finished` and `Skipped` are
//! an item done each, `Done` finishes it.

use crate::traits::Digest;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Download,
    Upload,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransferEvent {
    /// Before the first blob moves: `blobs` is how many will end in `Finished` or `Skipped`
    /// (documents a pull already read are stored without events), `bytes` what may move
    /// (a pull counts only what it will download).
    Planned {
        blobs: u64,
        bytes: u64,
        direction: Direction,
    },
    /// A blob transfer begins; `size` is what its descriptor says.
    Started {
        digest: Digest,
        size: u64,
        direction: Direction,
    },
    /// `done` bytes of the blob have moved (verified so far, for downloads), `delta` of them
    /// since the last report.
    Advanced {
        digest: Digest,
        done: u64,
        delta: u64,
    },
    /// The blob is in place (stored and verified, or accepted by the registry).
    Finished { digest: Digest },
    /// Nothing to move: the store (pull) or the registry (push) has it, or it was mounted.
    Skipped { digest: Digest, reason: SkipReason },
    /// Every transfer is over (sent on success only).
    Done,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipReason {
    AlreadyStored,
    AlreadyInRegistry,
    Mounted,
}

/// Receives transfer events; called from the transfer threads, so it must be `Sync`.
pub trait TransferObserver: Sync {
    fn event(&self, event: TransferEvent);
}

/// Ignores every event.
pub struct NoProgress;

impl TransferObserver for NoProgress {
    fn event(&self, _event: TransferEvent) {}
}

/// Reports [`TransferEvent::Advanced`] as bytes pass through a reader, at most every 1 MiB.
pub struct ObservedReader<'o, R> {
    pub inner: R,
    pub observer: &'o dyn TransferObserver,
    pub digest: Digest,
    pub done: u64,
    reported: u64,
}

impl<'o, R> ObservedReader<'o, R> {
    pub fn new(inner: R, observer: &'o dyn TransferObserver, digest: Digest) -> Self {
        ObservedReader {
            inner,
            observer,
            digest,
            done: 0,
            reported: 0,
        }
    }
}

impl<R: std::io::Read> std::io::Read for ObservedReader<'_, R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.done += read as u64;
        if self.done - self.reported >= 1 << 20 || (read == 0 && self.done > self.reported) {
            let delta = self.done - self.reported;
            self.reported = self.done;
            self.observer.event(TransferEvent::Advanced {
                digest: self.digest.clone(),
                done: self.done,
                delta,
            });
        }
        Ok(read)
    }
}
