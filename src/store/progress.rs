//! Progress of long work (import, export, gc, fsck, render, unpack, pull, push), reported to
//! one observer trait, [`Progress`], that the caller chooses. The library only reports; showing
//! it (a bar on a terminal, JSON lines, or nothing) is the caller's business, so the default is
//! [`NoProgress`].
//!
//! Work reports in one of two shapes, and an observer implements the methods of the shapes it
//! shows (every method defaults to doing nothing):
//! - **Phases** (import, export, gc, fsck, render, unpack): [`Progress::start`] with the totals
//!   it knows, then any number of [`Progress::item_done`] and [`Progress::bytes`], then
//!   [`Progress::finish`]. A phase that is never finished is ended by the next `start`.
//! - **Transfers** (pull, push): [`Progress::transfer`] with [`TransferEvent::Planned`] once,
//!   then per blob either `Skipped`, or `Started`, any number of `Advanced` and `Finished`;
//!   then `Done`. A one-phase bar is a direct mapping: `Planned` starts it, `Advanced` adds
//!   bytes, `Finished` and `Skipped` are an item done each, `Done` finishes it.

use std::io::{self, Read};

use crate::traits::Digest;

/// What a phase expects to do, as far as it knows beforehand.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Items (blobs, layers, images) the phase will do, when known.
    pub items: Option<u64>,
    /// Bytes the phase will move or hash, when known.
    pub bytes: Option<u64>,
}

impl Totals {
    /// Nothing known beforehand: a spinner, not a bar.
    pub const UNKNOWN: Totals = Totals {
        items: None,
        bytes: None,
    };

    /// A known number of items, bytes unknown.
    pub fn items(items: u64) -> Totals {
        Totals {
            items: Some(items),
            bytes: None,
        }
    }

    /// A known number of items and bytes.
    pub fn items_and_bytes(items: u64, bytes: u64) -> Totals {
        Totals {
            items: Some(items),
            bytes: Some(bytes),
        }
    }
}

/// An observer of long work. Shared across the threads of one operation, so `Send + Sync`,
/// and called through `&self`; every method must be cheap (it runs once per buffer copied).
/// Every method defaults to doing nothing.
pub trait Progress: Send + Sync {
    /// A phase begins: `phase` is a short lowercase label ("importing", "hashing blobs").
    fn start(&self, _phase: &str, _totals: Totals) {}
    /// One item of the current phase is done (a blob stored, a layer applied).
    fn item_done(&self) {}
    /// `bytes` more bytes of the current phase were moved or hashed.
    fn bytes(&self, _bytes: u64) {}
    /// The current phase is over.
    fn finish(&self) {}
    /// A per-blob event of a pull or a push.
    fn transfer(&self, _event: TransferEvent) {}
}

/// Which way a transfer moves blobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From a registry into the store (pull).
    Download,
    /// From the store to a registry (push).
    Upload,
}

/// A per-blob event of a pull or a push, reported through [`Progress::transfer`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransferEvent {
    /// Before the first blob moves: `blobs` is how many will end in `Finished` or `Skipped`
    /// (documents a pull already read are stored without events), `bytes` what may move
    /// (a pull counts only what it will download).
    Planned {
        /// Blobs that will end in `Finished` or `Skipped`.
        blobs: u64,
        /// Bytes that may move.
        bytes: u64,
        /// Pull or push.
        direction: Direction,
    },
    /// A blob transfer begins; `size` is what its descriptor says.
    Started {
        /// The blob.
        digest: Digest,
        /// Its size as its descriptor says.
        size: u64,
        /// Pull or push.
        direction: Direction,
    },
    /// `done` bytes of the blob have moved (verified so far, for downloads), `delta` of them
    /// since the last report.
    Advanced {
        /// The blob.
        digest: Digest,
        /// Bytes moved so far.
        done: u64,
        /// Bytes moved since the last report.
        delta: u64,
    },
    /// The blob is in place (stored and verified, or accepted by the registry).
    Finished {
        /// The blob.
        digest: Digest,
    },
    /// Nothing to move: the store (pull) or the registry (push) has it, or it was mounted.
    Skipped {
        /// The blob.
        digest: Digest,
        /// Why nothing moved.
        reason: SkipReason,
    },
    /// Every transfer is over (sent on success only).
    Done,
}

/// Why a blob of a transfer did not move.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// A pull found it in the store.
    AlreadyStored,
    /// A push found it in the registry.
    AlreadyInRegistry,
    /// A push mounted it from another repository of the registry.
    Mounted,
}

/// Reports nothing: the default of every operation.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// The shared no-op observer, for defaults of `&dyn Progress` fields.
pub static NO_PROGRESS: NoProgress = NoProgress;

/// A reader that reports every byte it reads as [`Progress::bytes`], so a copy loop that
/// already exists reports progress without being changed.
pub struct ProgressRead<'p, R> {
    inner: R,
    progress: &'p dyn Progress,
}

impl<'p, R> ProgressRead<'p, R> {
    /// Reports the bytes read from `inner` to `progress`.
    pub fn new(inner: R, progress: &'p dyn Progress) -> Self {
        ProgressRead { inner, progress }
    }

    #[cfg(any(test, feature = "test-support"))]
    /// The reader inside.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for ProgressRead<'_, R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buffer)?;
        if read > 0 {
            self.progress.bytes(read as u64);
        }
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[derive(Default)]
    struct Counted(AtomicU64);

    impl Progress for Counted {
        fn bytes(&self, bytes: u64) {
            self.0.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    #[test]
    fn progress_read_reports_every_byte_read() {
        let counted = Counted::default();
        let mut reader = ProgressRead::new(&b"hello, world"[..], &counted);
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"hello, world");
        assert_eq!(counted.0.load(Ordering::Relaxed), 12);
    }
}
