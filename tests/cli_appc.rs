//! The `oci-store appc` commands through the built binary: what each prints (text and JSON),
//! its exit status, and what it changed in the store.

mod cli_support;

use std::path::{Path, PathBuf};

use cli_support::TestStore;
use serde_json::{json, Value};

fn s(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp paths")
}

/// Writes an ACI (plain tar) with `manifest` and one file; returns its path.
fn aci(store: &TestStore, file: &str, manifest: &Value, content: &str) -> PathBuf {
    let mut builder = tar::Builder::new(Vec::new());
    let mut append = |path: &str, kind: tar::EntryType, bytes: &[u8]| {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(kind);
        header.set_size(bytes.len() as u64);
        header.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
        header.set_mtime(1_500_000_000);
        header.set_uid(0);
        header.set_gid(0);
        builder.append_data(&mut header, path, bytes).unwrap();
    };
    append(
        "manifest",
        tar::EntryType::Regular,
        &serde_json::to_vec(manifest).unwrap(),
    );
    append("rootfs", tar::EntryType::Directory, b"");
    append(
        "rootfs/content",
        tar::EntryType::Regular,
        content.as_bytes(),
    );
    let path = store.scratch(file);
    std::fs::write(&path, builder.into_inner().unwrap()).unwrap();
    path
}

fn manifest(name: &str, version: &str) -> Value {
    json!({
        "acKind": "ImageManifest",
        "acVersion": "0.8.11",
        "name": name,
        "labels": [{"name": "version", "value": version}, {"name": "os", "value": "linux"}],
    })
}

