//! Interoperability with the reference tools: images umoci builds and skopeo copies import;
//! what we export passes `skopeo inspect`, `skopeo copy` and `umoci unpack`; import, export and
//! import again round-trips blob for blob; our oci-archive is one skopeo reads.

mod cli_support;
mod interop_tools;

use cli_support::TestStore;
use interop_tools::{
    layout_blobs, layout_ref_digest, manifest_layers, path_str, run_tool, skopeo_inspect,
    tools_available, umoci_image,
};

const GREETING: &[u8] = b"hello from a umoci layer\n";

/// A store holding `app:1`, imported from an image umoci built at `<scratch>/built:latest`.
/// Returns the manifest digest.
fn store_with_umoci_image(store: &TestStore) -> String {
    let built = store.scratch("built");
    let digest = umoci_image(
        &built,
        "latest",
        &[("/etc/greeting", GREETING), ("/opt/app/data", b"data\n")],
    );
    store.ok(&[
        "import",
        "--sref",
        "latest",
        "--dref",
        "app:1",
        path_str(&built),
    ]);
    digest
}

fn assert_ref_complete(store: &TestStore, name: &str, digest: &str) {
    let report = store.json(&["check", name, "--verify"]);
    assert_eq!(report["digest"], digest, "{name}: {report}");
    assert_eq!(report["missing"], serde_json::json!([]), "{name}: {report}");
    assert_eq!(report["corrupt"], serde_json::json!([]), "{name}: {report}");
}

#[test]
fn images_built_by_umoci_and_copied_by_skopeo_import() {
    let test = "images_built_by_umoci_and_copied_by_skopeo_import";
    if !tools_available(test, &["umoci", "skopeo"]) {
        return;
    }
    let store = TestStore::new();
    let source = store.scratch("source");
    let built = umoci_image(&source, "latest", &[("/etc/greeting", GREETING)]);
    let copied = store.scratch("copied");
    run_tool(
        "skopeo",
        &[
            "copy",
            &format!("oci:{}:latest", path_str(&source)),
            &format!("oci:{}:copied", path_str(&copied)),
        ],
    );
    let copied_digest = layout_ref_digest(&copied, "copied");

    // Straight from umoci, every ref under its own name.
    let report = store.json(&["import", "--all", path_str(&source)]);
    assert_eq!(report["refs"][0]["name"], "latest");
    assert_eq!(report["refs"][0]["digest"], built.as_str());
    assert_ref_complete(&store, "latest", &built);

    // From skopeo's copy: the ref it wrote, under a new name.
    store.ok(&[
        "import",
        "--sref",
        "copied",
        "--dref",
        "skopeo/copied:v1",
        path_str(&copied),
    ]);
    assert_ref_complete(&store, "skopeo/copied:v1", &copied_digest);
    let inspected = skopeo_inspect(&format!("oci:{}:copied", path_str(&copied)));
    let listed = store.json(&["list"]);
    let entry = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "skopeo/copied:v1")
        .expect("listed");
    assert_eq!(entry["digest"], inspected["Digest"]);
    assert_eq!(entry["platforms"], serde_json::json!(["linux/amd64"]));

    // skopeo's oci-archive output imports too.
    let archive = store.scratch("skopeo.tar");
    run_tool(
        "skopeo",
        &[
            "copy",
            &format!("oci:{}:latest", path_str(&source)),
            &format!("oci-archive:{}:archived", path_str(&archive)),
        ],
    );
    store.ok(&["import", path_str(&archive)]);
    assert_ref_complete(&store, "archived", &built);
}

