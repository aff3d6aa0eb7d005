//! Digest and digest-prefix parsing (DESIGN.md invariant 4). No backend involved: these run
//! once, not per combination.

use oci_store::traits::{Algorithm, Digest, DigestError, DigestPrefix, Hasher};

use crate::check::TestResult;
use crate::{ensure, ensure_eq, fail, Context};

/// sha256 and sha512 of `abc` (FIPS 180-2 test vectors).
pub const SHA256_ABC: &str =
    "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
pub const SHA512_ABC: &str = "sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f";

pub type DigestTest = fn() -> TestResult;

pub fn tests() -> Vec<(&'static str, DigestTest)> {
    vec![
        ("known_vectors", known_vectors),
        ("colon_and_dash_forms", colon_and_dash_forms),
        ("uppercase_refused", uppercase_refused),
        ("unknown_algorithm_refused", unknown_algorithm_refused),
        ("malformed_refused", malformed_refused),
        ("streaming_hash_matches", streaming_hash_matches),
        ("serde_round_trip", serde_round_trip),
        ("prefix_forms", prefix_forms),
        ("prefix_refusals", prefix_refusals),
        ("ordering_is_canonical_string", ordering_is_canonical_string),
    ]
}

/// Runs every digest test; for callers outside a harness.
pub fn run_all() -> TestResult {
    let failures: Vec<String> = tests()
        .into_iter()
        .filter_map(|(name, test)| test().err().map(|e| format!("{name}: {e}")))
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

pub fn known_vectors() -> TestResult {
    ensure_eq!(
        Digest::of_bytes(Algorithm::Sha256, b"abc").as_str(),
        SHA256_ABC,
        "sha256 of \"abc\""
    );
    ensure_eq!(
        Digest::of_bytes(Algorithm::Sha512, b"abc").as_str(),
        SHA512_ABC,
        "sha512 of \"abc\""
    );
    Ok(())
}

pub fn colon_and_dash_forms() -> TestResult {
    for canonical in [SHA256_ABC, SHA512_ABC] {
        let colon = Digest::parse(canonical).context(format!("parsing {canonical}"))?;
        let dashed_text = canonical.replacen(':', "-", 1);
        let dash = Digest::parse(&dashed_text).context(format!("parsing {dashed_text}"))?;
        ensure_eq!(colon, dash, "{canonical} and its dashed form");
        ensure_eq!(colon.as_str(), canonical, "canonical form");
        ensure_eq!(colon.to_string(), canonical, "display form");
        ensure_eq!(colon.dashed(), dashed_text, "dashed form");
        let hex = canonical.split_once(':').expect("has a colon").1;
        ensure_eq!(colon.hex(), hex, "hex part");
    }
    ensure_eq!(
        Digest::parse(SHA512_ABC).context("sha512")?.algorithm(),
        Algorithm::Sha512,
        "algorithm of a sha512 digest"
    );
    Ok(())
}

pub fn uppercase_refused() -> TestResult {
    let upper_hex = format!("sha256:{}", &SHA256_ABC[7..].to_uppercase());
    ensure!(
        Digest::parse(&upper_hex).is_err(),
        "uppercase hex {upper_hex} was accepted"
    );
    let upper_algorithm = SHA256_ABC.replacen("sha256", "SHA256", 1);
    ensure!(
        Digest::parse(&upper_algorithm).is_err(),
        "uppercase algorithm {upper_algorithm} was accepted"
    );
    ensure!(
        DigestPrefix::parse("ABCD1234").is_err(),
        "uppercase prefix ABCD1234 was accepted"
    );
    Ok(())
}

pub fn unknown_algorithm_refused() -> TestResult {
    for input in [
        "md5:d41d8cd98f00b204e9800998ecf8427e",
        "sha384:abcdef",
        "blake3-abcd",
    ] {
        match Digest::parse(input) {
            Err(DigestError::UnknownAlgorithm(name)) => {
                ensure!(
                    input.starts_with(&name),
                    "error for {input} names algorithm {name:?}"
                );
            }
            other => fail!("{input}: expected UnknownAlgorithm, got {other:?}"),
        }
    }
    match DigestPrefix::parse("md5:abcd") {
        Err(DigestError::UnknownAlgorithm(_)) => Ok(()),
        other => fail!("prefix md5:abcd: expected UnknownAlgorithm, got {other:?}"),
    }
}

pub fn malformed_refused() -> TestResult {
    let hex64 = &SHA256_ABC[7..];
    let cases = [
        String::new(),
        "sha256".to_string(),
        "sha256:".to_string(),
        format!(":{hex64}"),
        format!("sha256:{}", &hex64[..63]),
        format!("sha256:{hex64}0"),
        format!("sha256:{}g", &hex64[..63]),
        format!("sha256: {}", &hex64[1..]),
        format!("sha512:{hex64}"),
        format!("sha256:{hex64}\n"),
        hex64.to_string(),
    ];
    for input in cases {
        ensure!(
            Digest::parse(&input).is_err(),
            "malformed digest {input:?} was accepted"
        );
    }
    Ok(())
}

pub fn streaming_hash_matches() -> TestResult {
    let bytes = crate::content::content(7, 200_003);
    for algorithm in Algorithm::ALL {
        let mut hasher = Hasher::new(algorithm);
        for chunk in bytes.chunks(4093) {
            hasher.update(chunk);
        }
        ensure_eq!(
            hasher.finish(),
            Digest::of_bytes(algorithm, &bytes),
            "{algorithm} hashed in chunks"
        );
    }
    Ok(())
}

pub fn serde_round_trip() -> TestResult {
    let digest = Digest::parse(SHA512_ABC).context("parsing")?;
    let json = serde_json::to_string(&digest).context("serializing")?;
    ensure_eq!(json, format!("\"{SHA512_ABC}\""), "JSON form");
    let back: Digest = serde_json::from_str(&json).context("deserializing")?;
    ensure_eq!(back, digest, "round trip");
    let refused: Result<Digest, _> = serde_json::from_str("\"sha256:ABCD\"");
    ensure!(
        refused.is_err(),
        "deserializing an invalid digest succeeded"
    );
    Ok(())
}

pub fn prefix_forms() -> TestResult {
    let sha256 = Digest::parse(SHA256_ABC).context("sha256")?;
    let sha512 = Digest::parse(SHA512_ABC).context("sha512")?;

    let colon = DigestPrefix::parse("sha256:ba7816").context("sha256:ba7816")?;
    let dash = DigestPrefix::parse("sha256-ba7816").context("sha256-ba7816")?;
    ensure_eq!(colon, dash, "colon and dash prefixes");
    ensure_eq!(colon.algorithm, Some(Algorithm::Sha256), "prefix algorithm");
    ensure!(
        colon.matches(&sha256),
        "sha256:ba7816 does not match {sha256}"
    );
    ensure!(!colon.matches(&sha512), "sha256:ba7816 matches {sha512}");
    ensure_eq!(
        colon.key_prefixes(),
        vec!["sha256:ba7816".to_string()],
        "keys"
    );

    let bare = DigestPrefix::parse("ddaf35").context("bare ddaf35")?;
    ensure_eq!(bare.algorithm, None, "bare prefix has no algorithm");
    ensure!(bare.matches(&sha512), "bare ddaf35 does not match {sha512}");
    ensure_eq!(
        bare.key_prefixes(),
        vec!["sha256:ddaf35".to_string(), "sha512:ddaf35".to_string()],
        "a bare prefix scans both algorithms"
    );

    let full = DigestPrefix::parse(SHA256_ABC).context("full digest as prefix")?;
    ensure_eq!(full.as_complete(), Some(sha256.clone()), "complete prefix");
    ensure_eq!(colon.as_complete(), None, "partial prefix is not complete");

    // A bare prefix longer than a sha256 hex can only be sha512.
    let long_bare = DigestPrefix::parse(&sha512.hex()[..70]).context("70 hex characters")?;
    ensure_eq!(
        long_bare.key_prefixes(),
        vec![format!("sha512:{}", &sha512.hex()[..70])],
        "a prefix longer than sha256 scans sha512 only"
    );
    Ok(())
}

pub fn prefix_refusals() -> TestResult {
    match DigestPrefix::parse("abc") {
        Err(DigestError::PrefixTooShort { min, .. }) => {
            ensure_eq!(min, DigestPrefix::MIN_HEX_LEN, "minimum length");
        }
        other => fail!("abc: expected PrefixTooShort, got {other:?}"),
    }
    match DigestPrefix::parse("sha256:abc") {
        Err(DigestError::PrefixTooShort { .. }) => {}
        other => fail!("sha256:abc: expected PrefixTooShort, got {other:?}"),
    }
    for input in ["xyz0123", "sha256:abcdz", &format!("{}0", &SHA256_ABC)] {
        ensure!(
            DigestPrefix::parse(input).is_err(),
            "invalid prefix {input:?} was accepted"
        );
    }
    Ok(())
}

pub fn ordering_is_canonical_string() -> TestResult {
    let mut digests = [
        Digest::of_bytes(Algorithm::Sha512, b"a"),
        Digest::of_bytes(Algorithm::Sha256, b"b"),
        Digest::of_bytes(Algorithm::Sha256, b"a"),
        Digest::of_bytes(Algorithm::Sha512, b"b"),
    ];
    let mut by_text: Vec<String> = digests
        .iter()
        .map(std::string::ToString::to_string)
        .collect();
    digests.sort();
    by_text.sort();
    let sorted_text: Vec<String> = digests
        .iter()
        .map(std::string::ToString::to_string)
        .collect();
    ensure_eq!(
        sorted_text,
        by_text,
        "Digest order is canonical string order"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case::sha256_colon(SHA256_ABC)]
    #[case::sha512_colon(SHA512_ABC)]
    #[case::sha256_dash("sha256-ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")]
    fn parses(#[case] input: &str) {
        let digest = Digest::parse(input).unwrap();
        assert_eq!(digest.as_str(), input.replacen('-', ":", 1));
    }

    #[rstest]
    #[case::uppercase("sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD")]
    #[case::unknown_algorithm("md5:d41d8cd98f00b204e9800998ecf8427e")]
    #[case::short("sha256:ba7816")]
    #[case::no_algorithm("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")]
    fn refuses(#[case] input: &str) {
        assert!(Digest::parse(input).is_err(), "{input} accepted");
    }

    #[rstest]
    fn every_suite_test_passes(#[values(0, 1, 2, 3, 4, 5, 6, 7, 8, 9)] position: usize) {
        let (name, test) = tests()[position];
        test().unwrap_or_else(|e| panic!("{name}: {e}"));
    }

    #[test]
    fn the_list_is_complete() {
        assert_eq!(tests().len(), 10, "update every_suite_test_passes");
    }
}
