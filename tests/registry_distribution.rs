//! Pull and push against a real CNCF distribution registry (2.8, Debian's `docker-registry`) on
//! 127.0.0.1 without auth: images built by umoci go up and come back digest for digest,
//! skopeo sees what we push and we pull what skopeo pushes; platforms, schema 1, verification,
//! referrers with the tag-schema fallback.

mod cli_support;
mod interop_tools;
mod registry_support;

use cli_support::TestStore;
use interop_tools::{
    layout_blobs, layout_ref_digest, path_str, run_tool, tools_available, umoci_image,
};
use oci_store::store::{open_store, BackendChoice};
use registry_support::proxy::{Action, Proxy};
use registry_support::{add_layout_blob, add_layout_ref, Registry, RegistryAuth, REGISTRY_TOOL};

fn tools(test: &str) -> bool {
    tools_available(test, &[REGISTRY_TOOL, "umoci", "skopeo"])
}

/// A store with `app:1` from a umoci image of two layers; returns the manifest digest.
fn store_with_image(store: &TestStore) -> String {
    let built = store.scratch("built");
    let digest = umoci_image(
        &built,
        "latest",
        &[
            ("/etc/greeting", b"hello registry\n"),
            ("/opt/data", &[7u8; 70_000]),
        ],
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

fn dump(store: &TestStore) -> oci_store::store::StoreDump {
    open_store(&store.path(), &BackendChoice::default())
        .expect("opening the store")
        .dump()
        .expect("dumping the store")
}

#[test]
fn pushed_images_come_back_digest_for_digest_and_skopeo_agrees() {
    if !tools("pushed_images_come_back_digest_for_digest_and_skopeo_agrees") {
        return;
    }
    let registry = Registry::start(RegistryAuth::None);
    let store = TestStore::new();
    let digest = store_with_image(&store);
    let remote = format!("{}/team/app:v1", registry.address());

    let pushed = store.json(&["push", "app:1", &remote]);
    assert_eq!(pushed["digest"], digest.as_str());
    assert_eq!(pushed["blobs_uploaded"], 3, "{pushed}");
    // What skopeo reads from the registry is what we pushed.
    let inspected = serde_json::from_str::<serde_json::Value>(&run_tool(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            &format!("docker://{remote}"),
        ],
    ))
    .expect("skopeo inspect JSON");
    assert_eq!(inspected["Digest"], digest.as_str());
    // A second push finds every blob there and sends none.
    let again = store.json(&["push", "app:1", &remote]);
    assert_eq!(again["blobs_uploaded"], 0, "{again}");
    assert_eq!(again["blobs_present"], 3, "{again}");

    // Pulled into another store: the same digests, complete and intact.
    let other = TestStore::new();
    let pulled = other.json(&["pull", &remote]);
    assert_eq!(pulled["digest"], digest.as_str());
    assert_eq!(pulled["name"], remote.as_str());
    let check = other.json(&["check", &remote, "--verify"]);
    assert_eq!(check["missing"], serde_json::json!([]), "{check}");
    assert_eq!(check["corrupt"], serde_json::json!([]), "{check}");
    let exported = other.scratch("exported");
    other.ok(&[
        "export",
        "--sref",
        &remote,
        "--dref",
        "v1",
        path_str(&exported),
    ]);
    assert_eq!(
        layout_blobs(&exported),
        layout_blobs(&store.scratch("built")),
        "the pulled image is the built one, blob for blob"
    );

    // skopeo copies our push down, byte for byte the image umoci built.
    let copied = store.scratch("copied");
    run_tool(
        "skopeo",
        &[
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{remote}"),
            &format!("oci:{}:v1", path_str(&copied)),
        ],
    );
    assert_eq!(layout_ref_digest(&copied, "v1"), digest);

    // And what skopeo pushes, we pull.
    let skopeo_remote = format!("{}/skopeo/pushed:1", registry.address());
    run_tool(
        "skopeo",
        &[
            "copy",
            "--dest-tls-verify=false",
            &format!("oci:{}:latest", path_str(&store.scratch("built"))),
            &format!("docker://{skopeo_remote}"),
        ],
    );
    let from_skopeo = other.json(&["pull", &skopeo_remote, "--dref", "from-skopeo"]);
    assert_eq!(from_skopeo["name"], "from-skopeo");
    let listed = other.json(&["list"]);
    let entry = listed
        .as_array()
        .expect("list")
        .iter()
        .find(|r| r["name"] == "from-skopeo")
        .expect("the pulled ref is listed")
        .clone();
    assert_eq!(entry["digest"], from_skopeo["digest"]);
    // Its layers were already stored from the first pull: only what skopeo rewrote moved.
    assert!(
        from_skopeo["blobs_present"].as_u64().unwrap() >= 2,
        "{from_skopeo}"
    );
}

#[test]
fn a_second_pull_of_a_present_image_downloads_nothing() {
    if !tools("a_second_pull_of_a_present_image_downloads_nothing") {
        return;
    }
    let registry = Registry::start(RegistryAuth::None);
    let store = TestStore::new();
    store_with_image(&store);
    let remote = format!("{}/app:1", registry.address());
    store.ok(&["push", "app:1", &remote]);
    let proxy = Proxy::start(registry.address(), Box::new(|_, _| Action::Forward));
    let through_proxy = format!("{}/app:1", proxy.address());
    let other = TestStore::new();
    let first = other.json(&["pull", &through_proxy]);
    assert_eq!(
        first["blobs_downloaded"], 4,
        "manifest, config, two layers: {first}"
    );
    let requests_first = proxy.log().len();
    let second = other.json(&["pull", &through_proxy]);
    assert_eq!(second["blobs_downloaded"], 0, "{second}");
    assert_eq!(second["blobs_present"], 4, "{second}");
    let second_requests: Vec<_> = proxy.log().split_off(requests_first);
    assert!(
        second_requests.iter().all(|r| !r.path.contains("/blobs/")),
        "a re-pull asks for no blob: {second_requests:?}"
    );
}

/// An index of two platform manifests (amd64, arm64/v8) as ref `multi` of the store's
/// layout; returns (index digest, amd64 manifest digest, arm64 manifest digest).
fn store_with_index(store: &TestStore) -> (String, String, String) {
    let layout = store.scratch("multi");
    let amd64 = umoci_image(&layout, "amd64", &[("/etc/arch", b"amd64\n")]);
    let arm_layout = store.scratch("multi-arm");
    let arm64 = umoci_image(&arm_layout, "arm64", &[("/etc/arch", b"arm64\n")]);
    for bytes in layout_blobs(&arm_layout).values() {
        add_layout_blob(&layout, bytes);
    }
    let size = |digest: &str| layout_blobs(&layout)[digest].len();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": amd64,
             "size": size(&amd64), "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": arm64,
             "size": size(&arm64),
             "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        ],
    });
    let bytes = serde_json::to_vec(&index).unwrap();
    let index_digest = add_layout_blob(&layout, &bytes);
    add_layout_ref(
        &layout,
        "multi",
        serde_json::json!({"mediaType": "application/vnd.oci.image.index.v1+json",
                           "digest": index_digest, "size": bytes.len()}),
    );
    store.ok(&["import", "--sref", "multi", path_str(&layout)]);
    (index_digest, amd64, arm64)
}

