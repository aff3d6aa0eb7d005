//! Owner marks and fsck repair in the base store: bad input must not change stored state, and
//! repair must not throw away a verified blob.

use oci_store::store::{open_store, BackendChoice, FsckProblem, Holder};
use oci_store::traits::Index;
use oci_store::WriteOptions;

/// `write_owned` naming a stored blob with the wrong expected size fails, and must not leave
/// that blob carrying the flavour's owner mark: the mark would make the flavour a holder of a
/// blob it never wrote. The blob keeps only the base store's mark, from its own write.
#[test]
fn owned_write_with_wrong_expected_size_marks_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path(), &BackendChoice::default()).unwrap();
    let content = b"written through the base store alone";
    let record = store
        .write_bytes(content, &WriteOptions::default())
        .unwrap();

    let options = WriteOptions {
        expected_digest: Some(record.digest.clone()),
        expected_size: Some(record.size + 1),
        ..Default::default()
    };
    let result = store.write(
        &content[..],
        &WriteOptions {
            holder: Some(Holder::flavour("oci").clone()),
            ..options.clone()
        },
    );
    assert!(result.is_err(), "a wrong expected size must fail");
    assert_eq!(
        store.extra_types(&record.digest).unwrap(),
        vec!["owner.base".to_string()],
        "the failed write left an owner mark on {}",
        record.digest
    );
}

/// A blob whose content hashes to its digest is the right content even when its index record
/// states a wrong size: repair corrects the record instead of deleting the blob, its extra data
/// and the key/value entries (refs) that point at it.
#[test]
fn fsck_repair_keeps_verified_content_whose_record_size_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path(), &BackendChoice::default()).unwrap();
    let record = store
        .write_bytes(b"verified content", &WriteOptions::default())
        .unwrap();
    store
        .put_data("ref", "latest", b"descriptor", Some(&record.digest))
        .unwrap();
    store.set_extra(&record.digest, "last-used", b"1").unwrap();
    let mut damaged = record.clone();
    damaged.size += 7;
    store.index().upsert(&damaged).unwrap();

    let report = store
        .fsck(oci_store::store::FsckOptions::repairing())
        .unwrap();
    assert!(report.problems.contains(&FsckProblem::SizeMismatch {
        digest: record.digest.clone(),
        indexed: damaged.size,
        actual: record.size,
    }));
    assert_eq!(
        store.info(&record.digest).unwrap().size,
        record.size,
        "repair must keep the blob and correct its size"
    );
    assert!(store.get_data("ref", "latest").unwrap().is_some());
    assert!(store
        .get_extra(&record.digest, "last-used")
        .unwrap()
        .is_some());
    assert!(store.fsck(Default::default()).unwrap().is_clean());
}
