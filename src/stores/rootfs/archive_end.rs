//! The end of a layer archive as the OCI tools read it: a stream that stops once the last
//! entry's data is complete is a complete archive, even without the padding to a whole block
//! and the two zero blocks that should close it. umoci 0.4 writes its layers that way (it
//! never closes its tar writer), and Go's `archive/tar` (umoci, containerd, Docker) accepts
//! them; the `tar` crate would report an unexpected EOF.
//!
//! [`ClosedArchive`] supplies the missing zero bytes only when the stream ends between the end
//! of the last entry's data and the next header, positions the applier records after each
//! entry. A stream cut anywhere else (inside a header, inside file data) still ends early and
//! fails.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

/// Two zero blocks: the tar end-of-archive marker.
const END_OF_ARCHIVE: u64 = 1024;

/// Where the current entry's data ends and the next header begins.
#[derive(Clone, Copy, Debug, Default)]
pub struct EntryBounds {
    pub data_end: u64,
    pub next_header: u64,
}

impl EntryBounds {
    /// The bounds of an entry whose data starts at `data_position`.
    pub fn of(data_position: u64, size: u64) -> EntryBounds {
        EntryBounds {
            data_end: data_position + size,
            next_header: data_position + size.div_ceil(512) * 512,
        }
    }
}

pub struct ClosedArchive<R> {
    inner: R,
    position: u64,
    bounds: Rc<Cell<EntryBounds>>,
    /// Zero bytes still to supply once the stream ended where an archive may end.
    padding: Option<u64>,
}

impl<R: Read> ClosedArchive<R> {
    pub fn new(inner: R, bounds: Rc<Cell<EntryBounds>>) -> Self {
        ClosedArchive {
            inner,
            position: 0,
            bounds,
            padding: None,
        }
    }
}

impl<R: Read> Read for ClosedArchive<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(left) = self.padding.as_mut() {
            let n = (*left).min(buf.len() as u64) as usize;
            buf[..n].fill(0);
            *left -= n as u64;
            return Ok(n);
        }
        let read = self.inner.read(buf)?;
        self.position += read as u64;
        let bounds = self.bounds.get();
        let may_end = bounds.data_end <= self.position && self.position <= bounds.next_header;
        if read == 0 && !buf.is_empty() && may_end {
            self.padding = Some(bounds.next_header - self.position + END_OF_ARCHIVE);
            return self.read(buf);
        }
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(bytes: &[u8], bounds: EntryBounds) -> Vec<u8> {
        let mut out = Vec::new();
        ClosedArchive::new(bytes, Rc::new(Cell::new(bounds)))
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn zero_bytes_come_only_after_the_last_entrys_data() {
        // A header, then 3 bytes of data, unpadded: padded to the block, then closed.
        let bounds = EntryBounds::of(512, 3);
        assert_eq!(read_all(&[1u8; 515], bounds).len(), 1024 + 1024);
        // Cut inside the data: left short, for the tar reader to fail on.
        assert_eq!(read_all(&[1u8; 514], bounds).len(), 514);
        // Cut inside the next header: left short.
        assert_eq!(read_all(&[1u8; 1100], bounds).len(), 1100);
    }
}