#[test]
fn import_ls_get_info_and_refusals() {
    let store = TestStore::new();
    let v1 = aci(&store, "v1.aci", &manifest("example.com/app", "1.0.0"), "1");
    let v2 = aci(&store, "v2.aci", &manifest("example.com/app", "2.0.0"), "2");
    let text = store.ok(&["appc", "import", s(&v1)]);
    assert!(text.starts_with("imported sha512-"), "{text}");
    let report = store.json(&["appc", "import", "--latest", s(&v2), s(&v1)]);
    let (id2, id1) = (
        report[0]["id"].as_str().unwrap().to_string(),
        report[1]["id"].as_str().unwrap().to_string(),
    );
    assert_eq!(report[1]["already_present"], true);
    assert_eq!(
        store.ok(&["appc", "get", "example.com/app"]).trim(),
        id2,
        "latest wins"
    );
    assert_eq!(
        store
            .ok(&["appc", "get", "example.com/app", "--label", "version=1.0.0"])
            .trim(),
        id1
    );
    let missing = store.fails(&["appc", "get", "example.com/app", "--label", "version=9"]);
    assert!(missing.contains("version=9"), "{missing}");

    let listed = store.json(&["appc", "ls", "--sort", "version"]);
    let versions: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["labels"]["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["1.0.0", "2.0.0"]);
    let table = store.ok(&["appc", "ls", "--sort", "size"]);
    assert!(table.starts_with("ID"), "{table}");
    assert_eq!(table.lines().count(), 3, "{table}");
    let bad_sort = store.run(&["appc", "ls", "--sort", "colour"], b"");
    assert_eq!(
        bad_sort.status.code(),
        Some(2),
        "an unknown sort key is a usage error"
    );
    assert!(String::from_utf8_lossy(&bad_sort.stderr).contains("last-used"));

    let info = store.json(&["appc", "info", &id1[..12]]);
    assert_eq!(info["name"], "example.com/app");
    assert_eq!(info["manifest"]["labels"][0]["value"], "1.0.0");
    let info_text = store.ok(&["appc", "info", &id2]);
    assert!(info_text.contains("latest: true"), "{info_text}");

    // A refusal names the rule and leaves the store alone.
    let before = store.json(&["appc", "ls"]);
    let mut bad = manifest("example.com/a..b", "1.0.0");
    bad["acKind"] = json!("ImageManifest");
    let bad = aci(&store, "bad.aci", &bad, "x");
    let message = store.fails(&["appc", "import", s(&bad)]);
    assert!(
        message.contains("refused by rule manifest.name"),
        "{message}"
    );
    assert_eq!(store.json(&["appc", "ls"]), before);
    // A malformed key is a usage error (status 2), as every malformed argument is.
    let output = store.run(&["appc", "info", "sha512-a"], b"");
    assert_eq!(output.status.code(), Some(2));
    let ambiguous_or_short = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(
        ambiguous_or_short.contains("sha512- and 2 to 128"),
        "{ambiguous_or_short}"
    );
}

#[test]
fn export_remote_check_rm_and_gc() {
    let store = TestStore::new();
    let base = aci(
        &store,
        "base.aci",
        &manifest("example.com/base", "1.0.0"),
        "base",
    );
    let id = store.json(&["appc", "import", s(&base)])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut app = manifest("example.com/app", "1.0.0");
    app["dependencies"] =
        json!([{"imageName": "example.com/base"}, {"imageName": "example.com/gone"}]);
    let app = aci(&store, "app.aci", &app, "app");
    let app_id = store.json(&["appc", "import", s(&app)])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let check = store.run(&["appc", "check", &app_id], b"");
    assert_eq!(
        check.status.code(),
        Some(1),
        "a missing dependency is a finding"
    );
    let check_text = String::from_utf8_lossy(&check.stdout);
    assert!(
        check_text.contains("missing example.com/gone, required by example.com/app"),
        "{check_text}"
    );

    let out = store.scratch("out.aci");
    store.ok(&["appc", "export", "example.com/base", s(&out), "--gzip"]);
    let again = store.json(&["appc", "import", s(&out)]);
    assert_eq!(again[0]["id"], id.as_str());
    assert_eq!(again[0]["compression"], "gzip");

    let url = "https://example.com/base.aci";
    store.ok(&[
        "appc",
        "remote",
        "set",
        url,
        &id[..10],
        "--etag",
        "abc",
        "--max-age",
        "3600",
    ]);
    let record = store.json(&["appc", "remote", "get", url]);
    assert_eq!(record["image"], id.as_str());
    assert_eq!(
        store.json(&["appc", "remote", "decide", url])["decision"],
        "use-cache"
    );
    assert_eq!(
        store
            .json(&["appc", "remote", "ls"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // OCI's GC leaves appc images alone.
    store.ok(&["gc"]);
    assert_eq!(store.json(&["appc", "ls"]).as_array().unwrap().len(), 2);

    let gc = store.ok(&["appc", "gc", "--grace-period", "0s"]);
    assert!(gc.contains("removed "), "{gc}");
    assert!(gc.contains("2 removed") && gc.contains("freed"), "{gc}");
    assert_eq!(store.json(&["appc", "ls"]), json!([]));
    assert_eq!(store.json(&["appc", "remote", "ls"]), json!([]));
    let stats = store.json(&["stats"]);
    assert_eq!(stats["blobs"], 0, "{stats}");

    let removed = store.fails(&["appc", "rm", &id]);
    assert!(removed.contains("no appc image"), "{removed}");
    let bad_duration = store.run(&["appc", "gc", "--grace-period", "soon"], b"");
    assert_eq!(bad_duration.status.code(), Some(2));
}

#[test]
fn render_and_verify_tree() {
    let store = TestStore::new();
    let base = aci(
        &store,
        "base.aci",
        &manifest("example.com/base", "1.0.0"),
        "base",
    );
    store.ok(&["appc", "import", s(&base)]);
    let mut app = manifest("example.com/app", "1.0.0");
    app["dependencies"] = json!([{"imageName": "example.com/base"}]);
    let app = aci(&store, "app.aci", &app, "app");
    store.ok(&["appc", "import", s(&app)]);

    let target = store.scratch("rootfs");
    let report = store.json(&["appc", "render", "example.com/app", s(&target)]);
    assert_eq!(report["tree"]["reused"], false);
    assert_eq!(report["images"].as_array().unwrap().len(), 2);
    assert_eq!(
        std::fs::read_to_string(target.join("content")).unwrap(),
        "app",
        "upper image wins"
    );
    let again = store.ok(&["appc", "render", "example.com/app"]);
    assert!(again.starts_with("reused "), "{again}");

    let verified = store.ok(&["appc", "verify-tree", "example.com/app"]);
    assert!(verified.contains("verifies"), "{verified}");
    let tree = std::path::PathBuf::from(report["tree"]["rootfs"].as_str().unwrap());
    std::fs::write(tree.join("content"), "tampered").unwrap();
    let failed = store.fails(&["appc", "verify-tree", "example.com/app"]);
    assert!(failed.contains("changed"), "{failed}");

    let rm = store.json(&["appc", "rm", "example.com/base"]);
    assert_eq!(rm[0]["rendered_trees"], 1);
    assert!(!tree.exists(), "the tree outlived its image");
}
