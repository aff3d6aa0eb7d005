//! A blob stored with `blob put` is the user's until `blob rm` (issue 7, item 1): the OCI GC
//! never takes it, whether the put came before or after an import of the same content, and
//! `blob rm` lets go of the user's hold only, deleting the blob when nothing else holds it.

mod cli_support;

use std::path::Path;

use cli_support::TestStore;
use oci_store::stores::oci::layout_builder::LayoutBuilder;

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp paths")
}

/// A layout with `app:1`, whose one layer is returned with its digest.
fn image_with_layer(store: &TestStore) -> (std::path::PathBuf, Vec<u8>, String) {
    let layout = store.scratch("layout");
    let mut builder = LayoutBuilder::new(&layout).unwrap();
    let layer = LayoutBuilder::layer_tar_gz(&[("etc/user-file", b"the user's layer\n")]).unwrap();
    let image = builder
        .image("linux", "amd64", std::slice::from_ref(&layer))
        .unwrap();
    builder.add_ref(Some("app:1"), &image);
    builder.finish().unwrap();
    let digest = cli_support::sha256(&layer);
    (layout, layer, digest)
}

#[test]
fn a_put_after_an_import_survives_rm_ref_and_gc() {
    let store = TestStore::new();
    let (layout, layer, digest) = image_with_layer(&store);
    store.ok(&["import", path_str(&layout)]);
    assert_eq!(store.put(&layer), digest, "blob put prints the digest");
    store.ok(&["rm", "--ref", "app:1"]);
    store.ok(&["gc"]);
    assert_eq!(
        store.listed_digests(),
        vec![digest.clone()],
        "only the put layer is left"
    );
    assert_eq!(store.ok_bytes(&["blob", "get", &digest]), layer);
}

#[test]
fn a_put_before_an_import_survives_rm_ref_and_gc() {
    let store = TestStore::new();
    let (layout, layer, digest) = image_with_layer(&store);
    assert_eq!(store.put(&layer), digest);
    store.ok(&["import", path_str(&layout)]);
    store.ok(&["rm", "--ref", "app:1"]);
    store.ok(&["gc"]);
    assert_eq!(store.listed_digests(), vec![digest.clone()]);
    assert_eq!(store.ok_bytes(&["blob", "get", &digest]), layer);
}

#[test]
fn a_put_of_present_content_with_its_digest_is_recorded_too() {
    // The no-read path: `--digest` of content already stored returns without streaming.
    let store = TestStore::new();
    let (layout, layer, digest) = image_with_layer(&store);
    store.ok(&["import", path_str(&layout)]);
    let file = store.scratch("layer.tar.gz");
    std::fs::write(&file, &layer).unwrap();
    store.ok(&["blob", "put", path_str(&file), "--digest", &digest]);
    store.ok(&["rm", "--ref", "app:1"]);
    store.ok(&["gc"]);
    assert_eq!(store.listed_digests(), vec![digest]);
}

#[test]
fn blob_rm_of_a_blob_an_image_also_holds_keeps_it_and_says_why() {
    let store = TestStore::new();
    let (layout, layer, digest) = image_with_layer(&store);
    store.ok(&["import", path_str(&layout)]);
    store.put(&layer);

    let said = store.ok(&["blob", "rm", &digest]);
    assert!(
        said.contains("kept") && said.contains("owner.oci"),
        "{said}"
    );
    let json = store.json(&["blob", "info", &digest]);
    assert_eq!(
        json["extra_data_types"],
        serde_json::json!(["owner.oci"]),
        "only the user's hold went"
    );
    // Without the image, the OCI GC now takes it: the user let go.
    store.ok(&["rm", "--ref", "app:1"]);
    store.ok(&["gc"]);
    assert!(store.listed_digests().is_empty());
}

#[test]
fn blob_rm_json_reports_what_still_holds_the_blob() {
    let store = TestStore::new();
    let digest = store.put(b"held by an entry");
    store.ok(&[
        "data", "set", "pin", "v", "--type", "tag", "--blob", &digest,
    ]);
    let json = store.json(&["blob", "rm", &digest]);
    assert_eq!(json["digest"], digest);
    assert_eq!(json["removed"], false);
    assert_eq!(
        json["held_by"],
        serde_json::json!({"owners": [], "entries": [{"data_type": "tag", "key": "pin"}]})
    );
    // The entry was the last holder: removing it removes the blob (nothing leaks).
    store.ok(&["data", "rm", "pin", "--type", "tag"]);
    assert!(store.listed_digests().is_empty());
}

#[test]
fn blob_rm_force_deletes_whatever_holds_it() {
    let store = TestStore::new();
    let (layout, layer, digest) = image_with_layer(&store);
    store.ok(&["import", path_str(&layout)]);
    store.put(&layer);
    let said = store.ok(&["blob", "rm", "--force", &digest]);
    assert_eq!(said.trim(), format!("removed {digest}"));
    assert!(!store.listed_digests().contains(&digest));
    // The image is now incomplete, and `check` says so.
    let output = store.run(&["check", "app:1"], b"");
    assert_eq!(
        output.status.code(),
        Some(3),
        "check of an incomplete image"
    );
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.contains(&format!("missing: {digest}")), "{said}");
}
