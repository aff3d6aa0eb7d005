//! A streaming write can be hashed with sha512 when its digest is not known in advance (appc
//! image IDs): the store indexes it under that digest, for every blob backend.

use std::io::Write;

use oci_store::store::{open_store, BackendChoice};
use oci_store::traits::{Algorithm, Digest, Role};
use oci_store::WriteOptions;

#[test]
fn writer_hashing_sha512_indexes_the_sha512_digest() {
    let content = b"an image whose ID is the sha512 of its tar";
    let want = Digest::of_bytes(Algorithm::Sha512, content);
    for blobs in ["fs", "sqlite", "lmdb"] {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(
            dir.path(),
            &BackendChoice::default().role(Role::Blobs, blobs),
        )
        .unwrap();
        let mut writer = store
            .writer(&WriteOptions {
                algorithm: Some(Algorithm::Sha512),
                ..Default::default()
            })
            .unwrap();
        writer.write_all(content).unwrap();
        let record = writer.commit().unwrap();
        assert_eq!(record.digest, want, "blobs={blobs}");
        assert_eq!(
            store.read_to_vec(&want, 1024).unwrap(),
            content,
            "blobs={blobs}"
        );
        // Without it the default stays sha256.
        let default = store
            .write_bytes(content, &WriteOptions::default())
            .unwrap();
        assert_eq!(
            default.digest.algorithm(),
            Algorithm::Sha256,
            "blobs={blobs}"
        );
    }
}
