//! `oci-store serve` through HTTP: the pull API (manifests by tag and digest, blobs with
//! Range, tags and catalog with paging, referrers), the name mapping, the push API (monolithic,
//! chunked, mount, manifests, deletes) and its errors, each as the distribution spec says.

mod cli_support;
mod serve_support;

use cli_support::{sha256, TestStore};
use oci_store::stores::oci::layout_builder::LayoutBuilder;
use serve_support::{get, send, Server};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// A store with `demo:v1` (two layers) and `localhost:5999/team/app:small` (one), imported
/// from a layout; returns the manifest digest of `demo:v1` and its layer bytes.
fn store_with_images(store: &TestStore) -> (String, Vec<u8>) {
    let layout = store.scratch("layout");
    let mut builder = LayoutBuilder::new(&layout).unwrap();
    let big = cli_support::pseudo_random_bytes(300_000, 7);
    let layer = LayoutBuilder::layer_tar_gz(&[("data.bin", &big)]).unwrap();
    let second = LayoutBuilder::layer_tar_gz(&[("etc/hello", b"hello\n")]).unwrap();
    let image = builder
        .image("linux", "amd64", &[layer.clone(), second])
        .unwrap();
    builder.add_ref(Some("demo:v1"), &image);
    let small = builder
        .image(
            "linux",
            "arm64",
            &[LayoutBuilder::layer_tar_gz(&[("x", b"x")]).unwrap()],
        )
        .unwrap();
    builder.add_ref(Some("localhost:5999/team/app:small"), &small);
    builder.add_ref(Some("bare-name"), &small);
    builder.finish().unwrap();
    store.ok(&["import", "--all", layout.to_str().unwrap()]);
    (image.digest().to_string(), layer)
}

