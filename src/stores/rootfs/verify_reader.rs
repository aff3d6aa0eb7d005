//! A reader that hashes what passes through it, so what leaves the store is checked as it is
//! used (DESIGN.md invariant 8) without a second read: the base store's
//! [`fsutil::VerifyingReader`](crate::store::fsutil::VerifyingReader), with the renderer's
//! error naming what was read.

use std::io::{self, Read};

use super::error::{RootfsError, RootfsResult};
use crate::store::fsutil::{self, ContentMismatch};
use crate::traits::Digest;
use crate::util::io_context::IoContext;

pub struct VerifyingReader<R> {
    inner: fsutil::VerifyingReader<R>,
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
        let inner = match expected_size {
            Some(size) => fsutil::VerifyingReader::new(inner, &expected, size),
            None => fsutil::VerifyingReader::of_any_size(inner, &expected),
        };
        VerifyingReader {
            inner,
            what: what.into(),
        }
    }

    /// Reads what the consumer left unread, then checks digest and size; returns the size.
    pub fn finish(self) -> RootfsResult<u64> {
        let what = self.what;
        self.inner
            .finish()
            .map_err(|error| match ContentMismatch::find(&error) {
                Some(mismatch) => RootfsError::DigestMismatch {
                    what,
                    reason: mismatch.to_string(),
                },
                None => RootfsError::from(IoContext::new(format!("reading {what}"), "", error)),
            })
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
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

    #[test]
    fn a_short_blob_fails_with_its_size() {
        let digest = Digest::of_bytes(Algorithm::Sha256, b"hello world");
        let reader = VerifyingReader::new(&b"hello"[..], digest, Some(11), "layer y");
        let error = reader.finish().unwrap_err().to_string();
        assert!(error.contains("layer y") && error.contains("11"), "{error}");
    }
}