#[test]
fn a_pull_from_an_index_takes_the_platform_asked_or_every_platform() {
    if !tools("a_pull_from_an_index_takes_the_platform_asked_or_every_platform") {
        return;
    }
    let registry = Registry::start(RegistryAuth::None);
    let store = TestStore::new();
    let (index, amd64, arm64) = store_with_index(&store);
    let remote = format!("{}/multi:1", registry.address());
    store.ok(&["push", "multi", &remote]);

    let other = TestStore::new();
    let arm = other.json(&[
        "pull",
        "--platform",
        "linux/arm64",
        &remote,
        "--dref",
        "arm",
    ]);
    assert_eq!(arm["digest"], arm64.as_str(), "arm64 means arm64/v8: {arm}");
    let amd = other.json(&[
        "pull",
        "--platform",
        "linux/amd64",
        &remote,
        "--dref",
        "amd",
    ]);
    assert_eq!(amd["digest"], amd64.as_str());
    let error = other.fails(&["pull", "--platform", "linux/arm/v7", &remote]);
    assert!(
        error.contains("linux/arm/v7") && error.contains("linux/arm64/v8"),
        "names what was asked and what there is: {error}"
    );
    let all = other.json(&["pull", "--all-platforms", &remote, "--dref", "all"]);
    assert_eq!(all["digest"], index.as_str());
    let check = other.json(&["check", "all"]);
    assert_eq!(check["missing"], serde_json::json!([]), "{check}");
    let listed = other.json(&["list"]);
    let all_entry = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "all")
        .unwrap()
        .clone();
    assert_eq!(
        all_entry["platforms"],
        serde_json::json!(["linux/amd64", "linux/arm64/v8"])
    );
}

