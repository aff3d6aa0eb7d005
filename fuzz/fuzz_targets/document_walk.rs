//! Manifest, index, artifact and image-config parsing and the walk over their children, as an
//! import (strict) and the store's own walks (lenient) run them. The input is a media-type
//! selector byte, then blobs separated by 0xFF (never in JSON). In blob `i`, `@D<k>` and
//! `@S<k>` (k a digit > i) become the digest and size of blob `k`, so inputs link to each other.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_store::stores::oci::fuzzing::walk;
use oci_store::traits::{Algorithm, Digest};

const MEDIA_TYPES: [&str; 8] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.artifact.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
    "application/vnd.oci.image.layer.v1.tar+gzip",
];

/// Replaces `@D<k>` / `@S<k>` for every later blob, last blob first.
fn linked(parts: Vec<&[u8]>) -> Vec<Vec<u8>> {
    let mut done: Vec<Vec<u8>> = vec![Vec::new(); parts.len()];
    for i in (0..parts.len()).rev() {
        let mut bytes = parts[i].to_vec();
        for (k, later) in done.iter().enumerate().skip(i + 1).take(10) {
            let digest = Digest::of_bytes(Algorithm::Sha256, later).to_string();
            bytes = replace(&bytes, format!("@D{k}").as_bytes(), digest.as_bytes());
            bytes = replace(
                &bytes,
                format!("@S{k}").as_bytes(),
                later.len().to_string().as_bytes(),
            );
        }
        done[i] = bytes;
    }
    done
}

fn replace(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(at) = rest.windows(needle.len()).position(|w| w == needle) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(with);
        rest = &rest[at + needle.len()..];
    }
    out.extend_from_slice(rest);
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let media_type = MEDIA_TYPES[usize::from(selector) % MEDIA_TYPES.len()];
    let blobs = linked(rest.split(|b| *b == 0xFF).take(16).collect());
    let strict = walk(media_type, &blobs, true);
    let lenient = walk(media_type, &blobs, false);
    // Strict only adds rules: what it accepts, the lenient walk accepts and reaches alike.
    if let Ok(reached) = strict {
        assert_eq!(lenient.ok(), Some(reached));
    }
});
