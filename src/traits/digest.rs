//! Content digests: parsing per the OCI digest grammar, hashing while streaming, and partial
//! digests (prefixes) used to resolve what a user typed.

use std::fmt;
use std::str::FromStr;

use sha2::Digest as _;

use super::error::DigestError;

/// The hash algorithms a store accepts. Anything else is refused with
/// `DigestError::UnknownAlgorithm` so a typo never becomes a silently different blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// SHA-256, 64 hex characters; the default.
    Sha256,
    /// SHA-512, 128 hex characters (appc image IDs).
    Sha512,
}

impl Algorithm {
    /// Every accepted algorithm.
    pub const ALL: [Algorithm; 2] = [Algorithm::Sha256, Algorithm::Sha512];

    /// The name in a digest string: `sha256` or `sha512`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Length of the lowercase hex encoding of a digest of this algorithm.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    /// The algorithm of a name (`sha256`, `sha512`); `DigestError::UnknownAlgorithm` for any other.
    pub fn from_name(name: &str) -> Result<Algorithm, DigestError> {
        match name {
            "sha256" => Ok(Algorithm::Sha256),
            "sha512" => Ok(Algorithm::Sha512),
            other => Err(DigestError::UnknownAlgorithm(other.to_string())),
        }
    }

    /// A new streaming hasher for this algorithm.
    pub fn hasher(self) -> Hasher {
        Hasher::new(self)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A complete, validated digest such as `sha256:0c45e8...`.
///
/// Ordering is by the canonical string form (`<alg>:<hex>`), which is also the key order every
/// index backend uses, so paging and prefix scans agree across backends.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    // Stored as the canonical string so ordering, hashing and display need no allocation.
    canonical: String,
    algorithm: Algorithm,
}

impl Digest {
    /// Parses `sha256:<hex>` or `sha256-<hex>` (the form used in file names by older layouts
    /// and appc). The hex part must be lowercase and of the algorithm's exact length.
    pub fn parse(input: &str) -> Result<Digest, DigestError> {
        let (algorithm_name, hex) = split_algorithm(input).ok_or_else(|| DigestError::Invalid {
            input: input.to_string(),
            reason: "expected <algorithm>:<hex> or <algorithm>-<hex>".to_string(),
        })?;
        if algorithm_name.is_empty() || !is_algorithm_component(algorithm_name) {
            return Err(DigestError::Invalid {
                input: input.to_string(),
                reason: "malformed algorithm".to_string(),
            });
        }
        let algorithm = Algorithm::from_name(algorithm_name)?;
        Digest::from_hex(algorithm, hex).map_err(|reason| DigestError::Invalid {
            input: input.to_string(),
            reason,
        })
    }

    fn from_hex(algorithm: Algorithm, hex: &str) -> Result<Digest, String> {
        if hex.len() != algorithm.hex_len() {
            return Err(format!(
                "{} digests have {} hex characters, got {}",
                algorithm,
                algorithm.hex_len(),
                hex.len()
            ));
        }
        if !is_lower_hex(hex) {
            return Err("the encoded part must be lowercase hex".to_string());
        }
        // Built by hand, not with `format!`: every listing of the store parses its digests.
        let name = algorithm.name();
        let mut canonical = String::with_capacity(name.len() + 1 + hex.len());
        canonical.push_str(name);
        canonical.push(':');
        canonical.push_str(hex);
        Ok(Digest {
            canonical,
            algorithm,
        })
    }

    /// [`Digest::parse`] of an owned string, kept as it is when it is already canonical
    /// (`<alg>:<hex>`): what backends read back from their own records.
    pub fn parse_owned(input: String) -> Result<Digest, DigestError> {
        if let Some((name, hex)) = input.split_once(':') {
            if let Ok(algorithm) = Algorithm::from_name(name) {
                if hex.len() == algorithm.hex_len() && is_lower_hex(hex) {
                    return Ok(Digest {
                        canonical: input,
                        algorithm,
                    });
                }
            }
        }
        Digest::parse(&input)
    }

