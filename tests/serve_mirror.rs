//! `serve --mirror`: a pull-through cache in front of a real CNCF distribution registry (the
//! upstream, started here on 127.0.0.1) behind a request-counting proxy: 16 concurrent cold
//! pulls fetch each blob upstream once, warm pulls fetch nothing, the mirrored image is a ref
//! the CLI sees, a stopped upstream leaves cached tags served and the rest a 502, a corrupting
//! upstream stores nothing.

mod cli_support;
mod interop_tools;
mod registry_support;
mod serve_support;

use cli_support::{sha256, TestStore};
use interop_tools::{path_str, tools_available};
use oci_store::stores::oci::layout_builder::LayoutBuilder;
use registry_support::proxy::{Action, Proxy};
use registry_support::{Registry, RegistryAuth, REGISTRY_TOOL};
use serve_support::{get, Server};

const HOST: &str = "registry.test";

/// Pushes `team/app:1` (two layers) to `registry`; returns the manifest digest and the
/// first layer's bytes.
fn upstream_image(registry: &Registry) -> (String, Vec<u8>) {
    let source = TestStore::new();
    let layout = source.scratch("layout");
    let mut builder = LayoutBuilder::new(&layout).unwrap();
    let layers = [
        LayoutBuilder::layer_tar_gz(&[("big", &cli_support::pseudo_random_bytes(400_000, 5))])
            .unwrap(),
        LayoutBuilder::layer_tar_gz(&[("small", b"small\n")]).unwrap(),
    ];
    let image = builder.runnable_image("linux", "amd64", &layers).unwrap();
    builder.add_ref(Some("app:1"), &image);
    builder.finish().unwrap();
    source.ok(&["import", path_str(&layout)]);
    source.ok(&[
        "push",
        "app:1",
        &format!("{}/team/app:1", registry.address()),
    ]);
    (image.digest().to_string(), layers[0].clone())
}

fn mirror_store_and_server(proxy: &Proxy, extra: &[&str]) -> (TestStore, Server) {
    let store = TestStore::new();
    store.ok(&["stats"]);
    let spec = format!("{HOST}=http://{}", proxy.address());
    let mut args = vec!["--mirror", spec.as_str()];
    args.extend_from_slice(extra);
    let server = Server::start(&store, &args);
    (store, server)
}

