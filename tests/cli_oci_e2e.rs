//! The original client's command sequence, verbatim, on a layout made by umoci, through the
//! built binary: import, list, export, rm, gc — and what each must have done.

mod cli_support;
mod interop_tools;

use cli_support::TestStore;
use interop_tools::{layout_blobs, path_str, tools_available, umoci_image};

#[test]
fn original_client_sequence_on_a_umoci_layout() {
    if !tools_available("original_client_sequence_on_a_umoci_layout", &["umoci"]) {
        return;
    }
    let store = TestStore::new();
    let layout = store.scratch("umoci-layout");
    let manifest = umoci_image(
        &layout,
        "latest",
        &[
            ("/etc/greeting", b"hello from umoci\n"),
            ("/usr/share/doc/readme", b"a second layer\n"),
        ],
    );
    let image_blobs = layout_blobs(&layout);
    assert_eq!(image_blobs.len(), 4, "config, manifest and two layers");
    let out = store.scratch("out");

    // oci-store import --sref latest --dref nginx:latest DIR
    let imported = store.ok(&[
        "import",
        "--sref",
        "latest",
        "--dref",
        "nginx:latest",
        path_str(&layout),
    ]);
    assert!(
        imported.contains(&format!("imported nginx:latest {manifest}")),
        "{imported}"
    );
    let mut stored = store.listed_digests();
    stored.sort();
    assert_eq!(
        stored,
        image_blobs.keys().cloned().collect::<Vec<_>>(),
        "the store holds exactly the image's blobs"
    );

    // oci-store list
    let listed = store.ok(&["list"]);
    let row = listed
        .lines()
        .find(|line| line.starts_with("nginx:latest "))
        .unwrap_or_else(|| panic!("nginx:latest not listed:\n{listed}"));
    assert!(row.contains(&manifest), "{row}");
    assert!(
        row.contains("application/vnd.oci.image.manifest.v1+json"),
        "{row}"
    );
    assert!(row.contains("linux/amd64"), "{row}");

    // oci-store export --sref nginx:latest --dref latest OUT
    store.ok(&[
        "export",
        "--sref",
        "nginx:latest",
        "--dref",
        "latest",
        path_str(&out),
    ]);
    assert_eq!(
        layout_blobs(&out),
        image_blobs,
        "the export holds the same blobs, byte for byte"
    );
    assert_eq!(interop_tools::layout_ref_digest(&out, "latest"), manifest);
    assert!(out.join("oci-layout").is_file());

    // oci-store rm --ref nginx:latest
    store.ok(&["rm", "--ref", "nginx:latest"]);
    assert!(!store.ok(&["list"]).contains("nginx:latest"));
    assert_eq!(
        store.listed_digests().len(),
        4,
        "rm removes the name only; the blobs wait for gc"
    );

    // oci-store gc
    let collected = store.ok(&["gc"]);
    for digest in image_blobs.keys() {
        assert!(
            collected.contains(&format!("removed {digest}")),
            "gc names {digest}:\n{collected}"
        );
        assert!(
            !store.blob_file(digest).exists(),
            "{digest}'s content is gone from the store directory"
        );
    }
    assert!(
        store.listed_digests().is_empty(),
        "no blob of the image is left"
    );
    let stats = store.json(&["stats"]);
    assert_eq!(stats["blobs"], 0);
    assert_eq!(stats["bytes"], 0);
}
