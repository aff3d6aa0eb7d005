//! What leaves the store for a registry is verified as it is sent (DESIGN.md invariant 8):
//! [`VerifiedContent`] hashes the blob as it reads it and holds the read that would complete
//! it until the digest is checked, so a damaged blob never reaches the registry whole (the
//! upload fails instead of the registry getting the last byte).

use std::io::{self, Read};

use crate::traits::{Digest, Hasher};

pub struct VerifiedContent<R> {
    inner: R,
    expected: Digest,
    size: u64,
    read: u64,
    hasher: Option<Hasher>,
}

impl<R: Read> VerifiedContent<R> {
    pub fn new(inner: R, expected: Digest, size: u64) -> Self {
        VerifiedContent {
            inner,
            hasher: Some(Hasher::new(expected.algorithm())),
            expected,
            size,
            read: 0,
        }
    }
}

fn damaged(reason: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, reason)
}

impl<R: Read> Read for VerifiedContent<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let Some(hasher) = self.hasher.as_mut() else {
            return Ok(0);
        };
        let left = (self.size - self.read) as usize;
        if left == 0 {
            // Only an empty blob gets here: check it on its first read.
            let mut probe = [0u8; 1];
            if self.inner.read(&mut probe)? != 0 {
                return Err(damaged(format!(
                    "blob {} in the store is longer than its {} bytes",
                    self.expected, self.size
                )));
            }
            let digest = self.hasher.take().expect("checked above").finish();
            return match digest == self.expected {
                true => Ok(0),
                false => Err(damaged(format!(
                    "blob {} in the store hashes to {digest}",
                    self.expected
                ))),
            };
        }
        let wanted = buffer.len().min(left);
        let n = self.inner.read(&mut buffer[..wanted])?;
        if n == 0 {
            return Err(damaged(format!(
                "blob {} in the store is {} bytes, not {}",
                self.expected, self.read, self.size
            )));
        }
        hasher.update(&buffer[..n]);
        self.read += n as u64;
        if self.read == self.size {
            let mut probe = [0u8; 1];
            if self.inner.read(&mut probe)? != 0 {
                return Err(damaged(format!(
                    "blob {} in the store is longer than its {} bytes",
                    self.expected, self.size
                )));
            }
            let digest = self.hasher.take().expect("checked above").finish();
            if digest != self.expected {
                return Err(damaged(format!(
                    "blob {} in the store hashes to {digest}: it is damaged, nothing was \
                     pushed under it; run `oci-store fsck --repair`",
                    self.expected
                )));
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traits::Algorithm;

    #[test]
    fn the_last_bytes_wait_for_the_check() {
        let good = b"hello".to_vec();
        let digest = Digest::of_bytes(Algorithm::Sha256, &good);
        let mut out = Vec::new();
        VerifiedContent::new(good.as_slice(), digest.clone(), 5)
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, good);

        let mut reader = VerifiedContent::new(&b"hellO"[..], digest, 5);
        let mut buffer = [0u8; 16];
        assert!(
            reader.read(&mut buffer).is_err(),
            "damaged content is refused"
        );
    }
}