#[test]
fn cold_pulls_fetch_each_blob_once_and_warm_pulls_nothing() {
    if !tools_available(
        "cold_pulls_fetch_each_blob_once_and_warm_pulls_nothing",
        &[REGISTRY_TOOL],
    ) {
        return;
    }
    let registry = Registry::start(RegistryAuth::None);
    let (digest, _) = upstream_image(&registry);
    let proxy = Proxy::start(registry.address(), Box::new(|_, _| Action::Forward));
    let (store, server) = mirror_store_and_server(&proxy, &[]);

    // 16 clients at once, each the whole image: the manifest by tag (with containerd's ns for
    // half of them), then every blob it names, each checked against its digest.
    let pull = |with_ns: bool| {
        let ns = if with_ns {
            format!("?ns={HOST}")
        } else {
            String::new()
        };
        let manifest = get(&server.url(&format!("/v2/team/app/manifests/1{ns}")));
        assert_eq!(
            manifest.status,
            200,
            "{}",
            String::from_utf8_lossy(&manifest.body)
        );
        assert_eq!(
            sha256(&manifest.body),
            manifest.header("Docker-Content-Digest").unwrap()
        );
        let document = manifest.json();
        let mut digests = vec![document["config"]["digest"].as_str().unwrap().to_string()];
        for layer in document["layers"].as_array().unwrap() {
            digests.push(layer["digest"].as_str().unwrap().to_string());
        }
        for blob in &digests {
            let answer = get(&server.url(&format!("/v2/team/app/blobs/{blob}{ns}")));
            assert_eq!(
                answer.status,
                200,
                "{blob}: {}",
                String::from_utf8_lossy(&answer.body)
            );
            assert_eq!(&sha256(&answer.body), blob);
        }
        (sha256(&manifest.body), digests)
    };
    let results: Vec<(String, Vec<String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..16)
            .map(|i| scope.spawn(move || pull(i % 2 == 0)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let (manifest_digest, blobs) = results[0].clone();
    assert_eq!(manifest_digest, digest);
    for blob in &blobs {
        assert_eq!(
            proxy.blob_gets(blob),
            1,
            "upstream GETs of {blob}: {:?}",
            proxy.log()
        );
    }
    // Warm: nothing more upstream (the tag is fresh for its TTL).
    let before = proxy.log().len();
    pull(false);
    pull(true);
    assert_eq!(
        proxy.log().len(),
        before,
        "warm pulls went upstream: {:?}",
        &proxy.log()[before..]
    );

    // The mirrored image is a ref the CLI sees, complete.
    let name = format!("{HOST}/team/app:1");
    assert!(store.ok(&["list"]).contains(&name));
    store.ok(&["check", "--verify", &name]);
    // And `oci-store pull` through the mirror gets the same image.
    let client = TestStore::new();
    let pulled = client.json(&["pull", &format!("{}/team/app:1", server.address)]);
    assert_eq!(pulled["digest"], digest.as_str());
}

#[test]
fn a_stopped_upstream_leaves_cached_tags_served_and_the_rest_a_502() {
    if !tools_available(
        "a_stopped_upstream_leaves_cached_tags_served_and_the_rest_a_502",
        &[REGISTRY_TOOL],
    ) {
        return;
    }
    let registry = Registry::start(RegistryAuth::None);
    let (digest, _) = upstream_image(&registry);
    let proxy = Proxy::start(registry.address(), Box::new(|_, _| Action::Forward));
    // A TTL of zero: every request revalidates the tag, so the failure is met.
    let (_store, server) = mirror_store_and_server(&proxy, &["--tag-ttl", "0s"]);
    let cached = get(&server.url("/v2/team/app/manifests/1"));
    assert_eq!(cached.status, 200);
    drop(registry);

    let again = get(&server.url("/v2/team/app/manifests/1"));
    assert_eq!(
        again.status, 200,
        "the cached tag is served while the upstream is down"
    );
    assert_eq!(again.header("Docker-Content-Digest"), Some(digest.as_str()));
    assert!(
        server.wait_for_log("warning: serving the cached"),
        "{}",
        server.log()
    );
    for path in ["/v2/team/app/manifests/2", "/v2/team/other/manifests/1"] {
        let answer = get(&server.url(path));
        assert!(
            matches!(answer.status, 502..=504),
            "{path}: {}",
            answer.status
        );
        assert_eq!(answer.error_code(), "UNKNOWN");
    }
    let blob = format!("sha256:{}", "1".repeat(64));
    let answer = get(&server.url(&format!("/v2/team/app/blobs/{blob}")));
    assert!(
        matches!(answer.status, 502..=504),
        "uncached blob: {}",
        answer.status
    );
}

#[test]
fn a_corrupting_upstream_gets_an_error_to_the_client_and_stores_nothing() {
    if !tools_available(
        "a_corrupting_upstream_gets_an_error_to_the_client_and_stores_nothing",
        &[REGISTRY_TOOL],
    ) {
        return;
    }
    let registry = Registry::start(RegistryAuth::None);
    let (_, layer_bytes) = upstream_image(&registry);
    let layer_path = format!("/blobs/{}", sha256(&layer_bytes));
    // The layer comes back with one byte flipped.
    let mut flipped = layer_bytes.clone();
    flipped[100] ^= 0xFF;
    let proxy = Proxy::start(
        registry.address(),
        Box::new(move |request, _| {
            if request.method == "GET" && request.path.ends_with(&layer_path) {
                Action::ReplaceBody(flipped.clone())
            } else {
                Action::Forward
            }
        }),
    );
    let (store, server) = mirror_store_and_server(&proxy, &[]);
    let manifest = get(&server.url("/v2/team/app/manifests/1"));
    assert_eq!(manifest.status, 200);
    let layer = manifest.json()["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    // Streamed as it arrives: the response is aborted when the digest does not match.
    let answer = get(&server.url(&format!("/v2/team/app/blobs/{layer}")));
    assert!(
        answer.aborted || matches!(answer.status, 502..=504),
        "a corrupt blob was served whole: {} ({} bytes)",
        answer.status,
        answer.body.len()
    );
    assert!(
        !store.listed_digests().contains(&layer),
        "the corrupt blob was stored"
    );
    // Asked again with a range (not streamed), the verdict is a clean 502, and still nothing.
    let again = serve_support::send(
        "GET",
        &server.url(&format!("/v2/team/app/blobs/{layer}")),
        &[("Range", "bytes=0-9")],
        b"",
    );
    assert!(matches!(again.status, 502..=504), "{}", again.status);
    assert!(!store.listed_digests().contains(&layer));
}

#[test]
fn a_cold_blob_streams_to_its_first_client_as_it_arrives() {
    if !tools_available(
        "a_cold_blob_streams_to_its_first_client_as_it_arrives",
        &[REGISTRY_TOOL],
    ) {
        return;
    }
    use std::io::{Read, Write};
    let registry = Registry::start(RegistryAuth::None);
    let (_, layer_bytes) = upstream_image(&registry);
    let layer = sha256(&layer_bytes);
    let layer_path = format!("/blobs/{layer}");
    // The upstream sends the layer slowly: 40 KiB every 100 ms, about a second in all.
    let proxy = Proxy::start(
        registry.address(),
        Box::new(move |request, _| {
            if request.method == "GET" && request.path.ends_with(&layer_path) {
                Action::Throttle(40 * 1024, std::time::Duration::from_millis(100))
            } else {
                Action::Forward
            }
        }),
    );
    let (store, server) = mirror_store_and_server(&proxy, &[]);
    assert_eq!(get(&server.url("/v2/team/app/manifests/1")).status, 200);

    let started = std::time::Instant::now();
    let mut stream = std::net::TcpStream::connect(&server.address).unwrap();
    write!(
        stream,
        "GET /v2/team/app/blobs/{layer} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut received = Vec::new();
    let mut first_body_byte = None;
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let read = stream.read(&mut buffer).unwrap();
        if read == 0 {
            break;
        }
        received.extend_from_slice(&buffer[..read]);
        let head_end = received.windows(4).position(|w| w == b"\r\n\r\n");
        if first_body_byte.is_none() && head_end.is_some_and(|end| received.len() > end + 4) {
            first_body_byte = Some(started.elapsed());
        }
    }
    let total = started.elapsed();
    let head_end = received.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(
        received.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&received[..head_end])
    );
    assert_eq!(
        &received[head_end..],
        layer_bytes.as_slice(),
        "the streamed bytes are the blob"
    );
    let first = first_body_byte.unwrap();
    assert!(
        first * 3 < total,
        "the first byte came after {first:?} of {total:?}: not streamed as it arrived"
    );
    assert!(
        store.listed_digests().contains(&layer),
        "stored while streamed"
    );
}

#[test]
fn a_tag_moved_upstream_is_followed_after_its_ttl_and_skopeo_pulls_through() {
    if !tools_available(
        "a_tag_moved_upstream_is_followed_after_its_ttl_and_skopeo_pulls_through",
        &[REGISTRY_TOOL, "skopeo"],
    ) {
        return;
    }
    let registry = Registry::start(RegistryAuth::None);
    let (first, _) = upstream_image(&registry);
    let proxy = Proxy::start(registry.address(), Box::new(|_, _| Action::Forward));
    let (store, server) = mirror_store_and_server(&proxy, &["--tag-ttl", "1s"]);
    let tag_digest = || {
        get(&server.url(&format!("/v2/team/app/manifests/1?ns={HOST}")))
            .header("Docker-Content-Digest")
            .map(str::to_string)
    };
    assert_eq!(tag_digest(), Some(first.clone()));
    // After the TTL, an unchanged tag costs a HEAD, not another GET of the manifest.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(tag_digest(), Some(first.clone()));
    let manifest_requests: Vec<String> = proxy
        .log()
        .iter()
        .filter(|r| r.path.ends_with("/manifests/1"))
        .map(|r| r.method.clone())
        .collect();
    assert_eq!(manifest_requests, ["GET", "HEAD"], "{:?}", proxy.log());

    // Another image under the same tag upstream: still the cached one within the TTL, the new
    // one after it.
    let other = TestStore::new();
    let layout = other.scratch("layout");
    let moved = LayoutBuilder::simple_image(&layout, "app:2")
        .unwrap()
        .digest()
        .to_string();
    other.ok(&["import", path_str(&layout)]);
    other.ok(&[
        "push",
        "app:2",
        &format!("{}/team/app:1", registry.address()),
    ]);
    assert_eq!(tag_digest(), Some(first));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(tag_digest(), Some(moved.clone()));

    // skopeo through the mirror (no ns: the first mirror), digest for digest.
    let copied = store.scratch("copied");
    interop_tools::run_tool(
        "skopeo",
        &[
            "copy",
            "--preserve-digests",
            "--src-tls-verify=false",
            &format!("docker://{}/team/app:1", server.address),
            &format!("oci:{}:v1", path_str(&copied)),
        ],
    );
    assert_eq!(interop_tools::layout_ref_digest(&copied, "v1"), moved);
    store.ok(&["check", "--verify", &format!("{HOST}/team/app:1")]);
}

#[test]
fn containerd_pulls_through_the_mirror_named_in_its_hosts_toml() {
    use interop_tools::containerd::{running_as_root, Containerd};
    if !tools_available(
        "containerd_pulls_through_the_mirror_named_in_its_hosts_toml",
        &[REGISTRY_TOOL, "containerd", "ctr"],
    ) || !running_as_root()
    {
        return;
    }
    let registry = Registry::start(RegistryAuth::None);
    let (digest, _) = upstream_image(&registry);
    let proxy = Proxy::start(registry.address(), Box::new(|_, _| Action::Forward));
    let (store, server) = mirror_store_and_server(&proxy, &[]);

    // containerd's hosts directory: the upstream host's requests go to the mirror first, with
    // `?ns=registry.test`.
    let hosts = store.scratch("certs.d");
    std::fs::create_dir_all(hosts.join(HOST)).unwrap();
    std::fs::write(
        hosts.join(HOST).join("hosts.toml"),
        format!(
            "server = \"http://{}\"\n\n[host.\"http://{}\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
            registry.address(),
            server.address
        ),
    )
    .unwrap();
    let daemon_dir = std::env::temp_dir().join(format!("ctrm-{}", std::process::id()));
    let containerd = Containerd::start(&daemon_dir);
    let image = format!("{HOST}/team/app:1");
    containerd.ok(&["images", "pull", "--hosts-dir", path_str(&hosts), &image]);
    let listed = containerd.ok(&["images", "ls"]);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&image) && l.contains(&digest)),
        "{listed}"
    );
    // It came through the mirror: the store has the image, and the mirror saw ns=.
    assert!(
        server.wait_for_log("/v2/team/app/manifests/1 200"),
        "{}",
        server.log()
    );
    store.ok(&["check", "--verify", &image]);
}