#[test]
fn docker_schema_1_is_refused_with_a_clear_message() {
    if !tools("docker_schema_1_is_refused_with_a_clear_message") {
        return;
    }
    let registry = Registry::start(RegistryAuth::None);
    let schema1 = br#"{"schemaVersion":1,"name":"old","tag":"1","architecture":"amd64","fsLayers":[],"history":[]}"#;
    let proxy = Proxy::start(
        registry.address(),
        Box::new(move |request, _| {
            if request.path.contains("/manifests/") {
                Action::Respond {
                    status: 200,
                    headers: vec![(
                        "Content-Type".into(),
                        "application/vnd.docker.distribution.manifest.v1+prettyjws".into(),
                    )],
                    body: schema1.to_vec(),
                }
            } else {
                Action::Forward
            }
        }),
    );
    let store = TestStore::new();
    store.ok(&["stats"]);
    let before = dump(&store);
    let error = store.fails(&["pull", &format!("{}/old:1", proxy.address())]);
    assert!(error.contains("schema 1"), "{error}");
    assert!(error.contains("old:1"), "names the reference: {error}");
    assert_eq!(dump(&store), before, "a refused pull changes nothing");
}

#[test]
fn content_that_does_not_match_its_digest_is_refused_and_nothing_changes() {
    if !tools("content_that_does_not_match_its_digest_is_refused_and_nothing_changes") {
        return;
    }
    let registry = Registry::start(RegistryAuth::None);
    let source = TestStore::new();
    let digest = store_with_image(&source);
    source.ok(&["push", "app:1", &format!("{}/app:1", registry.address())]);
    let manifest = layout_blobs(&source.scratch("built"))[&digest].clone();
    let layers = interop_tools::manifest_layers(&source.scratch("built"), &digest);
    let big_layer = layers.last().unwrap().clone();

    // A manifest whose bytes are not the digest asked for.
    let mut tampered = manifest.clone();
    tampered.extend_from_slice(b" ");
    let proxy = Proxy::start(
        registry.address(),
        Box::new(move |request, _| {
            if request.path.contains("/manifests/") {
                Action::ReplaceBody(tampered.clone())
            } else {
                Action::Forward
            }
        }),
    );
    let store = TestStore::new();
    store.ok(&["stats"]);
    let before = dump(&store);
    let error = store.fails(&["pull", &format!("{}/app@{digest}", proxy.address())]);
    assert!(
        error.contains(&digest) && error.contains("hashes to"),
        "{error}"
    );
    assert_eq!(dump(&store), before);

    // A layer whose bytes are not its digest: refused as it streams, nothing kept.
    let layer_for_rule = big_layer.clone();
    let layer_size = layout_blobs(&source.scratch("built"))[&big_layer].len();
    let corrupting = Proxy::start(
        registry.address(),
        Box::new(move |request, _| {
            if request.path.ends_with(&layer_for_rule) && request.method == "GET" {
                Action::ReplaceBody(vec![0u8; layer_size])
            } else {
                Action::Forward
            }
        }),
    );
    let error = store.fails(&["pull", &format!("{}/app:1", corrupting.address())]);
    assert!(error.contains(&big_layer), "names the layer: {error}");
    assert!(store.json(&["list"]).as_array().unwrap().is_empty());
    store.ok(&["gc"]);
    assert_eq!(dump(&store), before, "nothing the failed pull wrote stays");
}

