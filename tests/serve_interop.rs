//! Real clients against `oci-store serve`: our own `pull`/`push`, and skopeo (`copy` both
//! ways, `inspect`, `list-tags`), digests compared end to end.

mod cli_support;
mod interop_tools;
mod serve_support;

use cli_support::TestStore;
use interop_tools::{path_str, run_tool, tools_available};
use oci_store::stores::oci::layout_builder::LayoutBuilder;
use serve_support::Server;

/// A store with `demo:v1`; returns its manifest digest.
fn store_with_image(store: &TestStore) -> String {
    let layout = store.scratch("layout");
    let mut builder = LayoutBuilder::new(&layout).unwrap();
    let big = cli_support::pseudo_random_bytes(500_000, 11);
    let layers = [
        LayoutBuilder::layer_tar_gz(&[("data.bin", &big)]).unwrap(),
        LayoutBuilder::layer_tar_gz(&[("etc/motd", b"served\n")]).unwrap(),
    ];
    let image = builder.image("linux", "amd64", &layers).unwrap();
    builder.add_ref(Some("demo:v1"), &image);
    builder.finish().unwrap();
    store.ok(&["import", path_str(&layout)]);
    image.digest().to_string()
}

fn listed_digest(store: &TestStore, name: &str) -> Option<String> {
    store
        .json(&["list", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["name"] == name)
        .map(|entry| entry["digest"].as_str().unwrap().to_string())
}

#[test]
fn our_own_client_pulls_from_and_pushes_to_serve() {
    let served = TestStore::new();
    let digest = store_with_image(&served);
    let server = Server::start(&served, &["--push"]);
    let address = server.address.clone();

    let client = TestStore::new();
    let pulled = client.json(&["pull", &format!("{address}/demo:v1")]);
    assert_eq!(pulled["digest"], digest.as_str(), "{pulled}");
    client.ok(&["check", "--verify", &format!("{address}/demo:v1")]);

    let pushed = client.json(&[
        "push",
        &format!("{address}/demo:v1"),
        &format!("{address}/copies/demo:v2"),
    ]);
    assert_eq!(pushed["digest"], digest.as_str(), "{pushed}");
    // Every blob was already there: nothing uploaded twice.
    assert_eq!(pushed["blobs_uploaded"], 0, "{pushed}");
    assert_eq!(
        listed_digest(&served, "copies/demo:v2"),
        Some(digest.clone())
    );
    served.ok(&["check", "--verify", "copies/demo:v2"]);
}

#[test]
fn skopeo_copies_through_serve_both_ways() {
    if !tools_available("skopeo_copies_through_serve_both_ways", &["skopeo"]) {
        return;
    }
    let served = TestStore::new();
    let digest = store_with_image(&served);
    let server = Server::start(&served, &["--push"]);
    let remote = |path: &str| format!("docker://{}/{path}", server.address);

    let inspected: serde_json::Value = serde_json::from_str(&run_tool(
        "skopeo",
        &["inspect", "--tls-verify=false", &remote("demo:v1")],
    ))
    .expect("skopeo inspect JSON");
    assert_eq!(inspected["Digest"], digest.as_str());
    let tags: serde_json::Value = serde_json::from_str(&run_tool(
        "skopeo",
        &["list-tags", "--tls-verify=false", &remote("demo")],
    ))
    .expect("skopeo list-tags JSON");
    assert_eq!(tags["Tags"], serde_json::json!(["v1"]));

    // Out of the server into a layout, digest for digest.
    let layout = served.scratch("copied");
    run_tool(
        "skopeo",
        &[
            "copy",
            "--preserve-digests",
            "--src-tls-verify=false",
            &remote("demo:v1"),
            &format!("oci:{}:v1", path_str(&layout)),
        ],
    );
    assert_eq!(interop_tools::layout_ref_digest(&layout, "v1"), digest);

    // And back in under another name: a ref the store has at once, complete and intact.
    run_tool(
        "skopeo",
        &[
            "copy",
            "--preserve-digests",
            "--dest-tls-verify=false",
            &format!("oci:{}:v1", path_str(&layout)),
            &remote("back/demo:v2"),
        ],
    );
    assert_eq!(listed_digest(&served, "back/demo:v2"), Some(digest.clone()));
    served.ok(&["check", "--verify", "back/demo:v2"]);
    // export and unpack see the pushed image at once.
    let exported = served.scratch("exported");
    served.ok(&[
        "export",
        "--sref",
        "back/demo:v2",
        "--dref",
        "v2",
        path_str(&exported),
    ]);
    assert_eq!(interop_tools::layout_ref_digest(&exported, "v2"), digest);
    let rootfs = served.scratch("rootfs");
    served.ok(&["unpack", "back/demo:v2", path_str(&rootfs)]);
    assert_eq!(std::fs::read(rootfs.join("etc/motd")).unwrap(), b"served\n");
}
