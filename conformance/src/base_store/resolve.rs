//! Resolving what a user typed (DESIGN.md invariant 4): full digests in both forms, prefixes
//! with and without algorithm, ambiguity listing the candidates.

use std::collections::HashMap;

use oci_store::store::StoreError;
use oci_store::traits::{Algorithm, Digest, DigestError, StorageError};

use super::{plant_unindexed, write_bytes, write_expecting, StoreFixture};
use crate::check::TestResult;
use crate::{ensure, ensure_eq, fail, Context};

pub fn resolve_forms(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let sha256 = write_bytes(&store, b"resolve me", None)?.digest;
    let sha512_bytes = b"resolve me too";
    let sha512 = Digest::of_bytes(Algorithm::Sha512, sha512_bytes);
    write_expecting(&store, sha512_bytes, &sha512, None)?;
    for digest in [&sha256, &sha512] {
        let alg = digest.algorithm().name();
        let hex = digest.hex();
        for text in [
            digest.to_string(),
            digest.dashed(),
            format!("{alg}:{}", &hex[..8]),
            format!("{alg}-{}", &hex[..8]),
            hex[..12].to_string(),
            hex.to_string(),
        ] {
            ensure_eq!(
                store.resolve(&text).context(format!("resolving {text}"))?,
                digest.clone(),
                "resolve({text})"
            );
        }
    }
    Ok(())
}

/// Two digests of one algorithm sharing a 4-hex prefix, found by search (about 300 hashes).
fn same_prefix_pair(algorithm: Algorithm) -> (Vec<u8>, Vec<u8>) {
    let mut seen: HashMap<String, Vec<u8>> = HashMap::new();
    for n in 0u64.. {
        let bytes = format!("ambiguous {n}").into_bytes();
        let prefix = Digest::of_bytes(algorithm, &bytes).hex()[..4].to_string();
        if let Some(first) = seen.insert(prefix, bytes.clone()) {
            return (first, bytes);
        }
    }
    unreachable!("the search ends by the pigeonhole principle")
}

/// A sha256 and a sha512 digest sharing a 4-hex prefix.
fn cross_algorithm_pair() -> (Vec<u8>, Vec<u8>) {
    let mut sha256_prefixes: HashMap<String, Vec<u8>> = HashMap::new();
    for n in 0u64.. {
        let bytes = format!("cross {n}").into_bytes();
        let sha256 = Digest::of_bytes(Algorithm::Sha256, &bytes).hex()[..4].to_string();
        let sha512 = Digest::of_bytes(Algorithm::Sha512, &bytes).hex()[..4].to_string();
        if let Some(other) = sha256_prefixes.get(&sha512) {
            return (other.clone(), bytes);
        }
        sha256_prefixes.insert(sha256, bytes);
    }
    unreachable!("the search ends by the pigeonhole principle")
}

fn expect_ambiguous(store: &oci_store::Store, text: &str, candidates: &[&Digest]) -> TestResult {
    let mut want: Vec<Digest> = candidates.iter().map(|d| (*d).clone()).collect();
    want.sort();
    match store.resolve(text) {
        Err(error @ StoreError::Ambiguous { .. }) => {
            let message = error.to_string();
            let StoreError::Ambiguous {
                candidates, more, ..
            } = error
            else {
                unreachable!()
            };
            ensure_eq!(candidates, want, "candidates of {text}, in digest order");
            ensure!(!more, "{text}: `more` set with {} candidates", want.len());
            for digest in &want {
                ensure!(
                    message.contains(digest.as_str()),
                    "the error for {text} does not name {digest}: {message}"
                );
            }
            Ok(())
        }
        other => fail!("resolve({text}): expected Ambiguous, got {other:?}"),
    }
}