#[test]
fn referrers_travel_with_their_subject_through_the_tag_schema() {
    if !tools("referrers_travel_with_their_subject_through_the_tag_schema") {
        return;
    }
    let registry = Registry::start(RegistryAuth::None);
    let store = TestStore::new();
    let subject = store_with_image(&store);
    // An artifact that refers to the image (a signature, say), imported beside it.
    let layout = store.scratch("built");
    let subject_size = layout_blobs(&layout)[&subject].len();
    let empty = add_layout_blob(&layout, b"{}");
    let signature = add_layout_blob(&layout, b"signature bytes");
    let artifact = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.example.signature",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [{"mediaType": "application/vnd.example.signature.v1", "digest": signature,
                    "size": 15}],
        "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": subject, "size": subject_size},
    });
    let bytes = serde_json::to_vec(&artifact).unwrap();
    let artifact_digest = add_layout_blob(&layout, &bytes);
    add_layout_ref(
        &layout,
        "signature",
        serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "digest": artifact_digest, "size": bytes.len()}),
    );
    store.ok(&[
        "import",
        "--sref",
        "latest",
        "--dref",
        "app:1",
        path_str(&layout),
    ]);

    let remote = format!("{}/signed:1", registry.address());
    let pushed = store.json(&["push", "--with-referrers", "app:1", &remote]);
    assert_eq!(pushed["referrers"], 1, "{pushed}");
    // Distribution 2.8 has no referrers API: the tag schema's index names the artifact.
    let tag = format!("sha256-{}", subject.strip_prefix("sha256:").unwrap());
    let tagged = run_tool(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{}/signed:{tag}", registry.address()),
        ],
    );
    assert!(tagged.contains(&artifact_digest), "{tagged}");

    let other = TestStore::new();
    let pulled = other.json(&["pull", "--with-referrers", &remote]);
    assert_eq!(pulled["referrers"], 1, "{pulled}");
    let referrers = other.json(&["referrers", &subject]);
    assert_eq!(
        referrers[0]["digest"],
        artifact_digest.as_str(),
        "the pulled referrer is indexed: {referrers}"
    );
    // The artifact itself pulls by digest like any manifest.
    let artifact_pull = TestStore::new().json(&[
        "pull",
        &format!("{}/signed@{artifact_digest}", registry.address()),
        "--dref",
        "sig",
    ]);
    assert_eq!(artifact_pull["digest"], artifact_digest.as_str());
    // Without --with-referrers, only the image.
    let plain = TestStore::new();
    let image_only = plain.json(&["pull", &remote]);
    assert_eq!(image_only["referrers"], 0);
}

#[test]
fn a_push_hashes_what_leaves_the_store_and_sends_nothing_damaged() {
    if !tools("a_push_hashes_what_leaves_the_store_and_sends_nothing_damaged") {
        return;
    }
    let registry = Registry::start(RegistryAuth::None);
    let store = TestStore::new();
    let digest = store_with_image(&store);
    let layers = interop_tools::manifest_layers(&store.scratch("built"), &digest);
    let layer = layers.last().unwrap().clone();
    let size = std::fs::metadata(store.blob_file(&layer)).unwrap().len() as usize;
    cli_support::overwrite(&store.blob_file(&layer), &vec![0u8; size]);
    let remote = format!("{}/damaged:1", registry.address());
    let error = store.fails(&["push", "--jobs", "1", "app:1", &remote]);
    assert!(
        error.contains(&layer) && error.contains("damaged"),
        "{error}"
    );
    // Neither the layer nor the manifest reached the registry.
    let inspected = std::process::Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{remote}"),
        ])
        .output()
        .unwrap();
    assert!(!inspected.status.success(), "no manifest was pushed");
    let layer_path = registry
        .storage()
        .join("docker/registry/v2/blobs/sha256")
        .join(&layer.strip_prefix("sha256:").unwrap()[..2])
        .join(layer.strip_prefix("sha256:").unwrap());
    assert!(
        !layer_path.exists(),
        "the damaged layer was not stored by the registry"
    );
}

#[test]
fn non_distributable_layers_are_left_where_their_urls_say() {
    if !tools("non_distributable_layers_are_left_where_their_urls_say") {
        return;
    }
    let registry = Registry::start_with(
        RegistryAuth::None,
        "validation:\n  manifests:\n    urls:\n      allow:\n        - ^https://\n",
    );
    let store = TestStore::new();
    let built = store.scratch("built");
    let digest = umoci_image(&built, "latest", &[("/etc/greeting", b"hello\n")]);
    // The image gets a foreign layer, which no layout or registry holds.
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&layout_blobs(&built)[&digest]).unwrap();
    let foreign = format!("sha256:{}", "f".repeat(64));
    manifest["layers"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            "digest": foreign,
            "size": 12345,
            "urls": ["https://example.com/foreign-layer.tar.gz"],
        }));
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let with_foreign = add_layout_blob(&built, &bytes);
    add_layout_ref(
        &built,
        "foreign",
        serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "digest": with_foreign, "size": bytes.len()}),
    );
    store.ok(&[
        "import",
        "--sref",
        "foreign",
        "--dref",
        "app:1",
        path_str(&built),
    ]);
    let remote = format!("{}/foreign:1", registry.address());
    let pushed = store.json(&["push", "app:1", &remote]);
    assert_eq!(
        pushed["blobs_uploaded"], 2,
        "config and the one distributable layer: {pushed}"
    );

    let other = TestStore::new();
    let pulled = other.json(&["pull", &remote]);
    assert_eq!(pulled["digest"], with_foreign.as_str());
    let check = other.json(&["check", &remote]);
    assert_eq!(check["missing"], serde_json::json!([]), "{check}");
    assert_eq!(
        check["absent_optional"][0]["digest"],
        foreign.as_str(),
        "{check}"
    );
}
