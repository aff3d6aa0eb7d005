//! Importing an image layout directory built from the input into a real store: never panics,
//! and a refused layout leaves the store's full dump unchanged (DESIGN.md invariant 7).
//!
//! The input is parts separated by 0xFF: `index.json`, `oci-layout` (a valid one when empty),
//! then blobs, each written under its sha256 digest. In any part, `@D<k>` and `@S<k>` (k a
//! digit >= 2, a later part) become the digest and size of part `k`.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use oci_store::store::{open_store, BackendChoice};
use oci_store::stores::oci::{ImportOptions, OciStore};
use oci_store::traits::{Algorithm, Digest};
use oci_store::DynStore;

struct Shared {
    _dir: tempfile::TempDir,
    store: DynStore,
    scratch: std::path::PathBuf,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temp dir");
        let store = open_store(&dir.path().join("store"), &BackendChoice::default())
            .expect("opening the store");
        let scratch = dir.path().join("layout");
        Shared {
            _dir: dir,
            store,
            scratch,
        }
    })
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

fn write_layout(root: &Path, data: &[u8]) {
    let parts: Vec<&[u8]> = data.split(|b| *b == 0xFF).take(12).collect();
    let mut done: Vec<Vec<u8>> = vec![Vec::new(); parts.len()];
    for i in (0..parts.len()).rev() {
        let mut bytes = parts[i].to_vec();
        for (k, later) in done.iter().enumerate().skip((i + 1).max(2)).take(10) {
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
    let _ = std::fs::remove_dir_all(root);
    std::fs::create_dir_all(root.join("blobs/sha256")).expect("creating the layout");
    let index = done.first().cloned().unwrap_or_default();
    let layout = match done.get(1) {
        Some(bytes) if !bytes.is_empty() => bytes.clone(),
        _ => br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
    };
    std::fs::write(root.join("index.json"), index).expect("writing index.json");
    std::fs::write(root.join("oci-layout"), layout).expect("writing oci-layout");
    for blob in done.iter().skip(2) {
        let digest = Digest::of_bytes(Algorithm::Sha256, blob);
        std::fs::write(root.join("blobs/sha256").join(digest.hex()), blob).expect("writing a blob");
    }
}

fuzz_target!(|data: &[u8]| {
    let shared = shared();
    write_layout(&shared.scratch, data);
    let before = shared.store.dump().expect("dumping the store");
    let options = ImportOptions {
        all: true,
        ..ImportOptions::default()
    };
    if OciStore::new(&shared.store)
        .import_layout(&shared.scratch, &options)
        .is_err()
    {
        let after = shared.store.dump().expect("dumping the store");
        assert!(after == before, "a refused layout changed the store");
    }
});