#[test]
fn two_servers_and_two_pulls_on_one_store_fetch_each_blob_once() {
    if !tools_available(
        "two_servers_and_two_pulls_on_one_store_fetch_each_blob_once",
        &[REGISTRY_TOOL],
    ) {
        return;
    }
    let registry = Registry::start(RegistryAuth::None);
    let (digest, _) = upstream_image(&registry);
    let proxy = Proxy::start(registry.address(), Box::new(|_, _| Action::Forward));
    let (store, first) = mirror_store_and_server(&proxy, &[]);
    let spec = format!("{HOST}=http://{}", proxy.address());
    let second = Server::start(&store, &["--mirror", &spec]);

    let manifest = get(&first.url("/v2/team/app/manifests/1")).json();
    let mut blobs = vec![manifest["config"]["digest"].as_str().unwrap().to_string()];
    for layer in manifest["layers"].as_array().unwrap() {
        blobs.push(layer["digest"].as_str().unwrap().to_string());
    }
    // At once: 4 clients on each server, and two `oci-store pull` processes of the same image
    // from the upstream (through the same counting proxy) into the same store.
    std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for server in [&first, &second] {
            for _ in 0..4 {
                let blobs = &blobs;
                handles.push(scope.spawn(move || {
                    for blob in blobs {
                        let answer = get(&server.url(&format!("/v2/team/app/blobs/{blob}")));
                        assert_eq!(answer.status, 200);
                        assert_eq!(&sha256(&answer.body), blob);
                    }
                }));
            }
        }
        for _ in 0..2 {
            let (store, digest) = (&store, &digest);
            let source = format!("{}/team/app:1", proxy.address());
            handles.push(scope.spawn(move || {
                let pulled = store.json(&["pull", &source]);
                assert_eq!(pulled["digest"], digest.as_str());
            }));
        }
        for handle in handles {
            handle.join().unwrap();
        }
    });
    for blob in &blobs {
        assert_eq!(
            proxy.blob_gets(blob),
            1,
            "upstream GETs of {blob}: {:?}",
            proxy.log()
        );
    }
}

