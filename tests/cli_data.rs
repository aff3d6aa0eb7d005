//! `oci-store data …` and `oci-store extra …` through the built binary.

mod cli_support;

use cli_support::{sha256, TestStore};
use serde_json::json;

#[test]
fn set_get_ls_rm_with_versions() {
    let store = TestStore::new();
    assert_eq!(
        store.ok(&["data", "set", "alpine:3", "first", "--type", "tag"]),
        "tag/alpine:3: version 1\n"
    );
    store.ok(&["data", "set", "alpine:3", "second value", "--type", "tag"]);
    store.ok(&["data", "set", "busybox", "other", "--type", "tag"]);
    store.ok(&["data", "set", "alpine:3", "elsewhere", "--type", "note"]);

    assert_eq!(
        store.ok(&["data", "get", "alpine:3", "--type", "tag"]),
        "second value"
    );
    let entry = store.json(&["data", "get", "alpine:3", "--type", "tag"]);
    assert_eq!(
        entry,
        json!({"data_type": "tag", "key": "alpine:3", "value": "second value",
               "blob": null, "version": 2})
    );

    let listed = store.ok(&["data", "ls", "--type", "tag"]);
    assert_eq!(
        listed,
        "alpine:3\t2\t-\tsecond value\nbusybox\t1\t-\tother\n"
    );
    let prefixed = store.json(&["data", "ls", "--type", "tag", "--prefix", "busy"]);
    assert_eq!(prefixed.as_array().unwrap().len(), 1);
    assert_eq!(prefixed[0]["key"], "busybox");

    store.ok(&["data", "rm", "alpine:3", "--type", "tag"]);
    let stderr = store.fails(&["data", "get", "alpine:3", "--type", "tag"]);
    assert!(stderr.contains("alpine:3"), "{stderr}");
    store.fails(&["data", "rm", "alpine:3", "--type", "tag"]);
    // The same key under another type is untouched.
    assert_eq!(
        store.ok(&["data", "get", "alpine:3", "--type", "note"]),
        "elsewhere"
    );
}

#[test]
fn an_entry_can_reference_a_stored_blob_by_prefix() {
    let store = TestStore::new();
    let digest = store.put(b"referenced content");
    let hex = &digest["sha256:".len()..];
    let set = store.json(&[
        "data",
        "set",
        "ref",
        "v",
        "--type",
        "tag",
        "--blob",
        &hex[..10],
    ]);
    assert_eq!(set["blob"], digest.as_str());
    assert_eq!(set["version"], 1);
    let entry = store.json(&["data", "get", "ref", "--type", "tag"]);
    assert_eq!(entry["blob"], digest.as_str());
    let listed = store.ok(&["data", "ls", "--type", "tag"]);
    assert_eq!(listed, format!("ref\t1\t{digest}\tv\n"));
}

#[test]
fn setting_an_entry_on_a_missing_blob_fails_and_writes_nothing() {
    let store = TestStore::new();
    store.put(b"present");
    let absent = sha256(b"never stored");
    let stderr = store.fails(&["data", "set", "k", "v", "--type", "tag", "--blob", &absent]);
    assert!(stderr.contains(&absent), "{stderr}");
    store.fails(&["data", "get", "k", "--type", "tag"]);
    assert_eq!(store.json(&["data", "ls", "--type", "tag"]), json!([]));
}

#[test]
fn invalid_data_types_are_refused() {
    let store = TestStore::new();
    let stderr = store.fails(&["data", "set", "k", "v", "--type", "has space"]);
    assert!(stderr.contains("has space"), "{stderr}");
}

#[test]
fn extra_data_set_get_rm() {
    let store = TestStore::new();
    let digest = store.put(b"with extras");
    store.ok(&["extra", "set", &digest, "last-used", "1700000000"]);
    assert_eq!(
        store.ok(&["extra", "get", &digest[..15], "last-used"]),
        "1700000000"
    );
    let item = store.json(&["extra", "get", &digest, "last-used"]);
    assert_eq!(
        item,
        json!({"digest": digest, "data_type": "last-used", "value": "1700000000"})
    );
    store.ok(&["extra", "rm", &digest, "last-used"]);
    let stderr = store.fails(&["extra", "get", &digest, "last-used"]);
    assert!(stderr.contains("last-used"), "{stderr}");
    store.fails(&["extra", "rm", &digest, "last-used"]);

    let absent = sha256(b"not here");
    store.fails(&["extra", "set", &absent, "last-used", "1"]);
}
