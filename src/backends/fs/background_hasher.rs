//! Hashing a large blob on a second thread while the writer's thread copies it into the staging
//! file: on one stream, hashing and the page-cache copy each take about half the time, so
//! overlapping them nearly doubles the speed of a big layer (an archive member, a lone layer).
//! Small blobs are hashed in line: a thread per blob would cost more than it saves.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use crate::traits::{Digest, Hasher};

/// Bytes written in line before the rest of a blob is handed to a hashing thread.
pub(super) const BACKGROUND_AFTER_BYTES: u64 = 8 * 1024 * 1024;

/// Pieces in flight between the writer and the hashing thread: bounds memory to a few
/// write-sized buffers.
const PIECES_IN_FLIGHT: usize = 2;

/// A blob's hash, computed in line or on a thread of its own.
pub(super) enum BlobHasher {
    Inline(Box<Hasher>),
    Background(HashThread),
}

pub(super) struct HashThread {
    pieces: Option<SyncSender<Vec<u8>>>,
    /// Buffers the thread is done with, to be filled again.
    spent: Receiver<Vec<u8>>,
    thread: Option<JoinHandle<Option<Box<Hasher>>>>,
}

impl BlobHasher {
    pub(super) fn new(hasher: Hasher) -> Self {
        BlobHasher::Inline(Box::new(hasher))
    }

    /// Hashes `bytes`, which follow everything hashed so far; `total` is how many bytes the
    /// blob has once they are counted.
    pub(super) fn update(&mut self, bytes: &[u8], total: u64) {
        if let BlobHasher::Inline(hasher) = self {
            if total <= BACKGROUND_AFTER_BYTES {
                hasher.update(bytes);
                return;
            }
            let hasher = std::mem::replace(hasher, Box::new(Hasher::new(hasher.algorithm())));
            *self = match HashThread::start(hasher) {
                Ok(thread) => BlobHasher::Background(thread),
                // No thread to be had: hash in line.
                Err(hasher) => BlobHasher::Inline(hasher),
            };
        }
        match self {
            BlobHasher::Inline(hasher) => hasher.update(bytes),
            BlobHasher::Background(thread) => thread.update(bytes),
        }
    }

    pub(super) fn finish(self) -> Digest {
        match self {
            BlobHasher::Inline(hasher) => hasher.finish(),
            BlobHasher::Background(thread) => thread.finish(),
        }
    }
}

impl HashThread {
    /// Moves `hasher` to a new thread; gives it back if no thread can be started.
    fn start(hasher: Box<Hasher>) -> Result<HashThread, Box<Hasher>> {
        let (pieces, incoming) = sync_channel::<Vec<u8>>(PIECES_IN_FLIGHT);
        let (give_back, spent) = sync_channel::<Vec<u8>>(PIECES_IN_FLIGHT + 1);
        // Handed over once the thread runs, so a failed spawn leaves it with us.
        let (hand_over, handed) = sync_channel::<Box<Hasher>>(1);
        let spawned = std::thread::Builder::new()
            .name("blob-hasher".to_string())
            .spawn(move || {
                let mut hasher = handed.recv().ok()?;
                for piece in incoming {
                    hasher.update(&piece);
                    // The writer may have stopped taking buffers back; that is fine.
                    let _ = give_back.try_send(piece);
                }
                Some(hasher)
            });
        let Ok(thread) = spawned else {
            return Err(hasher);
        };
        hand_over
            .send(hasher)
            .expect("the thread waits for its hasher");
        Ok(HashThread {
            pieces: Some(pieces),
            spent,
            thread: Some(thread),
        })
    }

    fn update(&mut self, bytes: &[u8]) {
        let mut piece = self.spent.try_recv().unwrap_or_default();
        piece.clear();
        piece.extend_from_slice(bytes);
        if let Some(pieces) = &self.pieces {
            // The thread only stops when `pieces` is dropped, or by panicking (a bug, which
            // `finish` reports).
            let _ = pieces.send(piece);
        }
    }

    fn finish(mut self) -> Digest {
        drop(self.pieces.take());
        let thread = self.thread.take().expect("finished once");
        match thread.join() {
            Ok(Some(hasher)) => hasher.finish(),
            Ok(None) => unreachable!("the hasher was handed over when the thread started"),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl Drop for HashThread {
    /// An aborted write: the thread ends once it sees the channel closed; nobody waits.
    fn drop(&mut self) {
        drop(self.pieces.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traits::Algorithm;

    #[test]
    fn background_hashing_gives_the_inline_digest() {
        let bytes: Vec<u8> = (0..(3 * BACKGROUND_AFTER_BYTES as usize))
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let mut hasher = BlobHasher::new(Hasher::new(Algorithm::Sha256));
        let mut total = 0;
        for piece in bytes.chunks(1 << 20) {
            total += piece.len() as u64;
            hasher.update(piece, total);
        }
        assert!(matches!(hasher, BlobHasher::Background(_)));
        assert_eq!(hasher.finish(), Digest::of_bytes(Algorithm::Sha256, &bytes));
    }
}
