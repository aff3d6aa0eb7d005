//! Digest, digest-prefix and ref-name parsing: never panics, and what parses round-trips
//! (a digest prints as it parsed, its dashed form parses to the same digest, a ref name is kept
//! as given and is never a path that climbs or is absolute).
#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_store::stores::oci::RefName;
use oci_store::traits::{Digest, DigestPrefix};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(digest) = Digest::parse(text) {
        let printed = digest.to_string();
        assert_eq!(
            Digest::parse(&printed).expect("a printed digest parses"),
            digest
        );
        assert_eq!(
            Digest::parse(&digest.dashed()).expect("the dashed form parses"),
            digest
        );
        assert_eq!(digest.hex().len(), digest.algorithm().hex_len());
        assert!(digest
            .hex()
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    }
    if let Ok(prefix) = DigestPrefix::parse(text) {
        for key in prefix.key_prefixes() {
            assert!(!key.contains('/') && !key.contains(".."), "{key:?}");
        }
        if let Some(complete) = prefix.as_complete() {
            assert!(prefix.matches(&complete));
        }
    }
    if let Ok(name) = RefName::parse(text) {
        assert_eq!(name.as_str(), text);
        assert!(!text.starts_with('/'), "{text:?}");
        assert!(
            !text
                .split('/')
                .any(|part| part == ".." || part == "." || part.is_empty()),
            "{text:?}"
        );
    }
});
