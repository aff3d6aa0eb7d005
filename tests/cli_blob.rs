//! `oci-store blob …` through the built binary.

mod cli_support;

use std::collections::HashMap;

use cli_support::{pseudo_random_bytes, sha256, TestStore};

#[test]
fn put_then_get_returns_the_same_bytes_from_a_file_and_from_stdin() {
    let store = TestStore::new();
    // Larger than the copy buffers, so the streaming loops go round more than once.
    let content = pseudo_random_bytes(3 * 1024 * 1024 + 17, 1);
    let file = store.scratch("content.bin");
    std::fs::write(&file, &content).unwrap();

    let from_file = store.ok(&["blob", "put", file.to_str().unwrap()]);
    assert_eq!(from_file.trim(), sha256(&content));
    let from_stdin = store.put(&content);
    assert_eq!(from_stdin, sha256(&content));

    let read_back = store.ok_bytes(&["blob", "get", &from_stdin]);
    assert!(read_back == content, "blob get returned different bytes");
    assert_eq!(store.listed_digests(), vec![sha256(&content)]);
}

#[test]
fn references_resolve_in_every_prefix_form() {
    let store = TestStore::new();
    let digest = store.put(b"resolve me");
    store.put(b"some other blob");
    let hex = digest.strip_prefix("sha256:").unwrap();
    for reference in [
        format!("sha256:{}", &hex[..12]),
        format!("sha256-{}", &hex[..12]),
        hex[..12].to_string(),
        digest.clone(),
        format!("sha256-{hex}"),
    ] {
        assert_eq!(
            store.ok(&["blob", "resolve", &reference]).trim(),
            digest,
            "{reference}"
        );
    }
    assert_eq!(
        store.ok_bytes(&["blob", "get", &hex[..8]]),
        b"resolve me".to_vec()
    );
}

#[test]
fn an_ambiguous_prefix_fails_listing_the_candidates() {
    let store = TestStore::new();
    let (first, second) = two_contents_sharing_a_digest_prefix(4);
    let first_digest = store.put(&first);
    let second_digest = store.put(&second);
    let prefix = &first_digest["sha256:".len().."sha256:".len() + 4];

    let stderr = store.fails(&["blob", "resolve", prefix]);
    assert!(stderr.contains("ambiguous"), "{stderr}");
    assert!(stderr.contains(&first_digest), "{stderr}");
    assert!(stderr.contains(&second_digest), "{stderr}");
    // `get` resolves the same way.
    let stderr = store.fails(&["blob", "get", &format!("sha256-{prefix}")]);
    assert!(stderr.contains(&first_digest), "{stderr}");
}

/// Hashes candidate contents until two share their first `hex_len` hex characters; with 4
/// (65536 prefixes) a few hundred candidates suffice, and the search is deterministic.
fn two_contents_sharing_a_digest_prefix(hex_len: usize) -> (Vec<u8>, Vec<u8>) {
    let mut seen: HashMap<String, Vec<u8>> = HashMap::new();
    for candidate in 0u64.. {
        let content = format!("collision candidate {candidate}").into_bytes();
        let digest = sha256(&content);
        let prefix = digest["sha256:".len().."sha256:".len() + hex_len].to_string();
        if let Some(earlier) = seen.insert(prefix, content.clone()) {
            return (earlier, content);
        }
    }
    unreachable!("the candidates are unbounded")
}

#[test]
fn a_wrong_digest_or_size_fails_and_stores_nothing() {
    let store = TestStore::new();
    let wrong_digest = sha256(b"something else");
    let stderr = store.fails_with_input(
        &["blob", "put", "-", "--digest", &wrong_digest],
        b"actual content",
    );
    assert!(stderr.contains(&wrong_digest), "{stderr}");

    let stderr = store.fails_with_input(&["blob", "put", "-", "--size", "3"], b"actual content");
    assert!(stderr.contains("size"), "{stderr}");

    assert!(store.listed_digests().is_empty());
    assert_eq!(store.json(&["stats"])["blobs"], 0);
    // The refused writes were the store's first: it is not left behind, nor their content.
    assert!(!store.path().exists(), "a refused first write left a store");
    store.put(b"another blob");
    store.fails_with_input(
        &["blob", "put", "-", "--digest", &wrong_digest],
        b"actual content",
    );
    let stored_files = std::fs::read_dir(store.path().join("blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(stored_files, 1, "content of a refused write is in blobs/");

    // The right digest and size are accepted.
    let right = sha256(b"actual content");
    let output = store.run(
        &["blob", "put", "-", "--digest", &right, "--size", "14"],
        b"actual content",
    );
    cli_support::assert_success(&["blob", "put"], &output);
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), right);
}

