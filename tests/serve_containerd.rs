//! containerd's `ctr` against `oci-store serve`: `ctr images pull --plain-http` of a served
//! image and `ctr images push --plain-http` of it under another name, digests compared, on a
//! containerd daemon the test starts on a private socket (it needs root, as containerd does).

mod cli_support;
mod interop_tools;
mod serve_support;

use cli_support::TestStore;
use interop_tools::containerd::{running_as_root, Containerd};
use interop_tools::{path_str, tools_available};
use oci_store::stores::oci::layout_builder::LayoutBuilder;
use serve_support::Server;

#[test]
fn ctr_pulls_from_and_pushes_to_serve() {
    if !tools_available("ctr_pulls_from_and_pushes_to_serve", &["containerd", "ctr"]) {
        return;
    }
    if !running_as_root() {
        return;
    }
    let store = TestStore::new();
    let layout = store.scratch("layout");
    let mut builder = LayoutBuilder::new(&layout).unwrap();
    let layers = [
        LayoutBuilder::layer_tar_gz(&[("etc/os-release", b"NAME=demo\n")]).unwrap(),
        LayoutBuilder::layer_tar_gz(&[("app/hello.txt", b"hello from serve\n")]).unwrap(),
    ];
    let image = builder.runnable_image("linux", "amd64", &layers).unwrap();
    builder.add_ref(Some("demo:v1"), &image);
    builder.finish().unwrap();
    let digest = image.digest().to_string();
    store.ok(&["import", path_str(&layout)]);
    let server = Server::start(&store, &["--push"]);
    // Kept short: containerd's socket path must fit in sun_path.
    let daemon_dir = std::env::temp_dir().join(format!("ctr-{}", std::process::id()));
    let containerd = Containerd::start(&daemon_dir);

    let source = format!("{}/demo:v1", server.address);
    containerd.ok(&["images", "pull", "--plain-http", "--all-platforms", &source]);
    let listed = containerd.ok(&["images", "ls"]);
    let row = listed
        .lines()
        .find(|line| line.starts_with(&source))
        .unwrap_or_else(|| panic!("{source} not in ctr images ls:\n{listed}"));
    assert!(row.contains(&digest), "{row}");

    let destination = format!("{}/from-ctr/demo:v2", server.address);
    containerd.ok(&["images", "tag", &source, &destination]);
    containerd.ok(&["images", "push", "--plain-http", &destination]);
    let refs = store.json(&["list", "--json"]);
    let pushed = refs
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["name"] == "from-ctr/demo:v2")
        .unwrap_or_else(|| panic!("from-ctr/demo:v2 not listed: {refs}"));
    assert_eq!(pushed["digest"], digest.as_str());
    store.ok(&["check", "--verify", "from-ctr/demo:v2"]);
}