#[test]
fn our_exports_pass_skopeo_inspect_and_copy() {
    let test = "our_exports_pass_skopeo_inspect_and_copy";
    if !tools_available(test, &["umoci", "skopeo"]) {
        return;
    }
    let store = TestStore::new();
    let digest = store_with_umoci_image(&store);
    let exported = store.scratch("exported");
    store.ok(&[
        "export",
        "--sref",
        "app:1",
        "--dref",
        "exported",
        path_str(&exported),
    ]);

    let inspected = skopeo_inspect(&format!("oci:{}:exported", path_str(&exported)));
    assert_eq!(inspected["Digest"], digest.as_str());
    let layers = manifest_layers(&exported, &digest);
    assert_eq!(layers.len(), 2);
    assert_eq!(inspected["Layers"], serde_json::json!(layers));
    assert_eq!(inspected["Os"], "linux");
    assert_eq!(inspected["Env"], serde_json::json!(["BUILT_BY=umoci"]));

    let other = store.scratch("other");
    run_tool(
        "skopeo",
        &[
            "copy",
            &format!("oci:{}:exported", path_str(&exported)),
            &format!("oci:{}:exported", path_str(&other)),
        ],
    );
    assert_eq!(layout_ref_digest(&other, "exported"), digest);
    assert_eq!(layout_blobs(&other), layout_blobs(&exported));
}

#[test]
fn our_exports_of_our_own_images_pass_skopeo_inspect() {
    let test = "our_exports_of_our_own_images_pass_skopeo_inspect";
    if !tools_available(test, &["skopeo"]) {
        return;
    }
    let store = TestStore::new();
    let built = store.scratch("built");
    let manifest =
        oci_store::stores::oci::layout_builder::LayoutBuilder::simple_image(&built, "demo:1")
            .expect("building a layout");
    store.ok(&["import", path_str(&built)]);
    let exported = store.scratch("exported");
    store.ok(&["export", "--sref", "demo:1", path_str(&exported)]);
    let inspected = skopeo_inspect(&format!("oci:{}:demo:1", path_str(&exported)));
    assert_eq!(inspected["Digest"], manifest.digest().to_string());
    assert_eq!(inspected["Architecture"], "amd64");
    assert_eq!(inspected["Layers"].as_array().map(Vec::len), Some(2));
}

#[test]
fn our_exports_unpack_with_umoci() {
    let test = "our_exports_unpack_with_umoci";
    if !tools_available(test, &["umoci"]) {
        return;
    }
    let store = TestStore::new();
    store_with_umoci_image(&store);
    let exported = store.scratch("exported");
    store.ok(&[
        "export",
        "--sref",
        "app:1",
        "--dref",
        "unpack-me",
        path_str(&exported),
    ]);
    let bundle = store.scratch("bundle");
    run_tool(
        "umoci",
        &[
            "unpack",
            "--rootless",
            "--image",
            &format!("{}:unpack-me", path_str(&exported)),
            path_str(&bundle),
        ],
    );
    let rootfs = bundle.join("rootfs");
    assert_eq!(
        std::fs::read(rootfs.join("etc/greeting")).unwrap(),
        GREETING
    );
    assert_eq!(
        std::fs::read(rootfs.join("opt/app/data")).unwrap(),
        b"data\n"
    );
    assert!(bundle.join("config.json").is_file(), "a runtime bundle");
}

#[test]
fn import_export_import_round_trips_blob_for_blob() {
    let test = "import_export_import_round_trips_blob_for_blob";
    if !tools_available(test, &["umoci"]) {
        return;
    }
    let first = TestStore::new();
    let digest = store_with_umoci_image(&first);
    let built = first.scratch("built");
    let once = first.scratch("once");
    first.ok(&["export", "--sref", "app:1", path_str(&once)]);

    let second = TestStore::new();
    second.ok(&["import", path_str(&once)]);
    let twice = second.scratch("twice");
    second.ok(&["export", "--sref", "app:1", path_str(&twice)]);

    assert_eq!(layout_blobs(&once), layout_blobs(&built));
    assert_eq!(layout_blobs(&twice), layout_blobs(&once));
    assert_eq!(layout_ref_digest(&once, "app:1"), digest);
    assert_eq!(layout_ref_digest(&twice, "app:1"), digest);
    assert_eq!(sorted_digests(&first), sorted_digests(&second));
    // Alike but for when each was last used.
    let without_use_times = |store: &TestStore| {
        let mut listed = store.json(&["list"]);
        for entry in listed.as_array_mut().unwrap() {
            assert!(entry["last_used_unix_ms"].is_i64(), "{entry}");
            entry.as_object_mut().unwrap().remove("last_used_unix_ms");
        }
        listed
    };
    assert_eq!(without_use_times(&first), without_use_times(&second));
    assert_ref_complete(&second, "app:1", &digest);
}