#[test]
fn the_pull_api_serves_manifests_and_blobs_by_tag_and_digest() {
    let store = TestStore::new();
    let (digest, layer) = store_with_images(&store);
    let server = Server::start(&store, &[]);

    let base = get(&server.url("/v2/"));
    assert_eq!(base.status, 200);
    assert_eq!(
        base.header("Docker-Distribution-API-Version"),
        Some("registry/2.0")
    );

    let by_tag = get(&server.url("/v2/demo/manifests/v1"));
    assert_eq!(
        by_tag.status,
        200,
        "{}",
        String::from_utf8_lossy(&by_tag.body)
    );
    assert_eq!(by_tag.header("Content-Type"), Some(OCI_MANIFEST));
    assert_eq!(
        by_tag.header("Docker-Content-Digest"),
        Some(digest.as_str())
    );
    assert_eq!(
        sha256(&by_tag.body),
        digest,
        "the bytes are the stored manifest"
    );
    let length = by_tag.body.len().to_string();
    assert_eq!(by_tag.header("Content-Length"), Some(length.as_str()));

    // HEAD: the same headers, Content-Length included, no body.
    for url in [
        server.url("/v2/demo/manifests/v1"),
        server.url(&format!("/v2/demo/manifests/{digest}")),
    ] {
        let head = send("HEAD", &url, &[], b"");
        assert_eq!(head.status, 200, "{url}");
        assert_eq!(
            head.header("Content-Length"),
            Some(length.as_str()),
            "{url}"
        );
        assert_eq!(head.header("Docker-Content-Digest"), Some(digest.as_str()));
        assert_eq!(head.header("Content-Type"), Some(OCI_MANIFEST));
    }
    let by_digest = get(&server.url(&format!("/v2/demo/manifests/{digest}")));
    assert_eq!(by_digest.body, by_tag.body);

    // The layer, whole and in each range form.
    let manifest = by_tag.json();
    let layer_digest = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(sha256(&layer), layer_digest);
    let blob_url = server.url(&format!("/v2/demo/blobs/{layer_digest}"));
    let whole = get(&blob_url);
    assert_eq!(whole.status, 200);
    assert_eq!(whole.body, layer);
    assert_eq!(
        whole.header("Docker-Content-Digest"),
        Some(layer_digest.as_str())
    );
    let size = layer.len();
    for (range, start, end) in [
        ("bytes=0-99", 0, 99),
        ("bytes=1000-", 1000, size - 1),
        ("bytes=-500", size - 500, size - 1),
        ("bytes=10-999999999", 10, size - 1),
    ] {
        let part = send("GET", &blob_url, &[("Range", range)], b"");
        assert_eq!(part.status, 206, "{range}");
        assert_eq!(part.body, &layer[start..=end], "{range}");
        let expected = format!("bytes {start}-{end}/{size}");
        assert_eq!(
            part.header("Content-Range"),
            Some(expected.as_str()),
            "{range}"
        );
    }
    let beyond = send(
        "GET",
        &blob_url,
        &[("Range", &format!("bytes={size}-"))],
        b"",
    );
    assert_eq!(beyond.status, 416);
    let unsatisfied = format!("bytes */{size}");
    assert_eq!(beyond.header("Content-Range"), Some(unsatisfied.as_str()));
    let head = send("HEAD", &blob_url, &[], b"");
    assert_eq!(head.status, 200);
    let size_text = size.to_string();
    assert_eq!(head.header("Content-Length"), Some(size_text.as_str()));

    // Unknown and invalid names, each with the spec's code.
    let missing = get(&server.url("/v2/demo/manifests/v2"));
    assert_eq!(
        (missing.status, missing.error_code().as_str()),
        (404, "MANIFEST_UNKNOWN")
    );
    let zero = format!("sha256:{}", "0".repeat(64));
    let missing_blob = get(&server.url(&format!("/v2/demo/blobs/{zero}")));
    assert_eq!(
        (missing_blob.status, missing_blob.error_code().as_str()),
        (404, "BLOB_UNKNOWN")
    );
    let bad_digest = get(&server.url("/v2/demo/blobs/sha256:zz"));
    assert_eq!(
        (bad_digest.status, bad_digest.error_code().as_str()),
        (400, "DIGEST_INVALID")
    );
    for bad_name in [
        "/v2/Demo/manifests/v1",
        "/v2/a..b/tags/list",
        "/v2/a//b/manifests/x",
    ] {
        let answer = get(&server.url(bad_name));
        assert_eq!(
            (answer.status, answer.error_code().as_str()),
            (400, "NAME_INVALID"),
            "{bad_name}"
        );
    }
    // A layer is not a manifest.
    let not_manifest = get(&server.url(&format!("/v2/demo/manifests/{layer_digest}")));
    assert_eq!(not_manifest.status, 404);
    // Read-only by default: pushes are refused and change nothing.
    let refused = send("POST", &server.url("/v2/demo/blobs/uploads/"), &[], b"");
    assert_eq!(
        (refused.status, refused.error_code().as_str()),
        (405, "UNSUPPORTED")
    );

    // The access log has a line per request.
    assert!(
        server.wait_for_log("GET /v2/demo/manifests/v1 200"),
        "{}",
        server.log()
    );
}