#[test]
fn ls_filters_by_media_type_and_info_shows_what_hangs_off_a_blob() {
    let store = TestStore::new();
    let config = b"{\"config\":true}";
    let file = store.scratch("config.json");
    std::fs::write(&file, config).unwrap();
    let media_type = "application/vnd.oci.image.config.v1+json";
    let config_digest = store.ok(&[
        "blob",
        "put",
        file.to_str().unwrap(),
        "--media-type",
        media_type,
    ]);
    let config_digest = config_digest.trim();
    let plain = store.put(b"plain");

    let listed = store.ok(&["blob", "ls", "--media-type", media_type]);
    assert_eq!(
        listed,
        format!("{config_digest} {} {media_type}\n", config.len())
    );
    let all = store.ok(&["blob", "ls"]);
    assert!(
        all.contains(&format!("{plain} 5 application/octet-stream")),
        "{all}"
    );

    store.ok(&["extra", "set", config_digest, "last-used", "yesterday"]);
    store.ok(&[
        "data",
        "set",
        "app:v1",
        "x",
        "--type",
        "tag",
        "--blob",
        config_digest,
    ]);
    let info = store.json(&["blob", "info", config_digest]);
    assert_eq!(info["digest"], config_digest);
    assert_eq!(info["size"], config.len());
    assert_eq!(info["media_type"], media_type);
    // `owner.base`: the put recorded the base store as the blob's holder.
    assert_eq!(
        info["extra_data_types"],
        serde_json::json!(["last-used", "owner.base"])
    );
    assert_eq!(
        info["referenced_by"],
        serde_json::json!([{"data_type": "tag", "key": "app:v1"}])
    );
    let text = store.ok(&["blob", "info", config_digest]);
    assert!(
        text.contains("last-used") && text.contains("tag/app:v1"),
        "{text}"
    );

    let listed: serde_json::Value = store.json(&["blob", "ls"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(2));
}

/// `blob rm --force` is the full cascade; plain `blob rm` would keep this blob, which an entry
/// holds (tests/cli_blob_ownership.rs).
#[test]
fn rm_force_cascades_to_extra_data_and_referencing_entries() {
    let store = TestStore::new();
    let digest = store.put(b"to be removed");
    let kept = store.put(b"to be kept");
    store.ok(&[
        "data", "set", "gone", "v", "--type", "tag", "--blob", &digest,
    ]);
    store.ok(&[
        "data", "set", "stays", "v", "--type", "tag", "--blob", &kept,
    ]);
    store.ok(&["data", "set", "unrelated", "v", "--type", "tag"]);
    store.ok(&["extra", "set", &digest, "note", "hello"]);

    assert_eq!(
        store.ok(&["blob", "rm", "--force", &digest]).trim(),
        format!("removed {digest}")
    );

    store.fails(&["blob", "info", &digest]);
    store.fails(&["data", "get", "gone", "--type", "tag"]);
    let remaining: Vec<String> = store
        .ok(&["data", "ls", "--type", "tag"])
        .lines()
        .map(|line| line.split('\t').next().unwrap().to_string())
        .collect();
    assert_eq!(remaining, ["stays", "unrelated"]);
    assert!(!store.blob_file(&digest).exists());
    assert_eq!(store.listed_digests(), vec![kept.clone()]);
    // Removing again: nothing matches, with or without --force.
    let stderr = store.fails(&["blob", "rm", &digest]);
    assert!(stderr.contains("no blob matches"), "{stderr}");
    let stderr = store.fails(&["blob", "rm", "--force", &digest]);
    assert!(stderr.contains("no blob matches"), "{stderr}");
    // Plain `blob rm` of a blob an entry also holds lets go of the user's hold only; the
    // entry, its last holder, takes the blob with it when removed.
    assert_eq!(
        store.ok(&["blob", "rm", &kept]).trim(),
        format!("kept {kept}: still held by entry tag/stays (blob rm --force deletes it anyway)")
    );
    store.ok(&["data", "rm", "stays", "--type", "tag"]);
    assert!(store.listed_digests().is_empty());
    assert!(!store.blob_file(&kept).exists());
}

#[test]
fn usage_errors_exit_with_status_2_and_missing_files_name_the_path() {
    let store = TestStore::new();
    assert_eq!(store.run(&["blob"], b"").status.code(), Some(2));
    assert_eq!(store.run(&["blob", "put"], b"").status.code(), Some(2));
    assert_eq!(
        store
            .run(&["blob", "put", "-", "--digest", "md5:abc"], b"")
            .status
            .code(),
        Some(2)
    );
    let missing = store.scratch("no-such-file");
    let stderr = store.fails(&["blob", "put", missing.to_str().unwrap()]);
    assert!(stderr.contains("no-such-file"), "{stderr}");
    let output = store.run(&["blob", "resolve", "ab"], b"");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("too short"));
}