#[test]
fn referrers_are_brought_in_from_the_upstream_and_outlive_it() {
    // The upstream is another `oci-store serve --push` (it has the referrers API), filled by
    // HTTP with an image and a signature-like referrer of it.
    let upstream_store = TestStore::new();
    upstream_store.ok(&["stats"]);
    let upstream = Server::start(&upstream_store, &["--push"]);
    let put_blob = |bytes: &[u8]| {
        let digest = sha256(bytes);
        let url = upstream.url(&format!("/v2/team/app/blobs/uploads/?digest={digest}"));
        assert_eq!(serve_support::send("POST", &url, &[], bytes).status, 201);
        digest
    };
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_digest = put_blob(config);
    let manifest = |layer: &[u8], subject: Option<(&str, usize)>| {
        let layer_digest = put_blob(layer);
        let mut document = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}],
        });
        if let Some((digest, size)) = subject {
            document["subject"] = serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": size});
            document["artifactType"] = serde_json::json!("application/vnd.example.signature");
        }
        serde_json::to_vec(&document).unwrap()
    };
    let image = manifest(b"the image's layer", None);
    let image_digest = sha256(&image);
    let put = |reference: &str, bytes: &[u8]| {
        let url = upstream.url(&format!("/v2/team/app/manifests/{reference}"));
        let answer = serve_support::send(
            "PUT",
            &url,
            &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
            bytes,
        );
        assert_eq!(answer.status, 201);
    };
    put("1", &image);
    let signature = manifest(b"a signature", Some((&image_digest, image.len())));
    let signature_digest = sha256(&signature);
    put(&signature_digest, &signature);

    let store = TestStore::new();
    store.ok(&["stats"]);
    let spec = format!("{HOST}=http://{}", upstream.address);
    let mirror = Server::start(&store, &["--mirror", &spec]);
    let path = format!("/v2/team/app/referrers/{image_digest}");
    let listed = get(&mirror.url(&path));
    assert_eq!(listed.status, 200);
    assert_eq!(
        listed.json()["manifests"][0]["digest"],
        signature_digest.as_str(),
        "{}",
        listed.json()
    );
    assert!(
        store.listed_digests().contains(&signature_digest),
        "the referrer was stored"
    );

    // The upstream gone: the referrers are still listed, from the store.
    drop(upstream);
    let fresh = Server::start(&store, &["--mirror", &spec]);
    let again = get(&fresh.url(&path));
    assert_eq!(again.status, 200);
    assert_eq!(
        again.json()["manifests"][0]["digest"],
        signature_digest.as_str()
    );
    assert!(
        fresh.wait_for_log("warning: serving the cached referrers"),
        "{}",
        fresh.log()
    );
}