#[test]
fn every_listed_ref_is_reachable_by_its_repository_and_tag() {
    let store = TestStore::new();
    let (digest, _) = store_with_images(&store);
    let server = Server::start(&store, &[]);

    let catalog = get(&server.url("/v2/_catalog")).json();
    assert_eq!(
        catalog["repositories"],
        serde_json::json!(["bare-name", "demo", "team/app"]),
        "{catalog}"
    );
    // Paging: one at a time, following Link.
    let mut seen = Vec::new();
    let mut next = Some("/v2/_catalog?n=1".to_string());
    while let Some(path) = next {
        let page = get(&server.url(&path));
        assert_eq!(page.status, 200);
        let names = page.json()["repositories"].as_array().unwrap().clone();
        assert!(names.len() <= 1);
        seen.extend(names.into_iter().map(|n| n.as_str().unwrap().to_string()));
        next = page.header("Link").map(|link| {
            link.trim_start_matches('<')
                .split('>')
                .next()
                .unwrap()
                .to_string()
        });
    }
    assert_eq!(seen, ["bare-name", "demo", "team/app"]);

    let tags = get(&server.url("/v2/demo/tags/list")).json();
    assert_eq!(tags, serde_json::json!({"name": "demo", "tags": ["v1"]}));
    let after = get(&server.url("/v2/demo/tags/list?n=5&last=v1")).json();
    assert_eq!(after["tags"], serde_json::json!([]));
    let unknown = get(&server.url("/v2/nothing/tags/list"));
    assert_eq!(
        (unknown.status, unknown.error_code().as_str()),
        (404, "NAME_UNKNOWN")
    );

    // A pulled ref (HOST/REPO:TAG): without its host, and with containerd's ?ns=HOST.
    for path in [
        "/v2/team/app/manifests/small",
        "/v2/team/app/manifests/small?ns=localhost:5999",
    ] {
        assert_eq!(get(&server.url(path)).status, 200, "{path}");
    }
    // A bare name is NAME:latest.
    assert_eq!(
        get(&server.url("/v2/bare-name/manifests/latest")).status,
        200
    );
    // Every ref `list` shows is found through the API.
    let listed = store.json(&["list", "--json"]);
    for entry in listed.as_array().unwrap() {
        let name = entry["name"].as_str().unwrap();
        let found = [
            ("demo:v1", "/v2/demo/manifests/v1"),
            (
                "localhost:5999/team/app:small",
                "/v2/team/app/manifests/small",
            ),
            ("bare-name", "/v2/bare-name/manifests/latest"),
        ]
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, path)| get(&server.url(path)));
        let answer = found.unwrap_or_else(|| panic!("unexpected ref {name}"));
        assert_eq!(
            answer.header("Docker-Content-Digest"),
            entry["digest"].as_str(),
            "{name}"
        );
    }
    let _ = digest;
}

/// A manifest for `layers` (given by bytes) and a config; returns (manifest bytes, config).
fn manifest_for(layers: &[&[u8]], config: &[u8], subject: Option<(&str, usize)>) -> Vec<u8> {
    let layer_descriptors: Vec<serde_json::Value> = layers
        .iter()
        .map(|layer| {
            serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": sha256(layer),
                "size": layer.len(),
            })
        })
        .collect();
    let mut manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha256(config),
            "size": config.len(),
        },
        "layers": layer_descriptors,
    });
    if let Some((digest, size)) = subject {
        manifest["subject"] =
            serde_json::json!({"mediaType": OCI_MANIFEST, "digest": digest, "size": size});
        manifest["artifactType"] = serde_json::json!("application/vnd.example.sbom");
    }
    serde_json::to_vec(&manifest).unwrap()
}

fn config_bytes() -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": []},
    }))
    .unwrap()
}