fn sorted_digests(store: &TestStore) -> Vec<String> {
    let mut digests = store.listed_digests();
    digests.sort();
    digests
}

#[test]
fn our_archive_export_is_readable_by_skopeo() {
    let test = "our_archive_export_is_readable_by_skopeo";
    if !tools_available(test, &["umoci", "skopeo"]) {
        return;
    }
    let store = TestStore::new();
    let digest = store_with_umoci_image(&store);
    let archive = store.scratch("app.tar");
    store.ok(&["export", "--sref", "app:1", "--archive", path_str(&archive)]);

    let inspected = skopeo_inspect(&format!("oci-archive:{}", path_str(&archive)));
    assert_eq!(inspected["Digest"], digest.as_str());
    let named = skopeo_inspect(&format!("oci-archive:{}:app:1", path_str(&archive)));
    assert_eq!(named["Digest"], digest.as_str());

    // And skopeo can take the image out of it, intact.
    let unpacked = store.scratch("from-archive");
    run_tool(
        "skopeo",
        &[
            "copy",
            &format!("oci-archive:{}", path_str(&archive)),
            &format!("oci:{}:copied", path_str(&unpacked)),
        ],
    );
    assert_eq!(layout_ref_digest(&unpacked, "copied"), digest);
    assert_eq!(
        layout_blobs(&unpacked),
        layout_blobs(&store.scratch("built"))
    );
}

/// umoci's blank image (`umoci new`) has `"layers": []`: strict validation takes a manifest
/// without layers (the image-spec says SHOULD have one, not MUST; image-spec#1058), and a
/// config that umoci wrote.
#[test]
fn umoci_blank_image_without_layers_imports() {
    let test = "umoci_blank_image_without_layers_imports";
    if !tools_available(test, &["umoci"]) {
        return;
    }
    let store = TestStore::new();
    let layout = store.scratch("blank");
    run_tool("umoci", &["init", "--layout", path_str(&layout)]);
    run_tool(
        "umoci",
        &["new", "--image", &format!("{}:blank", path_str(&layout))],
    );
    let digest = layout_ref_digest(&layout, "blank");
    assert_eq!(manifest_layers(&layout, &digest), Vec::<String>::new());
    store.ok(&[
        "import",
        "--sref",
        "blank",
        "--dref",
        "blank:1",
        path_str(&layout),
    ]);
    assert_ref_complete(&store, "blank:1", &digest);
}

/// Adding to a layout skopeo wrote keeps its `index.json` mode (whatever skopeo gave it, even
/// under a narrower umask of ours), and both tools' refs stay readable by skopeo.
#[test]
fn merging_into_a_skopeo_layout_keeps_its_index_mode() {
    use std::os::unix::fs::PermissionsExt;
    let test = "merging_into_a_skopeo_layout_keeps_its_index_mode";
    if !tools_available(test, &["umoci", "skopeo"]) {
        return;
    }
    let store = TestStore::new();
    let digest = store_with_umoci_image(&store);
    let built = store.scratch("built");
    let layout = store.scratch("skopeo-layout");
    run_tool(
        "skopeo",
        &[
            "copy",
            &format!("oci:{}:latest", path_str(&built)),
            &format!("oci:{}:theirs", path_str(&layout)),
        ],
    );
    let index = layout.join("index.json");
    let mode = |path: &std::path::Path| path.metadata().unwrap().permissions().mode() & 0o7777;
    let skopeo_mode = mode(&index);

    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg("umask 077 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_oci-store"))
        .arg("--store")
        .arg(store.path())
        .args(["export", "--sref", "app:1", "--dref", "ours"])
        .arg(&layout)
        .output()
        .expect("running sh");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        format!("{:o}", mode(&index)),
        format!("{skopeo_mode:o}"),
        "index.json kept skopeo's mode"
    );
    for name in ["theirs", "ours"] {
        let inspected = skopeo_inspect(&format!("oci:{}:{name}", path_str(&layout)));
        assert_eq!(inspected["Digest"], digest.as_str(), "{name}");
    }
}
