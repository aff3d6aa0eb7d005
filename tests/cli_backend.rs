//! `oci-store backend info|convert` through the built binary.

mod cli_support;

use cli_support::TestStore;

#[test]
fn convert_moves_metadata_and_blobs_and_keeps_every_blob_and_entry() {
    let store = TestStore::new();
    let digest = store.put(b"content to carry across");
    store.ok(&[
        "data", "set", "app", "v1", "--type", "ref", "--blob", &digest,
    ]);
    store.ok(&["extra", "set", &digest, "last-used", "42"]);

    let info = store.json(&["backend", "info"]);
    assert_eq!(info["config"]["backends"]["index"], "sqlite");
    assert_eq!(info["config"]["backends"]["blobs"], "fs");

    let report = store.json(&["backend", "convert", "--to", "lmdb", "--to-blobs", "sqlite"]);
    assert_eq!(report["blobs"], 1);
    assert_eq!(report["data_entries"], 1);
    let info = store.json(&["backend", "info"]);
    for role in ["index", "extra", "kv"] {
        assert_eq!(info["config"]["backends"][role], "lmdb", "{role}");
    }
    assert_eq!(info["config"]["backends"]["blobs"], "sqlite");
    // The fs copy is gone: content now comes from the sqlite blob store.
    assert!(!store.blob_file(&digest).exists());

    assert_eq!(
        store.ok_bytes(&["blob", "get", &digest]),
        b"content to carry across"
    );
    assert_eq!(
        store.ok_bytes(&["data", "get", "app", "--type", "ref"]),
        b"v1"
    );
    assert_eq!(
        store.ok_bytes(&["extra", "get", &digest, "last-used"]),
        b"42"
    );
    // The old backend name on the command line is now a mismatch, not a silent switch.
    let error = store.fails(&["--backend", "sqlite", "blob", "ls"]);
    assert!(
        error.contains("lmdb") && error.contains("sqlite"),
        "{error}"
    );
}

#[test]
fn convert_without_a_target_or_to_an_unknown_backend_is_refused() {
    let store = TestStore::new();
    store.put(b"x");
    let output = store.run(&["backend", "convert"], b"");
    assert_eq!(output.status.code(), Some(2), "no target is a usage error");
    assert!(String::from_utf8_lossy(&output.stderr).contains("--to"));
    let output = store.run(&["backend", "convert", "--to", "nosuch"], b"");
    assert_eq!(
        output.status.code(),
        Some(2),
        "an unknown target is a usage error"
    );
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(
        error.contains("--to") && error.contains("nosuch") && error.contains("lmdb"),
        "{error}"
    );
    let info = store.json(&["backend", "info"]);
    assert_eq!(info["config"]["backends"]["index"], "sqlite");
}
