//! Review findings in the base store: bad input that changed stored state.

use oci_store::store::{open_store, BackendChoice};
use oci_store::WriteOptions;

/// `write_owned` naming a stored blob with the wrong expected size fails, and must not leave
/// that blob carrying the flavour's owner mark: the mark would hand a blob the flavour never
/// held to its GC (a base-store blob with no mark goes only when deleted explicitly).
#[test]
fn owned_write_with_wrong_expected_size_marks_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path(), &BackendChoice::default()).unwrap();
    let content = b"written through the base store alone";
    let record = store.write_bytes(content, &WriteOptions::default()).unwrap();

    let options = WriteOptions {
        expected_digest: Some(record.digest.clone()),
        expected_size: Some(record.size + 1),
        ..Default::default()
    };
    let result = store.write_owned(&content[..], &options, "oci");
    assert!(result.is_err(), "a wrong expected size must fail");
    assert_eq!(
        store.extra_types(&record.digest).unwrap(),
        Vec::<String>::new(),
        "the failed write left an owner mark on {}",
        record.digest
    );
}
