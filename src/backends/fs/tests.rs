//! Behaviour specific to the `fs` layout: what lands where on disk, and ingest liveness.
//! The shared conformance suite covers the trait contract in general.

use std::fs;
use std::io::{Read, Write};
use std::path::Path;

use super::FsBlobStore;
use crate::traits::{Algorithm, BlobStore, Digest, Expected, StorageError};

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn write_blob(store: &FsBlobStore, content: &[u8], expected: Expected) -> (Digest, u64) {
    let mut writer = store.writer(expected).unwrap();
    writer.write_all(content).unwrap();
    writer.commit().unwrap()
}

#[test]
fn writes_and_reads_back_under_blobs_alg_hex() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsBlobStore::open(dir.path()).unwrap();
    let content = b"hello, blob";
    let expected_digest = Digest::of_bytes(Algorithm::Sha256, content);

    let (digest, size) = write_blob(&store, content, Expected::default());

    assert_eq!(digest, expected_digest);
    assert_eq!(size, content.len() as u64);
    let path = dir.path().join("blobs/sha256").join(digest.hex());
    assert_eq!(fs::read(&path).unwrap(), content);
    let mut read_back = Vec::new();
    store
        .open(&digest)
        .unwrap()
        .read_to_end(&mut read_back)
        .unwrap();
    assert_eq!(read_back, content);
    assert_eq!(store.size(&digest).unwrap(), Some(size));
    assert_eq!(
        store.sorted_digests().unwrap().into_vec().unwrap(),
        vec![digest.clone()]
    );
    assert!(files_in(&dir.path().join("ingest")).is_empty());

    assert!(store.delete(&digest).unwrap());
    assert!(!store.delete(&digest).unwrap());
    assert!(matches!(store.open(&digest), Err(StorageError::BlobNotFound(d)) if d == digest));
    assert_eq!(store.size(&digest).unwrap(), None);
}

#[test]
fn sha512_expected_digest_is_hashed_and_stored_as_sha512() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsBlobStore::open(dir.path()).unwrap();
    let content = b"five hundred and twelve";
    let digest = Digest::of_bytes(Algorithm::Sha512, content);
    let expected = Expected {
        digest: Some(digest.clone()),
        size: Some(content.len() as u64),
        algorithm: None,
    };

    assert_eq!(write_blob(&store, content, expected).0, digest);
    assert!(dir.path().join("blobs/sha512").join(digest.hex()).is_file());
}

#[test]
fn digest_mismatch_leaves_no_blob_and_no_ingest_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsBlobStore::open(dir.path()).unwrap();
    let wanted = Digest::of_bytes(Algorithm::Sha256, b"what we wanted");
    let mut writer = store
        .writer(Expected {
            digest: Some(wanted.clone()),
            size: None,
            algorithm: None,
        })
        .unwrap();
    writer.write_all(b"what we got").unwrap();

    let error = writer.commit().unwrap_err();

    assert!(
        matches!(&error, StorageError::DigestMismatch { expected, .. } if *expected == wanted),
        "{error}"
    );
    assert!(files_in(&dir.path().join("blobs/sha256")).is_empty());
    assert!(files_in(&dir.path().join("ingest")).is_empty());
}

#[test]
fn writing_past_the_expected_size_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsBlobStore::open(dir.path()).unwrap();
    let mut writer = store
        .writer(Expected {
            digest: None,
            size: Some(4),
            algorithm: None,
        })
        .unwrap();
    writer.write_all(b"abc").unwrap();

    let error = writer.write_all(b"de").unwrap_err();

    let inner = error
        .into_inner()
        .unwrap()
        .downcast::<StorageError>()
        .unwrap();
    assert!(matches!(
        *inner,
        StorageError::SizeMismatch {
            expected: 4,
            actual: 5,
            ..
        }
    ));
    assert_eq!(writer.written(), 3);
    assert!(matches!(
        writer.finish(),
        Err(StorageError::SizeMismatch { expected: 4, .. })
    ));
    drop(writer);
    assert!(files_in(&dir.path().join("ingest")).is_empty());
}

#[test]
fn committing_existing_content_keeps_one_copy() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsBlobStore::open(dir.path()).unwrap();

    let first = write_blob(&store, b"same bytes", Expected::default());
    let second = write_blob(&store, b"same bytes", Expected::default());

    assert_eq!(first, second);
    assert_eq!(
        files_in(&dir.path().join("blobs/sha256")),
        vec![first.0.hex().to_string()]
    );
    assert!(files_in(&dir.path().join("ingest")).is_empty());
}

#[test]
fn commit_replaces_a_damaged_file_of_the_same_size() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsBlobStore::open(dir.path()).unwrap();
    let (digest, _) = write_blob(&store, b"good bytes", Expected::default());
    // Damaged outside the store, size intact.
    std::fs::write(store.blob_path(&digest), b"evil bytes").unwrap();

    write_blob(&store, b"good bytes", Expected::default());
    assert_eq!(
        std::fs::read(store.blob_path(&digest)).unwrap(),
        b"good bytes"
    );
}

#[test]
fn dropped_writer_removes_its_staging_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsBlobStore::open(dir.path()).unwrap();
    let mut writer = store.writer(Expected::default()).unwrap();
    writer.write_all(b"never committed").unwrap();
    assert_eq!(files_in(&dir.path().join("ingest")).len(), 1);

    drop(writer);

    assert!(files_in(&dir.path().join("ingest")).is_empty());
    assert!(store
        .sorted_digests()
        .unwrap()
        .into_vec()
        .unwrap()
        .is_empty());
}

#[test]
fn dead_ingests_are_removed_and_live_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsBlobStore::open(dir.path()).unwrap();
    let mut live = store.writer(Expected::default()).unwrap();
    live.write_all(b"still writing").unwrap();
    live.flush().unwrap();
    // What a crashed writer leaves: a staging file nobody holds locked.
    fs::write(dir.path().join("ingest/blob-crashed.partial"), b"12345").unwrap();

    assert_eq!(store.remove_dead_ingests().unwrap(), (1, 5));

    assert_eq!(files_in(&dir.path().join("ingest")).len(), 1);
    live.write_all(b", and done").unwrap();
    let (digest, _) = live.commit().unwrap();
    assert_eq!(
        digest,
        Digest::of_bytes(Algorithm::Sha256, b"still writing, and done")
    );
    assert_eq!(store.remove_dead_ingests().unwrap(), (0, 0));
}

#[test]
fn digests_skips_names_that_are_not_digests() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsBlobStore::open(dir.path()).unwrap();
    let (digest, _) = write_blob(&store, b"real", Expected::default());
    fs::write(dir.path().join("blobs/sha256/not-a-digest"), b"x").unwrap();
    fs::write(
        dir.path().join("blobs/sha512").join(digest.hex()),
        b"wrong length",
    )
    .unwrap();

    assert_eq!(
        store.sorted_digests().unwrap().into_vec().unwrap(),
        vec![digest]
    );
}

#[test]
fn is_registered_as_fs() {
    let dir = tempfile::tempdir().unwrap();
    let registration = crate::traits::registry::backend_named("fs").unwrap();
    assert!(
        registration.blob_store.is_some(),
        "fs registers a blob store"
    );
    let _store = crate::traits::registry::open_blob_store("fs", dir.path()).unwrap();
    assert!(dir.path().join("ingest").is_dir());
}