    /// The digest of a byte slice; for tests and small documents (manifests, configs).
    pub fn of_bytes(algorithm: Algorithm, bytes: &[u8]) -> Digest {
        let mut hasher = Hasher::new(algorithm);
        hasher.update(bytes);
        hasher.finish()
    }

    /// The algorithm that produced the digest.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The lowercase hex part.
    pub fn hex(&self) -> &str {
        &self.canonical[self.algorithm.name().len() + 1..]
    }

    /// `sha256:<hex>`.
    pub fn as_str(&self) -> &str {
        &self.canonical
    }

    /// The raw hash bytes (the hex part decoded).
    pub fn raw_bytes(&self) -> Vec<u8> {
        hex::decode(self.hex()).expect("a Digest's hex part is validated lowercase hex")
    }

    /// The digest whose hash bytes are `raw` (of the algorithm's length).
    pub fn from_raw_bytes(algorithm: Algorithm, raw: &[u8]) -> Digest {
        debug_assert_eq!(raw.len() * 2, algorithm.hex_len());
        Digest {
            canonical: format!("{}:{}", algorithm.name(), hex::encode(raw)),
            algorithm,
        }
    }

    /// `sha256-<hex>`: the form used in appc image ids and pre-1.0 layout file names.
    pub fn dashed(&self) -> String {
        format!("{}-{}", self.algorithm.name(), self.hex())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.canonical)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.canonical)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Digest::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A partial digest typed by a user: `sha256:0c45e8`, `sha256-0c45e8` or bare `0c45e8`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigestPrefix {
    /// `None` for bare hex: it may match digests of any algorithm.
    pub algorithm: Option<Algorithm>,
    /// The lowercase hex characters typed, at least [`DigestPrefix::MIN_HEX_LEN`].
    pub hex_prefix: String,
}

impl DigestPrefix {
    /// Shortest hex prefix accepted, so a resolve never matches half the store by accident.
    pub const MIN_HEX_LEN: usize = 4;

    /// Parses `algorithm:hex`, `algorithm-hex` or bare hex; fails on an unknown algorithm,
    /// non-lowercase-hex, more characters than a full digest, or fewer than
    /// [`DigestPrefix::MIN_HEX_LEN`].
    pub fn parse(input: &str) -> Result<DigestPrefix, DigestError> {
        let (algorithm, hex) = match split_algorithm(input) {
            Some((name, hex)) => (Some(Algorithm::from_name(name)?), hex),
            None => (None, input),
        };
        if !is_lower_hex(hex) {
            return Err(DigestError::Invalid {
                input: input.to_string(),
                reason: "the encoded part must be lowercase hex".to_string(),
            });
        }
        let max_len = algorithm.map_or(Algorithm::Sha512.hex_len(), Algorithm::hex_len);
        if hex.len() > max_len {
            return Err(DigestError::Invalid {
                input: input.to_string(),
                reason: format!("longer than a full digest ({max_len} hex characters)"),
            });
        }
        if hex.len() < Self::MIN_HEX_LEN {
            return Err(DigestError::PrefixTooShort {
                input: input.to_string(),
                min: Self::MIN_HEX_LEN,
            });
        }
        Ok(DigestPrefix {
            algorithm,
            hex_prefix: hex.to_string(),
        })
    }

    /// The canonical-string prefixes (`sha256:0c45`) that a range scan over digest keys uses:
    /// one per algorithm the prefix may belong to.
    pub fn key_prefixes(&self) -> Vec<String> {
        let algorithms: Vec<Algorithm> = match self.algorithm {
            Some(algorithm) => vec![algorithm],
            None => Algorithm::ALL
                .into_iter()
                .filter(|a| self.hex_prefix.len() <= a.hex_len())
                .collect(),
        };
        algorithms
            .into_iter()
            .map(|a| format!("{}:{}", a.name(), self.hex_prefix))
            .collect()
    }

    /// Whether `digest` starts with this prefix (and has its algorithm, when one was given).
    pub fn matches(&self, digest: &Digest) -> bool {
        self.algorithm.is_none_or(|a| a == digest.algorithm())
            && digest.hex().starts_with(&self.hex_prefix)
    }