#[test]
fn the_push_api_stores_an_image_every_command_sees() {
    let store = TestStore::new();
    store.ok(&["stats"]);
    let server = Server::start(&store, &["--push"]);
    let layer = cli_support::pseudo_random_bytes(200_000, 3);
    let config = config_bytes();

    // Monolithic: POST with ?digest=.
    let config_digest = sha256(&config);
    let monolithic = send(
        "POST",
        &server.url(&format!(
            "/v2/team/pushed/blobs/uploads/?digest={config_digest}"
        )),
        &[("Content-Type", "application/octet-stream")],
        &config,
    );
    assert_eq!(
        monolithic.status,
        201,
        "{}",
        String::from_utf8_lossy(&monolithic.body)
    );
    assert_eq!(
        monolithic.header("Docker-Content-Digest"),
        Some(config_digest.as_str())
    );

    // Chunked: POST, PATCH in two chunks (Range bookkeeping), GET status, PUT with the digest.
    let started = send(
        "POST",
        &server.url("/v2/team/pushed/blobs/uploads/"),
        &[],
        b"",
    );
    assert_eq!(started.status, 202);
    let location = started.header("Location").unwrap().to_string();
    let (first, second) = layer.split_at(120_000);
    let patched = send(
        "PATCH",
        &server.url(&location),
        &[
            ("Content-Range", "0-119999"),
            ("Content-Type", "application/octet-stream"),
        ],
        first,
    );
    assert_eq!(patched.status, 202);
    assert_eq!(patched.header("Range"), Some("0-119999"));
    // A chunk that does not start where the upload is: 416, nothing appended.
    let out_of_order = send(
        "PATCH",
        &server.url(&location),
        &[("Content-Range", "5-10")],
        b"xxxxxx",
    );
    assert_eq!(out_of_order.status, 416);
    let status = send("GET", &server.url(&location), &[], b"");
    assert_eq!(
        (status.status, status.header("Range")),
        (204, Some("0-119999"))
    );
    send("PATCH", &server.url(&location), &[], second);
    let layer_digest = sha256(&layer);
    let separator = if location.contains('?') { '&' } else { '?' };
    let finished = send(
        "PUT",
        &server.url(&format!("{location}{separator}digest={layer_digest}")),
        &[],
        b"",
    );
    assert_eq!(
        finished.status,
        201,
        "{}",
        String::from_utf8_lossy(&finished.body)
    );
    assert_eq!(
        get(&server.url(&format!("/v2/team/pushed/blobs/{layer_digest}"))).body,
        layer
    );

    // A manifest naming a blob the store lacks: MANIFEST_BLOB_UNKNOWN, no ref.
    let absent_layer = b"never uploaded".to_vec();
    let orphan = manifest_for(&[&absent_layer], &config, None);
    let refused = send(
        "PUT",
        &server.url("/v2/team/pushed/manifests/broken"),
        &[("Content-Type", OCI_MANIFEST)],
        &orphan,
    );
    assert_eq!(
        (refused.status, refused.error_code().as_str()),
        (400, "MANIFEST_BLOB_UNKNOWN")
    );
    // Invalid JSON: MANIFEST_INVALID.
    let invalid = send(
        "PUT",
        &server.url("/v2/team/pushed/manifests/broken"),
        &[("Content-Type", OCI_MANIFEST)],
        b"{not json",
    );
    assert_eq!(
        (invalid.status, invalid.error_code().as_str()),
        (400, "MANIFEST_INVALID")
    );

    // The manifest by tag: a ref every command sees at once.
    let manifest = manifest_for(&[&layer], &config, None);
    let manifest_digest = sha256(&manifest);
    let put = send(
        "PUT",
        &server.url("/v2/team/pushed/manifests/v1"),
        &[("Content-Type", OCI_MANIFEST)],
        &manifest,
    );
    assert_eq!(put.status, 201, "{}", String::from_utf8_lossy(&put.body));
    assert_eq!(
        put.header("Docker-Content-Digest"),
        Some(manifest_digest.as_str())
    );
    let listed = store.ok(&["list"]);
    assert!(
        listed.contains("team/pushed:v1") && listed.contains(&manifest_digest),
        "{listed}"
    );
    assert!(!listed.contains("broken"), "{listed}");
    store.ok(&["check", "--verify", "team/pushed:v1"]);
    assert_eq!(
        get(&server.url("/v2/team/pushed/manifests/v1")).body,
        manifest
    );

    // A referrer pushed by digest, with a subject: OCI-Subject, and the referrers API finds it.
    let sbom = b"{\"sbom\":true}".to_vec();
    let upload = send(
        "POST",
        &server.url(&format!(
            "/v2/team/pushed/blobs/uploads/?digest={}",
            sha256(&sbom)
        )),
        &[],
        &sbom,
    );
    assert_eq!(upload.status, 201);
    let referrer = manifest_for(&[&sbom], &config, Some((&manifest_digest, manifest.len())));
    let referrer_digest = sha256(&referrer);
    let put_referrer = send(
        "PUT",
        &server.url(&format!("/v2/team/pushed/manifests/{referrer_digest}")),
        &[("Content-Type", OCI_MANIFEST)],
        &referrer,
    );
    assert_eq!(
        put_referrer.status,
        201,
        "{}",
        String::from_utf8_lossy(&put_referrer.body)
    );
    assert_eq!(
        put_referrer.header("OCI-Subject"),
        Some(manifest_digest.as_str())
    );
    let referrers = get(&server.url(&format!("/v2/team/pushed/referrers/{manifest_digest}")));
    assert_eq!(referrers.status, 200);
    assert_eq!(
        referrers.json()["manifests"][0]["digest"],
        referrer_digest.as_str()
    );
    let filtered = get(&server.url(&format!(
        "/v2/team/pushed/referrers/{manifest_digest}?artifactType=application/vnd.other"
    )));
    assert_eq!(filtered.header("OCI-Filters-Applied"), Some("artifactType"));
    assert_eq!(filtered.json()["manifests"], serde_json::json!([]));

    // Cross-repository mount: 201 when the store has the blob, 202 (a new upload) when not.
    let mounted = send(
        "POST",
        &server.url(&format!(
            "/v2/other/blobs/uploads/?mount={layer_digest}&from=team/pushed"
        )),
        &[],
        b"",
    );
    assert_eq!(mounted.status, 201);
    let zero = format!("sha256:{}", "0".repeat(64));
    let fallback = send(
        "POST",
        &server.url(&format!("/v2/other/blobs/uploads/?mount={zero}&from=x")),
        &[],
        b"",
    );
    assert_eq!(fallback.status, 202);
    let cancelled = send(
        "DELETE",
        &server.url(fallback.header("Location").unwrap()),
        &[],
        b"",
    );
    assert_eq!(cancelled.status, 204);
    let gone = send(
        "GET",
        &server.url(fallback.header("Location").unwrap()),
        &[],
        b"",
    );
    assert_eq!(
        (gone.status, gone.error_code().as_str()),
        (404, "BLOB_UPLOAD_UNKNOWN")
    );

    // A wrong digest at the end: DIGEST_INVALID, nothing stored.
    let blobs_before = store.listed_digests();
    let wrong = send(
        "POST",
        &server.url(&format!("/v2/team/pushed/blobs/uploads/?digest={zero}")),
        &[],
        b"some bytes",
    );
    assert_eq!(
        (wrong.status, wrong.error_code().as_str()),
        (400, "DIGEST_INVALID")
    );
    assert_eq!(store.listed_digests(), blobs_before);

    // Delete the tag: the ref goes (its blobs at gc).
    let deleted = send(
        "DELETE",
        &server.url("/v2/team/pushed/manifests/v1"),
        &[],
        b"",
    );
    assert_eq!(deleted.status, 202);
    assert!(!store.ok(&["list"]).contains("team/pushed:v1"));
    assert_eq!(get(&server.url("/v2/team/pushed/manifests/v1")).status, 404);
}

