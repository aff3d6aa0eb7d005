//! Progress of long work (import, export, gc, fsck, render, unpack, transfers), reported to an
//! observer the caller chooses. The library only reports; showing it (a bar on a terminal, or
//! nothing) is the caller's business, so the default is [`NoProgress`].
//!
//! A piece of work reports one or more phases in order: [`Progress::start`] with the totals it
//! knows, then any number of [`Progress::item_done`] and [`Progress::bytes`], then
//! [`Progress::finish`]. A phase that is never finished is ended by the next `start`.

use std::io::{self, Read};

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

    pub fn items(items: u64) -> Totals {
        Totals {
            items: Some(items),
            bytes: None,
        }
    }

    pub fn items_and_bytes(items: u64, bytes: u64) -> Totals {
        Totals {
            items: Some(items),
            bytes: Some(bytes),
        }
    }
}

/// An observer of long work. Shared across the threads of one operation, so `Send + Sync`,
/// and called through `&self`; every method must be cheap (it runs once per buffer copied).
pub trait Progress: Send + Sync {
    /// A phase begins: `phase` is a short lowercase label ("importing", "hashing blobs").
    fn start(&self, phase: &str, totals: Totals);
    /// One item of the current phase is done (a blob stored, a layer applied).
    fn item_done(&self);
    /// `bytes` more bytes of the current phase were moved or hashed.
    fn bytes(&self, bytes: u64);
    /// The current phase is over.
    fn finish(&self);
}

/// Reports nothing: the default of every operation.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _phase: &str, _totals: Totals) {}
    fn item_done(&self) {}
    fn bytes(&self, _bytes: u64) {}
    fn finish(&self) {}
}

/// The shared no-op observer, for defaults of `&dyn Progress` fields.
pub static NO_PROGRESS: NoProgress = NoProgress;

/// A reader that reports every byte it reads as [`Progress::bytes`], so a copy loop that
/// already exists reports progress without being changed.
pub struct ProgressRead<'p, R> {
    inner: R,
    progress: &'p dyn Progress,
}

impl<'p, R> ProgressRead<'p, R> {
    pub fn new(inner: R, progress: &'p dyn Progress) -> Self {
        ProgressRead { inner, progress }
    }

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
        fn start(&self, _phase: &str, _totals: Totals) {}
        fn item_done(&self) {}
        fn bytes(&self, bytes: u64) {
            self.0.fetch_add(bytes, Ordering::Relaxed);
        }
        fn finish(&self) {}
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
