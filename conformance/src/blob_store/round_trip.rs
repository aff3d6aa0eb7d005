//! Write/read round trips over sizes (empty, one byte, just over a MiB, 5 MiB) and both
//! algorithms.

use oci_store::traits::{Algorithm, Digest, Expected, SortedDigests};

use super::{commit_bytes, BlobFixture, BlobTest};
use crate::check::TestResult;
use crate::content::{content, hash_reader, read_all, MIB};
use crate::{ensure, ensure_eq, Context};

/// Writes `size` bytes hashed with `algorithm` and reads them back. For sha512 the expected
/// digest and size are given (that is how a writer is asked for sha512); for sha256 nothing is
/// given, so the default algorithm is checked too.
pub fn round_trip(fixture: &BlobFixture, algorithm: Algorithm, size: usize) -> TestResult {
    let store = fixture.open()?;
    let bytes = content(size as u64 * 2 + algorithm as u64, size);
    let digest = Digest::of_bytes(algorithm, &bytes);
    let expected = match algorithm {
        Algorithm::Sha256 => Expected::default(),
        Algorithm::Sha512 => Expected {
            digest: Some(digest.clone()),
            size: Some(size as u64),
            algorithm: None,
        },
    };
    ensure_eq!(
        commit_bytes(&*store, &bytes, expected)?,
        digest,
        "committed digest"
    );
    ensure_eq!(
        store.size(&digest).context("size")?,
        Some(size as u64),
        "size() of {digest}"
    );
    ensure!(
        store.contains(&digest).context("contains")?,
        "contains() is false for {digest}"
    );
    let reader = store.open(&digest).context(format!("opening {digest}"))?;
    if size <= MIB + 1 {
        let read = read_all(reader).context(format!("reading {digest}"))?;
        ensure!(
            read == bytes,
            "content of {digest} differs: read {} bytes, wrote {}",
            read.len(),
            bytes.len()
        );
    } else {
        let (read_digest, read_size) =
            hash_reader(reader, algorithm).context(format!("reading {digest}"))?;
        ensure_eq!(
            (read_digest, read_size),
            (digest.clone(), size as u64),
            "rehash of what was read"
        );
    }
    let listed = store
        .sorted_digests()
        .and_then(SortedDigests::into_vec)
        .context("digests")?;
    ensure_eq!(
        listed.iter().filter(|d| **d == digest).count(),
        1,
        "times {digest} appears in digests()"
    );
    Ok(())
}

macro_rules! round_trip_cases {
    ($($name:ident => ($algorithm:ident, $size:expr)),* $(,)?) => {
        $(
            pub fn $name(fixture: &BlobFixture) -> TestResult {
                round_trip(fixture, Algorithm::$algorithm, $size)
            }
        )*
        pub(super) fn cases() -> Vec<(&'static str, BlobTest)> {
            vec![$((stringify!($name), $name as BlobTest)),*]
        }
    };
}

round_trip_cases! {
    round_trip_sha256_empty => (Sha256, 0),
    round_trip_sha256_one_byte => (Sha256, 1),
    round_trip_sha256_one_mib_plus_one => (Sha256, MIB + 1),
    round_trip_sha256_five_mib => (Sha256, 5 * MIB),
    round_trip_sha512_empty => (Sha512, 0),
    round_trip_sha512_one_byte => (Sha512, 1),
    round_trip_sha512_one_mib_plus_one => (Sha512, MIB + 1),
    round_trip_sha512_five_mib => (Sha512, 5 * MIB),
}
