//! Byte counting for the transfer events of a pull or push ([`TransferEvent::Advanced`]),
//! reported to the caller's [`Progress`].

use crate::store::{Progress, TransferEvent};
use crate::traits::Digest;

/// Reports [`TransferEvent::Advanced`] as bytes pass through a reader, at most every 1 MiB.
pub struct ObservedReader<'o, R> {
    pub inner: R,
    pub observer: &'o dyn Progress,
    pub digest: Digest,
    pub done: u64,
    reported: u64,
}

impl<'o, R> ObservedReader<'o, R> {
    pub fn new(inner: R, observer: &'o dyn Progress, digest: Digest) -> Self {
        ObservedReader {
            inner,
            observer,
            digest,
            done: 0,
            reported: 0,
        }
    }
}

impl<'o, R> ObservedReader<'o, R> {
    /// An observer of a download that goes on after `kept` bytes staged earlier (by a killed
    /// pull): they are reported at once, as moved.
    pub fn resumed(inner: R, observer: &'o dyn Progress, digest: Digest, kept: u64) -> Self {
        if kept > 0 {
            observer.transfer(TransferEvent::Advanced {
                digest: digest.clone(),
                done: kept,
                delta: kept,
            });
        }
        ObservedReader {
            inner,
            observer,
            digest,
            done: kept,
            reported: kept,
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
            self.observer.transfer(TransferEvent::Advanced {
                digest: self.digest.clone(),
                done: self.done,
                delta,
            });
        }
        Ok(read)
    }
}