#[test]
fn an_upstream_that_needs_credentials_gets_those_of_the_docker_config() {
    if !tools_available(
        "an_upstream_that_needs_credentials_gets_those_of_the_docker_config",
        &[REGISTRY_TOOL],
    ) {
        return;
    }
    let (username, password) = ("mirror", "s3cret");
    let registry = Registry::start(RegistryAuth::Basic {
        username: username.to_string(),
        password: password.to_string(),
    });
    // The image goes up with the same credentials, given to `push` explicitly.
    let source = TestStore::new();
    let layout = source.scratch("layout");
    let digest = LayoutBuilder::simple_image(&layout, "app:1")
        .unwrap()
        .digest()
        .to_string();
    source.ok(&["import", path_str(&layout)]);
    let pushed = source.run(
        &[
            "push",
            "-u",
            username,
            "--password-stdin",
            "app:1",
            &format!("{}/team/app:1", registry.address()),
        ],
        password.as_bytes(),
    );
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );

    // The mirror reads them from a Docker config, as `pull` would.
    let store = TestStore::new();
    store.ok(&["stats"]);
    let docker = store.scratch("docker");
    std::fs::create_dir_all(&docker).unwrap();
    let auth = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
    };
    std::fs::write(
        docker.join("config.json"),
        serde_json::json!({"auths": {registry.address(): {"auth": auth}}}).to_string(),
    )
    .unwrap();
    let spec = format!("{HOST}=http://{}", registry.address());
    let server = Server::start_with_env(
        &store,
        &["--mirror", &spec],
        &[("DOCKER_CONFIG", path_str(&docker))],
    );
    let manifest = get(&server.url("/v2/team/app/manifests/1"));
    assert_eq!(
        manifest.status,
        200,
        "{}",
        String::from_utf8_lossy(&manifest.body)
    );
    assert_eq!(
        manifest.header("Docker-Content-Digest"),
        Some(digest.as_str())
    );

    // Without the credentials, the upstream refuses: a 502 naming it, not a 404.
    let other = TestStore::new();
    other.ok(&["stats"]);
    let refused = Server::start(&other, &["--mirror", &spec]);
    let answer = get(&refused.url("/v2/team/app/manifests/1"));
    assert_eq!(
        answer.status,
        502,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
}

