//! `gc` errors are errors (issue 7, item 7): a ref that reaches a corrupt manifest makes `gc`
//! (and `gc --dry-run`) fail naming the manifest, the ref and the next step, and sweep
//! nothing; `fsck --repair` then deletes the corrupt blob, and `gc` collects the rest.

mod cli_support;

use cli_support::{overwrite, TestStore};
use oci_store::stores::oci::layout_builder::LayoutBuilder;

#[test]
fn gc_refuses_to_sweep_below_a_corrupt_manifest_until_it_is_repaired() {
    let store = TestStore::new();
    let layout = store.scratch("layout");
    let manifest = LayoutBuilder::simple_image(&layout, "app:1")
        .unwrap()
        .digest()
        .to_string();
    store.ok(&["import", layout.to_str().unwrap()]);
    let blobs = store.listed_digests();
    assert_eq!(blobs.len(), 4);

    let path = store.blob_file(&manifest);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[0] ^= 0xff;
    overwrite(&path, &bytes);

    // The links recorded when the manifest was imported (from its verified bytes) still say
    // what it reaches: gc keeps all of it without reading the damaged content.
    let report = store.json(&["gc"]);
    assert_eq!(report["swept"], serde_json::json!([]), "{report}");
    assert_eq!(
        store.listed_digests(),
        blobs,
        "gc swept below recorded links"
    );

    // Without them (a store from before they were recorded) the manifest must be read: refused.
    store.ok(&["extra", "rm", &manifest, "oci.links"]);
    for args in [&["gc"][..], &["gc", "--dry-run"][..]] {
        let stderr = store.fails(args);
        for needed in [
            manifest.as_str(),
            "ref app:1",
            "sweeping anything",
            "check --verify app:1",
            "fsck --repair",
            "rm --ref app:1",
        ] {
            assert!(
                stderr.contains(needed),
                "{args:?}: no {needed:?} in: {stderr}"
            );
        }
        assert_eq!(store.listed_digests(), blobs, "{args:?} swept");
    }

    // The repair deletes the corrupt manifest (and the ref with it); the rest is garbage now.
    store.ok(&["fsck", "--repair"]);
    let report = store.json(&["gc"]);
    assert_eq!(
        report["swept"].as_array().map(Vec::len),
        Some(3),
        "{report}"
    );
    assert!(store.listed_digests().is_empty());
}

#[test]
fn gc_lock_wait_is_an_option() {
    let store = TestStore::new();
    store.put(b"a blob, so that the store exists");
    let report = store.json(&["gc", "--lock-wait", "1"]);
    assert_eq!(report["swept"], serde_json::json!([]));
    assert_eq!(
        store.run(&["gc", "--lock-wait", "soon"], b"").status.code(),
        Some(2)
    );
}
