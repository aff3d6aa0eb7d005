//! Issue 7 item 4 through the built binary: a layer damaged in the store (one byte flipped,
//! cut short) is not exported. `export` exits 1 naming the blob, the ref and `fsck --repair`,
//! and nothing names the blob: a new layout gets no `index.json`, an existing one keeps its
//! `index.json` byte for byte, an archive is not written (an old one is left as it was).

mod cli_support;

use std::path::Path;

use cli_support::{overwrite, TestStore};
use oci_store::stores::oci::layout_builder::LayoutBuilder;

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// The digest of layer `position` of the manifest the layout's only entry names.
fn layer_digest(layout: &Path, position: usize) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifest = index["manifests"][0]["digest"].as_str().unwrap();
    let (algorithm, hex) = manifest.split_once(':').unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(layout.join("blobs").join(algorithm).join(hex)).unwrap(),
    )
    .unwrap();
    manifest["layers"][position]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

fn assert_refused(store: &TestStore, args: &[&str], digest: &str, reference: &str) {
    let stderr = store.fails(args);
    assert!(stderr.contains(digest), "{args:?}: no digest: {stderr}");
    assert!(stderr.contains(reference), "{args:?}: no ref: {stderr}");
    assert!(
        stderr.contains("oci-store fsck --repair"),
        "{args:?}: no pointer at fsck --repair: {stderr}"
    );
}

fn damaged_layer_is_not_exported(damage: impl Fn(&Path)) {
    let store = TestStore::new();
    let layout = store.scratch("layout");
    LayoutBuilder::simple_image(&layout, "app:1").unwrap();
    store.ok(&["import", path_str(&layout)]);
    // A layout holding another image only (a layout that already has an intact copy of the
    // layer needs nothing from the store, and gets nothing damaged).
    let other = store.scratch("other");
    LayoutBuilder::simple_image(&other, "other:1").unwrap();
    store.ok(&["import", path_str(&other)]);
    let existing = store.scratch("existing");
    store.ok(&["export", "--sref", "other:1", path_str(&existing)]);
    let existing_index = std::fs::read(existing.join("index.json")).unwrap();
    let old_archive = store.scratch("old.tar");
    store.ok(&[
        "export",
        "--sref",
        "app:1",
        "--archive",
        path_str(&old_archive),
    ]);
    let old_archive_bytes = std::fs::read(&old_archive).unwrap();

    let layer = layer_digest(&layout, 1);
    damage(&store.blob_file(&layer));

    let fresh = store.scratch("fresh");
    assert_refused(
        &store,
        &["export", "--sref", "app:1", path_str(&fresh)],
        &layer,
        "app:1",
    );
    assert!(
        !fresh.join("index.json").exists(),
        "a new layout names the blob"
    );
    assert_refused(
        &store,
        &["export", "--sref", "app:1", path_str(&existing)],
        &layer,
        "app:1",
    );
    assert_eq!(
        std::fs::read(existing.join("index.json")).unwrap(),
        existing_index,
        "the existing layout's index.json changed"
    );
    let archive = store.scratch("new.tar");
    assert_refused(
        &store,
        &["export", "--sref", "app:1", "--archive", path_str(&archive)],
        &layer,
        "app:1",
    );
    assert!(
        !archive.exists(),
        "an archive of a damaged layer was written"
    );
    assert_refused(
        &store,
        &[
            "export",
            "--sref",
            "app:1",
            "--archive",
            path_str(&old_archive),
        ],
        &layer,
        "app:1",
    );
    assert_eq!(
        std::fs::read(&old_archive).unwrap(),
        old_archive_bytes,
        "the old archive changed"
    );
}

#[test]
fn a_layer_with_a_flipped_byte_is_not_exported() {
    damaged_layer_is_not_exported(|file| {
        let mut bytes = std::fs::read(file).unwrap();
        bytes[10] ^= 0x01;
        overwrite(file, &bytes);
    });
}

#[test]
fn a_truncated_layer_is_not_exported() {
    damaged_layer_is_not_exported(|file| {
        let bytes = std::fs::read(file).unwrap();
        overwrite(file, &bytes[..bytes.len() - 7]);
    });
}

/// The copy in a layout of the right size is rehashed, not trusted: a damaged one is replaced
/// by the store's verified copy before `index.json` names it.
#[test]
fn a_damaged_blob_already_in_the_layout_is_replaced() {
    let store = TestStore::new();
    let layout = store.scratch("layout");
    LayoutBuilder::simple_image(&layout, "app:1").unwrap();
    store.ok(&["import", path_str(&layout)]);
    let out = store.scratch("out");
    store.ok(&["export", "--sref", "app:1", path_str(&out)]);
    let layer = layer_digest(&layout, 1);
    let (algorithm, hex) = layer.split_once(':').unwrap();
    let exported = out.join("blobs").join(algorithm).join(hex);
    let good = std::fs::read(&exported).unwrap();
    let mut bad = good.clone();
    bad[3] ^= 0x80;
    std::fs::write(&exported, &bad).unwrap();

    let report = store.json(&["export", "--sref", "app:1", path_str(&out)]);
    assert_eq!(report["blobs_written"], 1, "{report}");
    assert_eq!(std::fs::read(&exported).unwrap(), good);
}
