//! `oci-store gc`, `fsck`, `stats` and backend selection through the built binary.

mod cli_support;

use cli_support::{overwrite, sha256, TestStore};

#[test]
fn gc_removes_a_planted_unindexed_blob_and_keeps_indexed_ones() {
    let store = TestStore::new();
    let kept = store.put(b"indexed content");
    let planted = b"content nobody indexed";
    let planted_digest = sha256(planted);
    let planted_file = store.blob_file(&planted_digest);
    std::fs::write(&planted_file, planted).unwrap();

    let report = store.json(&["gc"]);
    assert_eq!(
        report["unindexed_blobs"],
        serde_json::json!([planted_digest])
    );
    assert_eq!(report["unindexed_bytes"], planted.len());
    assert_eq!(report["freed_bytes"], planted.len());
    assert!(!planted_file.exists());
    assert_eq!(store.ok_bytes(&["blob", "get", &kept]), b"indexed content");

    // Text output names what went; a second run finds nothing.
    std::fs::write(&planted_file, planted).unwrap();
    let text = store.ok(&["gc"]);
    assert!(
        text.contains(&format!("removed unindexed content {planted_digest}")),
        "{text}"
    );
    let again = store.json(&["gc"]);
    assert_eq!(again["unindexed_blobs"], serde_json::json!([]));
    assert_eq!(again["freed_bytes"], 0);
}

#[test]
fn fsck_detects_a_corrupted_blob_and_repair_removes_it() {
    let store = TestStore::new();
    let healthy = store.put(b"healthy blob");
    let damaged = store.put(b"blob to corrupt");
    assert!(store.ok(&["fsck"]).contains("no problems"));

    overwrite(&store.blob_file(&damaged), b"tampered bytes!");

    let output = store.run(&["fsck"], b"");
    assert_eq!(output.status.code(), Some(1), "problems left: status 1");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains(&format!("corrupt content: {damaged}")),
        "{text}"
    );

    let output = store.run(&["--json", "fsck"], b"");
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["problems"][0]["kind"], "corrupt_content");
    assert_eq!(report["problems"][0]["digest"], damaged.as_str());
    assert_eq!(report["repaired"], 0);

    let repaired = store.json(&["fsck", "--repair"]);
    assert_eq!(repaired["repaired"], 1);
    assert!(store.ok(&["fsck"]).contains("no problems"));
    store.fails(&["blob", "info", &damaged]);
    assert_eq!(store.listed_digests(), vec![healthy]);
}

#[test]
fn stats_counts_blobs_bytes_entries_and_names_backends() {
    let store = TestStore::new();
    store.put(b"12345");
    store.put(b"1234567890");
    store.ok(&["data", "set", "a", "1", "--type", "tag"]);
    store.ok(&["data", "set", "b", "2", "--type", "tag"]);
    let stats = store.json(&["stats"]);
    assert_eq!(stats["blobs"], 2);
    assert_eq!(stats["bytes"], 15);
    assert_eq!(stats["data_entries"]["tag"], 2);
    assert_eq!(stats["backends"]["blobs"], "fs");
    assert_eq!(stats["store"], store.path().to_str().unwrap());
    let text = store.ok(&["stats"]);
    assert!(text.contains("blobs:    2"), "{text}");
}

#[test]
fn a_backend_that_differs_from_the_existing_store_is_an_error() {
    let store = TestStore::new();
    store.put(b"created with the defaults");
    let recorded = store.json(&["stats"])["backends"]["index"]
        .as_str()
        .unwrap()
        .to_string();
    let other = if recorded == "lmdb" { "sqlite" } else { "lmdb" };

    let stderr = store.fails(&["--backend", other, "stats"]);
    assert!(
        stderr.contains(&recorded) && stderr.contains(other),
        "{stderr}"
    );
    let stderr = store.fails(&["--blobs", "sqlite", "blob", "ls"]);
    assert!(stderr.contains("blobs"), "{stderr}");
    // Asking for what the store records is fine.
    store.ok(&["--backend", &recorded, "--blobs", "fs", "blob", "ls"]);
}

#[test]
fn a_new_store_keeps_the_backend_it_was_created_with() {
    let store = TestStore::new();
    // `stats` of a store not there yet shows what one would be made with, and creates none.
    let shown = store.ok(&["--backend", "lmdb", "stats"]);
    assert!(shown.contains("index=lmdb"), "{shown}");
    assert!(!store.path().exists());
    let output = store.run(
        &["--backend", "lmdb", "data", "set", "--type", "t", "k", "v"],
        b"",
    );
    assert!(output.status.success());
    // Later commands need not repeat it.
    let digest = store.put(b"in an lmdb-indexed store");
    let stats = store.json(&["stats"]);
    assert_eq!(stats["backends"]["index"], "lmdb");
    assert_eq!(stats["backends"]["kv"], "lmdb");
    assert_eq!(
        store.ok_bytes(&["blob", "get", &digest]),
        b"in an lmdb-indexed store"
    );
}

#[test]
fn an_unknown_backend_for_a_new_store_lists_the_registered_ones() {
    let store = TestStore::new();
    // A usage error (status 2), found before any store is opened.
    let output = store.run(&["--backend", "no-such-backend", "stats"], b"");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(stderr.contains("no-such-backend"), "{stderr}");
    assert!(stderr.contains("registered:"), "{stderr}");
}
