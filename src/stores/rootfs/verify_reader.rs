//! A reader that hashes what passes through it, so what leaves the store is checked as it is
//! used (DESIGN.md invariant 8) without a second read.

use std::io::{self, Read};

use super::error::{RootfsError, RootfsResult};
use crate::traits::{Digest, Hasher};

pub struct VerifyingReader<R> {
    inner: R,
    hasher: Option<Hasher>,
    expected: Digest,
    expected_size: Option<u64>,
    read: u64,
    /// Names the content in the error (`layer sha256:…`).
    what: String,
}

impl<R: Read> VerifyingReader<R> {
    pub fn new(
        inner: R,
        expected: Digest,
        expected_size: Option<u64>,
        what: impl Into<String>,
    ) -> Self {
        VerifyingReader {
            inner,
            hasher: Some(Hasher::new(expected.algorithm())),
            expected,
            expected_size,
            read: 0,
            what: what.into(),
        }
    }

    /// Reads what the consumer left unread (a tar reader stops at the end-of-archive blocks;
    /// the padding after them belongs to the blob too), then checks digest and size.
    pub fn finish(mut self) -> RootfsResult<u64> {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            match self.read(&mut buffer) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(RootfsError::Read {
                        what: self.what,
                        source,
                    })
                }
            }
        }
        let actual = self.hasher.take().expect("finished once").finish();
        let size_ok = self.expected_size.is_none_or(|size| size == self.read);
        if actual != self.expected || !size_ok {
            return Err(RootfsError::DigestMismatch {
                what: self.what,
                expected: self.expected.to_string(),
                actual: actual.to_string(),
                expected_size: self.expected_size,
                actual_size: self.read,
            });
        }
        Ok(self.read)
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        if let Some(hasher) = self.hasher.as_mut() {
            hasher.update(&buf[..read]);
        }
        self.read += read as u64;
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traits::Algorithm;

    #[test]
    fn matching_content_verifies_even_when_the_consumer_stops_early() {
        let content = b"hello world".to_vec();
        let digest = Digest::of_bytes(Algorithm::Sha256, &content);
        let mut reader = VerifyingReader::new(&content[..], digest, Some(11), "blob");
        let mut first = [0u8; 5];
        reader.read_exact(&mut first).unwrap();
        assert_eq!(reader.finish().unwrap(), 11);
    }

    #[test]
    fn a_changed_byte_fails() {
        let digest = Digest::of_bytes(Algorithm::Sha256, b"hello world");
        let reader = VerifyingReader::new(&b"hello worle"[..], digest.clone(), None, "layer x");
        let error = reader.finish().unwrap_err().to_string();
        assert!(
            error.contains("layer x") && error.contains(digest.as_str()),
            "{error}"
        );
    }
}