pub fn resolve_ambiguous_lists_candidates(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let (first, second) = same_prefix_pair(Algorithm::Sha256);
    let first = write_bytes(&store, &first, None)?.digest;
    let second = write_bytes(&store, &second, None)?.digest;
    let shared = &first.hex()[..4];
    expect_ambiguous(&store, shared, &[&first, &second])?;
    expect_ambiguous(&store, &format!("sha256:{shared}"), &[&first, &second])?;
    expect_ambiguous(&store, &format!("sha256-{shared}"), &[&first, &second])?;
    // One more character than they share tells them apart.
    let longer = common_prefix_len(first.hex(), second.hex()) + 1;
    ensure_eq!(
        store
            .resolve(&first.hex()[..longer])
            .context("resolving a longer prefix")?,
        first.clone(),
        "a prefix one character past the shared part"
    );

    let (sha256_bytes, sha512_bytes) = cross_algorithm_pair();
    let sha256 = write_bytes(&store, &sha256_bytes, None)?.digest;
    let sha512 = Digest::of_bytes(Algorithm::Sha512, &sha512_bytes);
    write_expecting(&store, &sha512_bytes, &sha512, None)?;
    let shared = &sha256.hex()[..4];
    let mut expected = vec![&sha256, &sha512];
    for digest in [&first, &second] {
        if digest.hex().starts_with(shared) {
            expected.push(digest);
        }
    }
    expect_ambiguous(&store, shared, &expected)?;
    let only_sha512 = store
        .resolve(&format!("sha512:{shared}"))
        .context("resolving the sha512 prefix")?;
    ensure_eq!(
        only_sha512,
        sha512,
        "the algorithm settles a cross-algorithm ambiguity"
    );
    Ok(())
}

fn common_prefix_len(a: &str, b: &str) -> usize {
    a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count()
}

pub fn resolve_refusals(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let stored = write_bytes(&store, b"stored", None)?.digest;
    let unindexed = plant_unindexed(&store, b"content without a record")?;
    let never = Digest::of_bytes(Algorithm::Sha512, b"never stored");

    let is_digest_error = |result: &Result<Digest, StoreError>, check: fn(&DigestError) -> bool| matches!(result, Err(StoreError::Storage(StorageError::Digest(e))) if check(e));
    let too_short = store.resolve(&stored.hex()[..3]);
    ensure!(
        is_digest_error(&too_short, |e| matches!(
            e,
            DigestError::PrefixTooShort { .. }
        )),
        "a 3-character prefix: expected PrefixTooShort, got {too_short:?}"
    );
    let upper = store.resolve(&stored.hex()[..8].to_uppercase());
    ensure!(
        is_digest_error(&upper, |e| matches!(e, DigestError::Invalid { .. })),
        "an uppercase prefix: expected Invalid, got {upper:?}"
    );
    let unknown = store.resolve("md5:d41d8cd98f00b204e9800998ecf8427e");
    ensure!(
        is_digest_error(&unknown, |e| matches!(e, DigestError::UnknownAlgorithm(_))),
        "md5: expected UnknownAlgorithm, got {unknown:?}"
    );
    let garbage = store.resolve("../../etc/passwd");
    ensure!(garbage.is_err(), "a path resolved: {garbage:?}");
    for text in [
        never.to_string(),
        never.dashed(),
        never.hex()[..10].to_string(),
        unindexed.to_string(),
        unindexed.hex()[..10].to_string(),
    ] {
        match store.resolve(&text) {
            Err(StoreError::NotFound(_)) => {}
            other => fail!("resolve({text}): expected NotFound, got {other:?}"),
        }
    }
    Ok(())
}

/// `crowd {n}` for these `n` hashes (sha256) to digests starting with `c0de`: found once by
/// search (about a million hashes, too slow to repeat per combination in a debug build).
const CROWD_NUMBERS: [u64; 12] = [
    16390, 49451, 265936, 464014, 519026, 572445, 760952, 867888, 961914, 1003281, 1089851, 1092682,
];

/// A prefix matching more blobs than an ambiguity error lists: the first ones in digest
/// order are listed and `more` says there are others.
pub fn resolve_many_candidates_are_capped(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let mut digests = Vec::new();
    for n in CROWD_NUMBERS {
        let digest = write_bytes(&store, format!("crowd {n}").as_bytes(), None)?.digest;
        ensure!(digest.hex().starts_with("c0de"), "crowd {n} is {digest}");
        digests.push(digest);
    }
    digests.sort();
    match store.resolve("c0de") {
        Err(StoreError::Ambiguous {
            candidates, more, ..
        }) => {
            ensure!(more, "`more` is not set with 12 candidates");
            ensure!(
                candidates.len() < 12 && !candidates.is_empty(),
                "{} candidates listed of 12",
                candidates.len()
            );
            ensure_eq!(
                candidates,
                digests[..candidates.len()].to_vec(),
                "the first candidates in digest order"
            );
        }
        other => fail!("resolve(c0de): expected Ambiguous, got {other:?}"),
    }
    Ok(())
}