#[test]
fn a_mirrored_image_left_unused_is_evicted_and_fetched_again() {
    if !tools_available(
        "a_mirrored_image_left_unused_is_evicted_and_fetched_again",
        &[REGISTRY_TOOL],
    ) {
        return;
    }
    let registry = Registry::start(RegistryAuth::None);
    let (_, big_layer) = upstream_image(&registry);
    let big = sha256(&big_layer);
    let proxy = Proxy::start(registry.address(), Box::new(|_, _| Action::Forward));
    let store = TestStore::new();
    let config = store.scratch("config.toml");
    // Evict what has been unused for 2 s, looking every second; every use is recorded.
    std::fs::write(
        &config,
        "[prune]\nuntil = \"2s\"\ninterval = \"1s\"\nlast_used_interval = \"0s\"\n",
    )
    .unwrap();
    let spec = format!("{HOST}=http://{}", proxy.address());
    let server = Server::start_with_env(
        &store,
        &["--mirror", &spec],
        &[("OCI_STORE_CONFIG", path_str(&config))],
    );
    let pull = || {
        let manifest = get(&server.url("/v2/team/app/manifests/1"));
        assert_eq!(manifest.status, 200);
        for layer in manifest.json()["layers"].as_array().unwrap() {
            let digest = layer["digest"].as_str().unwrap();
            let answer = get(&server.url(&format!("/v2/team/app/blobs/{digest}")));
            assert_eq!(&sha256(&answer.body), digest);
        }
    };
    pull();
    assert_eq!(proxy.blob_gets(&big), 1);
    let name = format!("{HOST}/team/app:1");
    assert!(
        server.wait_for_log(&format!("prune (scheduled): removed 1 refs ({name})")),
        "{}",
        server.log()
    );
    assert!(!store.ok(&["list"]).contains(&name));
    let stats = store.json(&["stats"]);
    assert!(
        stats["bytes"].as_u64().unwrap() < big_layer.len() as u64,
        "the evicted layer's bytes were not freed: {stats}"
    );
    // The next pull goes upstream again, and is cached again.
    pull();
    assert_eq!(proxy.blob_gets(&big), 2);
    assert!(store.ok(&["list"]).contains(&name));
}