    /// The prefix that is all of `digest`: it matches that digest only.
    pub fn complete(digest: &Digest) -> DigestPrefix {
        DigestPrefix {
            algorithm: Some(digest.algorithm()),
            hex_prefix: digest.hex().to_string(),
        }
    }

    /// The complete digest, when the prefix is one.
    pub fn as_complete(&self) -> Option<Digest> {
        let algorithm = self.algorithm?;
        Digest::from_hex(algorithm, &self.hex_prefix).ok()
    }
}

impl fmt::Display for DigestPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.algorithm {
            Some(a) => write!(f, "{}:{}", a, self.hex_prefix),
            None => f.write_str(&self.hex_prefix),
        }
    }
}

/// Hashes content as it streams through, so content is never held whole to be digested.
pub struct Hasher {
    algorithm: Algorithm,
    state: HasherState,
}

enum HasherState {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub fn new(algorithm: Algorithm) -> Hasher {
        let state = match algorithm {
            Algorithm::Sha256 => HasherState::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => HasherState::Sha512(sha2::Sha512::new()),
        };
        Hasher { algorithm, state }
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.state {
            HasherState::Sha256(h) => h.update(bytes),
            HasherState::Sha512(h) => h.update(bytes),
        }
    }

    pub fn finish(self) -> Digest {
        let hex = match self.state {
            HasherState::Sha256(h) => hex::encode(h.finalize()),
            HasherState::Sha512(h) => hex::encode(h.finalize()),
        };
        Digest {
            canonical: format!("{}:{}", self.algorithm.name(), hex),
            algorithm: self.algorithm,
        }
    }
}

/// Splits `alg:hex` or `alg-hex`. The OCI grammar allows `+._-` separators inside the
/// algorithm part, but the algorithms we accept contain none, so the first `:` wins and a
/// `-` is only taken as separator when there is no `:`.
fn split_algorithm(input: &str) -> Option<(&str, &str)> {
    if let Some(pair) = input.split_once(':') {
        return Some(pair);
    }
    input.split_once('-')
}

fn is_algorithm_component(name: &str) -> bool {
    name.bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b))
}

fn is_lower_hex(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_SHA256: &str =
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_both_separators_to_one_digest() {
        let colon = Digest::parse(EMPTY_SHA256).unwrap();
        let dash = Digest::parse(&EMPTY_SHA256.replace(':', "-")).unwrap();
        assert_eq!(colon, dash);
        assert_eq!(colon, Digest::of_bytes(Algorithm::Sha256, b""));
        assert_eq!(dash.dashed(), EMPTY_SHA256.replace(':', "-"));
    }

    #[test]
    fn refuses_uppercase_short_and_unknown() {
        assert!(Digest::parse(&EMPTY_SHA256.to_uppercase()).is_err());
        assert!(Digest::parse("sha256:abcd").is_err());
        assert!(matches!(
            Digest::parse("md5:d41d8cd98f00b204e9800998ecf8427e"),
            Err(DigestError::UnknownAlgorithm(a)) if a == "md5"
        ));
        assert!(Digest::parse("nonsense").is_err());
    }

    #[test]
    fn sha512_round_trips() {
        let d = Digest::of_bytes(Algorithm::Sha512, b"abc");
        assert_eq!(d.hex().len(), 128);
        assert_eq!(Digest::parse(d.as_str()).unwrap(), d);
    }

    #[test]
    fn prefixes_parse_in_all_forms() {
        let p = DigestPrefix::parse("sha256:0c45e8").unwrap();
        assert_eq!(p.key_prefixes(), vec!["sha256:0c45e8".to_string()]);
        let p = DigestPrefix::parse("sha256-0c45e8").unwrap();
        assert_eq!(p.algorithm, Some(Algorithm::Sha256));
        let bare = DigestPrefix::parse("0c45e8").unwrap();
        assert_eq!(bare.key_prefixes().len(), 2);
        assert!(matches!(
            DigestPrefix::parse("0c4"),
            Err(DigestError::PrefixTooShort { .. })
        ));
        assert!(DigestPrefix::parse("0C45E8").is_err());
    }
}