#[test]
fn serve_stops_cleanly_on_sigterm() {
    let store = TestStore::new();
    store.ok(&["stats"]);
    let server = Server::start(&store, &[]);
    assert_eq!(get(&server.url("/v2/")).status, 200);
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_socket_systemd_passes_is_served() {
    let store = TestStore::new();
    let (digest, layer) = store_with_images(&store);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    // `--listen` is ignored when a socket is passed.
    let server = Server::start_activated(&store, &listener, &["--listen", "127.0.0.1:1"]);
    drop(listener);
    assert_eq!(server.address, address, "{}", server.log());

    let manifest = get(&server.url("/v2/demo/manifests/v1"));
    assert_eq!(manifest.status, 200);
    assert_eq!(
        manifest.header("Docker-Content-Digest"),
        Some(digest.as_str())
    );
    let layer_digest = sha256(&layer);
    let blob = get(&server.url(&format!("/v2/demo/blobs/{layer_digest}")));
    assert_eq!((blob.status, sha256(&blob.body)), (200, layer_digest));
    // Our own client pulls the whole image through it.
    let client = TestStore::new();
    let pulled = client.json(&["pull", &format!("{address}/demo:v1")]);
    assert_eq!(pulled["digest"], digest.as_str(), "{pulled}");
    client.ok(&["check", "--verify", &format!("{address}/demo:v1")]);
    assert!(server.terminate().success());
}

#[test]
fn serve_refuses_a_public_address_without_insecure() {
    let store = TestStore::new();
    store.ok(&["stats"]);
    let message = store.fails(&["serve", "--listen", "0.0.0.0:0"]);
    assert!(
        message.contains("without TLS") && message.contains("--insecure"),
        "{message}"
    );
}

#[test]
fn metrics_count_requests_and_bytes_when_asked_for() {
    let store = TestStore::new();
    let (digest, _) = store_with_images(&store);
    let server = Server::start(&store, &["--metrics", "--push"]);
    assert_eq!(get(&server.url("/v2/demo/manifests/v1")).status, 200);
    assert_eq!(get(&server.url("/v2/demo/manifests/nope")).status, 404);
    assert_eq!(
        send("POST", &server.url("/v2/demo/blobs/uploads/"), &[], b"").status,
        202
    );
    let metrics = get(&server.url("/metrics"));
    assert_eq!(metrics.status, 200);
    let text = String::from_utf8(metrics.body).unwrap();
    assert!(
        text.contains("oci_store_http_requests_total{method=\"GET\",status=\"200\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("oci_store_http_requests_total{method=\"GET\",status=\"404\"} 1"),
        "{text}"
    );
    assert!(text.contains("oci_store_upload_sessions 1"), "{text}");
    assert!(
        !text.contains("oci_store_http_response_bytes_total 0\n"),
        "{text}"
    );
    // Without --metrics there is no such path; the access log as JSON lines on request.
    let plain = Server::start(&store, &["--log-json"]);
    assert_eq!(get(&plain.url("/metrics")).status, 404);
    assert!(
        plain.wait_for_log("\"path\":\"/metrics\""),
        "{}",
        plain.log()
    );
    let line = plain
        .log()
        .lines()
        .find(|l| l.contains("/metrics"))
        .unwrap()
        .to_string();
    let entry: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    assert_eq!(
        (entry["method"].as_str(), entry["status"].as_u64()),
        (Some("GET"), Some(404))
    );
    let _ = digest;
}

fn last_used(store: &TestStore, name: &str) -> Option<i64> {
    store
        .json(&["list", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["name"] == name)
        .and_then(|entry| entry["last_used_unix_ms"].as_i64())
}

#[test]
fn serving_a_tag_records_its_use_where_list_and_inspect_show_it() {
    let store = TestStore::new();
    // Every use written (no throttle), from the config file.
    let config = store.scratch("config/oci-store/config.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, "[prune]\nlast_used_interval = \"0s\"\n").unwrap();
    let shown = store.ok(&["config", "show"]);
    assert!(shown.contains("prune.last_used_interval"), "{shown}");
    store_with_images(&store);
    let imported = last_used(&store, "demo:v1").expect("an import is a use");
    std::thread::sleep(std::time::Duration::from_millis(20));

    let server = Server::start(&store, &[]);
    assert_eq!(
        send("HEAD", &server.url("/v2/demo/manifests/v1"), &[], b"").status,
        200
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while last_used(&store, "demo:v1") == Some(imported) {
        assert!(
            std::time::Instant::now() < deadline,
            "the served HEAD recorded no use"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(last_used(&store, "demo:v1").unwrap() > imported);
    let inspected = store.json(&["inspect", "--json", "demo:v1"]);
    assert!(
        inspected["last_used_unix_ms"].as_i64().is_some(),
        "{inspected}"
    );
    assert!(store.ok(&["list"]).contains("LAST USED"));

    // A removed ref's record goes with it.
    store.ok(&["rm", "demo:v1"]);
    assert!(!store
        .ok(&["data", "ls", "--type", "store.last-used"])
        .contains("oci/demo:v1"));
}
