//! Less traffic and safe transfers against a real distribution 2.8 registry, watched through a
//! test proxy: downloads resume with Range after a cut, requests are retried on 429/5xx, blobs
//! move several at a time, two concurrent pulls fetch each blob once, a killed pull leaves no
//! ref and nothing half-written, pushes mount across repositories (falling back to an upload
//! on 202) and upload in chunks.

mod cli_support;
mod interop_tools;
mod registry_support;

use std::time::{Duration, Instant};

use cli_support::{pseudo_random_bytes, TestStore};
use interop_tools::{layout_blobs, manifest_layers, path_str, tools_available, umoci_image};
use oci_store::store::{open_store, BackendChoice};
use registry_support::proxy::{Action, Proxy};
use registry_support::{Registry, RegistryAuth, REGISTRY_TOOL};

fn tools(test: &str) -> bool {
    tools_available(test, &[REGISTRY_TOOL, "umoci"])
}

struct Image {
    digest: String,
    layers: Vec<String>,
    sizes: std::collections::BTreeMap<String, usize>,
}

/// A store with `app:1`: `layers` layers of incompressible content, `layer_size` bytes each.
fn store_with_image(store: &TestStore, layers: usize, layer_size: usize) -> Image {
    let built = store.scratch("built");
    let contents: Vec<Vec<u8>> = (0..layers)
        .map(|n| pseudo_random_bytes(layer_size, n as u64 + 1))
        .collect();
    let names: Vec<String> = (0..layers).map(|n| format!("/data/{n}")).collect();
    let files: Vec<(&str, &[u8])> = names
        .iter()
        .zip(&contents)
        .map(|(name, content)| (name.as_str(), content.as_slice()))
        .collect();
    let digest = umoci_image(&built, "latest", &files);
    store.ok(&[
        "import",
        "--sref",
        "latest",
        "--dref",
        "app:1",
        path_str(&built),
    ]);
    let sizes = layout_blobs(&built)
        .into_iter()
        .map(|(digest, bytes)| (digest, bytes.len()))
        .collect();
    Image {
        layers: manifest_layers(&built, &digest),
        digest,
        sizes,
    }
}

fn dump(store: &TestStore) -> oci_store::store::StoreDump {
    open_store(&store.path(), &BackendChoice::default())
        .expect("opening the store")
        .dump()
        .expect("dumping the store")
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[test]
fn an_interrupted_download_resumes_from_what_arrived() {
    if !tools("an_interrupted_download_resumes_from_what_arrived") {
        return;
    }
    let registry = Registry::start(RegistryAuth::None);
    let source = TestStore::new();
    let image = store_with_image(&source, 1, 400_000);
    source.ok(&["push", "app:1", &format!("{}/app:1", registry.address())]);
    let layer = image.layers[0].clone();
    let cut_at = 150_000;
    let rule_layer = layer.clone();
    let proxy = Proxy::start(
        registry.address(),
        Box::new(move |request, log| {
            let gets = log
                .iter()
                .filter(|l| l.method == "GET" && l.path.ends_with(&rule_layer))
                .count();
            if request.method == "GET" && request.path.ends_with(&rule_layer) && gets == 1 {
                Action::CutAfter(cut_at)
            } else {
                Action::Forward
            }
        }),
    );
    let store = TestStore::new();
    let pulled = store.json(&["pull", &format!("{}/app:1", proxy.address())]);
    assert_eq!(pulled["digest"], image.digest.as_str());
    let gets: Vec<_> = proxy
        .log()
        .into_iter()
        .filter(|l| l.method == "GET" && l.path.ends_with(&layer))
        .collect();
    assert_eq!(gets.len(), 2, "one cut, one resume: {gets:?}");
    assert_eq!(gets[0].range, None);
    assert_eq!(
        gets[1].range.as_deref(),
        Some(format!("bytes={cut_at}-").as_str()),
        "the resume asks only for what did not arrive"
    );
    let check = store.json(&["check", &format!("{}/app:1", proxy.address()), "--verify"]);
    assert_eq!(check["corrupt"], serde_json::json!([]), "{check}");
}

#[test]
fn requests_are_retried_on_429_and_5xx() {
    if !tools("requests_are_retried_on_429_and_5xx") {
        return;
    }
    let registry = Registry::start(RegistryAuth::None);
    let source = TestStore::new();
    let image = store_with_image(&source, 1, 1000);
    source.ok(&["push", "app:1", &format!("{}/app:1", registry.address())]);
    let proxy = Proxy::start(
        registry.address(),
        Box::new(|request, log| {
            let same = log
                .iter()
                .filter(|l| l.method == request.method && l.path == request.path)
                .count();
            let busy = |status| Action::Respond {
                status,
                headers: vec![("Retry-After".into(), "0".into())],
                body: Vec::new(),
            };
            match (
                request.path.contains("/manifests/"),
                request.path.contains("/blobs/"),
                same,
            ) {
                (true, _, 1) => busy(503),
                (_, true, 1) => busy(429),
                (_, true, 2) => busy(502),
                _ => Action::Forward,
            }
        }),
    );
    let store = TestStore::new();
    let pulled = store.json(&["pull", &format!("{}/app:1", proxy.address())]);
    assert_eq!(pulled["digest"], image.digest.as_str());
    let layer_gets = proxy.blob_gets(&image.layers[0]);
    assert_eq!(layer_gets, 3, "429, 502, then the blob");

    // Without retries the first 503 is the answer, named in the error.
    let store = TestStore::new();
    let again = Proxy::start(
        registry.address(),
        Box::new(|_, _| Action::Respond {
            status: 503,
            headers: vec![],
            body: Vec::new(),
        }),
    );
    let error = store.fails(&[
        "pull",
        "--retries",
        "0",
        &format!("{}/app:1", again.address()),
    ]);
    assert!(error.contains("503"), "{error}");
}

#[test]
fn blobs_move_several_at_a_time_as_configured() {
    if !tools("blobs_move_several_at_a_time_as_configured") {
        return;
    }
    let registry = Registry::start(RegistryAuth::None);
    let source = TestStore::new();
    store_with_image(&source, 4, 100_000);
    source.ok(&["push", "app:1", &format!("{}/app:1", registry.address())]);
    let slow = || -> Box<registry_support::proxy::Rule> {
        Box::new(|request, _| {
            if request.method == "GET" && request.path.contains("/blobs/") {
                Action::Throttle(20_000, Duration::from_millis(40))
            } else {
                Action::Forward
            }
        })
    };
    let parallel = Proxy::start(registry.address(), slow());
    TestStore::new().ok(&["pull", &format!("{}/app:1", parallel.address())]);
    assert!(
        parallel.most_blob_gets_at_once() >= 3,
        "four layers, four jobs by default: {} at once",
        parallel.most_blob_gets_at_once()
    );
    let serial = Proxy::start(registry.address(), slow());
    TestStore::new().ok(&[
        "pull",
        "--jobs",
        "1",
        &format!("{}/app:1", serial.address()),
    ]);
    assert_eq!(serial.most_blob_gets_at_once(), 1);
}

/// The outputs of `children`, which must all exit within `limit`: past it, every one still
/// running is killed and the test fails (two pulls waiting on each other fail, not hang).
fn outputs_within(
    children: Vec<std::process::Child>,
    limit: Duration,
) -> Vec<std::process::Output> {
    let pids: Vec<u32> = children.iter().map(std::process::Child::id).collect();
    let (sender, receiver) = std::sync::mpsc::channel();
    for (position, child) in children.into_iter().enumerate() {
        let sender = sender.clone();
        std::thread::spawn(move || {
            let _ = sender.send((position, child.wait_with_output().expect("a pull")));
        });
    }
    let deadline = Instant::now() + limit;
    let mut outputs: Vec<Option<std::process::Output>> = pids.iter().map(|_| None).collect();
    for _ in 0..pids.len() {
        match receiver.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok((position, output)) => outputs[position] = Some(output),
            Err(_) => {
                for (pid, output) in pids.iter().zip(&outputs) {
                    if output.is_none() {
                        // SAFETY: kill only sends a signal to a child we started and not reaped.
                        unsafe { libc::kill(*pid as libc::pid_t, libc::SIGKILL) };
                    }
                }
                panic!("the pulls did not all finish within {limit:?}: they wait on each other");
            }
        }
    }
    outputs.into_iter().map(Option::unwrap).collect()
}

#[test]
fn two_concurrent_pulls_fetch_each_blob_once() {
    if !tools("two_concurrent_pulls_fetch_each_blob_once") {
        return;
    }
    let registry = Registry::start(RegistryAuth::None);
    let source = TestStore::new();
    let image = store_with_image(&source, 8, 200_000);
    source.ok(&["push", "app:1", &format!("{}/app:1", registry.address())]);
    let proxy = Proxy::start(
        registry.address(),
        Box::new(|request, _| {
            if request.method == "GET" && request.path.contains("/blobs/") {
                Action::Throttle(20_000, Duration::from_millis(30))
            } else {
                Action::Forward
            }
        }),
    );
    let store = TestStore::new();
    store.ok(&["stats"]);
    let remote = format!("{}/app:1", proxy.address());
    let pulls: Vec<_> = ["first", "second"]
        .iter()
        .map(|name| {
            store
                .command(&["pull", "--json", &remote, "--dref", name])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("starting a pull")
        })
        .collect();
    for output in outputs_within(pulls, Duration::from_secs(120)) {
        assert!(
            output.status.success(),
            "both pulls succeed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(report["digest"], image.digest.as_str());
    }
    for digest in image.sizes.keys().filter(|d| **d != image.digest) {
        assert_eq!(proxy.blob_gets(digest), 1, "blob {digest} fetched once");
    }
    for name in ["first", "second"] {
        let check = store.json(&["check", name, "--verify"]);
        assert_eq!(check["missing"], serde_json::json!([]), "{check}");
    }
}

#[test]
fn a_killed_pull_leaves_no_ref_and_nothing_half_written() {
    if !tools("a_killed_pull_leaves_no_ref_and_nothing_half_written") {
        return;
    }
    let registry = Registry::start(RegistryAuth::None);
    let source = TestStore::new();
    let image = store_with_image(&source, 2, 300_000);
    source.ok(&["push", "app:1", &format!("{}/app:1", registry.address())]);
    let slow_layer = image.layers[1].clone();
    let proxy = Proxy::start(
        registry.address(),
        Box::new(move |request, _| {
            if request.method == "GET" && request.path.ends_with(&slow_layer) {
                Action::Throttle(1000, Duration::from_millis(50))
            } else {
                Action::Forward
            }
        }),
    );
    let store = TestStore::new();
    store.ok(&["stats"]);
    let before = dump(&store);
    let mut pull = store
        .command(&["pull", "--jobs", "1", &format!("{}/app:1", proxy.address())])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starting a pull");
    // Kill it while the slow layer streams in, after the other blobs were committed.
    let deadline = Instant::now() + Duration::from_secs(30);
    while proxy.blob_gets(&image.layers[1]) == 0 {
        assert!(
            Instant::now() < deadline,
            "the pull never reached the slow layer"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    pull.kill().expect("killing the pull");
    pull.wait().expect("reaping the pull");

    assert!(
        store.json(&["list"]).as_array().unwrap().is_empty(),
        "no ref after a killed pull"
    );
    let check = store.fails(&["check", &format!("{}/app:1", proxy.address())]);
    assert!(check.contains("no ref"), "{check}");
    store.ok(&["gc"]);
    assert_eq!(
        dump(&store),
        before,
        "GC removes everything the killed pull wrote"
    );
    let ingest = files_under(&store.path().join("ingest"));
    assert!(
        ingest.is_empty(),
        "no half-written download stays: {ingest:?}"
    );
}

#[test]
fn pushes_mount_across_repositories_and_fall_back_to_an_upload() {
    if !tools("pushes_mount_across_repositories_and_fall_back_to_an_upload") {
        return;
    }
    let registry = Registry::start(RegistryAuth::None);
    let store = TestStore::new();
    store_with_image(&store, 2, 10_000);
    store.ok(&[
        "push",
        "app:1",
        &format!("{}/first/app:1", registry.address()),
    ]);
    let mounted = store.json(&[
        "push",
        "--mount-from",
        "first/app",
        "app:1",
        &format!("{}/second/app:1", registry.address()),
    ]);
    assert_eq!(mounted["blobs_mounted"], 3, "{mounted}");
    assert_eq!(mounted["blobs_uploaded"], 0, "{mounted}");
    // A repository that does not have them: the registry opens an upload (202) instead.
    let fallback = store.json(&[
        "push",
        "--mount-from",
        "nowhere/app",
        "app:1",
        &format!("{}/third/app:1", registry.address()),
    ]);
    assert_eq!(fallback["blobs_mounted"], 0, "{fallback}");
    assert_eq!(fallback["blobs_uploaded"], 3, "{fallback}");
    for repository in ["second/app", "third/app"] {
        let other = TestStore::new();
        other.ok(&[
            "pull",
            &format!("{}/{repository}:1", registry.address()),
            "--dref",
            "x",
        ]);
        let check = other.json(&["check", "x", "--verify"]);
        assert_eq!(check["corrupt"], serde_json::json!([]), "{check}");
    }
}

#[test]
fn chunked_uploads_arrive_whole() {
    if !tools("chunked_uploads_arrive_whole") {
        return;
    }
    let registry = Registry::start(RegistryAuth::None);
    let proxy = Proxy::start(registry.address(), Box::new(|_, _| Action::Forward));
    let store = TestStore::new();
    let image = store_with_image(&store, 1, 50_000);
    let layer_size = image.sizes[&image.layers[0]];
    let pushed = store.json(&[
        "push",
        "--chunk-size",
        "16384",
        "app:1",
        &format!("{}/chunked:1", proxy.address()),
    ]);
    assert_eq!(pushed["blobs_uploaded"], 2, "{pushed}");
    let patches = proxy.log().iter().filter(|l| l.method == "PATCH").count();
    assert!(
        patches >= layer_size.div_ceil(16384),
        "the layer went in chunks: {patches} PATCHes for {layer_size} bytes"
    );
    let other = TestStore::new();
    let pulled = other.json(&["pull", &format!("{}/chunked:1", registry.address())]);
    assert_eq!(pulled["digest"], image.digest.as_str());
}

#[test]
fn a_gc_during_a_pull_waits_for_it_and_sweeps_nothing_it_holds() {
    if !tools("a_gc_during_a_pull_waits_for_it_and_sweeps_nothing_it_holds") {
        return;
    }
    let registry = Registry::start(RegistryAuth::None);
    let source = TestStore::new();
    let image = store_with_image(&source, 2, 200_000);
    source.ok(&["push", "app:1", &format!("{}/app:1", registry.address())]);
    let slow_layer = image.layers[1].clone();
    let proxy = Proxy::start(
        registry.address(),
        Box::new(move |request, _| {
            if request.method == "GET" && request.path.ends_with(&slow_layer) {
                Action::Throttle(10_000, Duration::from_millis(50))
            } else {
                Action::Forward
            }
        }),
    );
    let store = TestStore::new();
    store.ok(&["stats"]);
    let pull = store
        .command(&[
            "pull",
            "--jobs",
            "1",
            &format!("{}/app:1", proxy.address()),
            "--dref",
            "p",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starting a pull");
    let deadline = Instant::now() + Duration::from_secs(30);
    while proxy.blob_gets(&image.layers[1]) == 0 {
        assert!(
            Instant::now() < deadline,
            "the pull never reached the slow layer"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The config and the first layer are committed, held only by the running pull.
    let gc = store.json(&["gc"]);
    let pulled = pull.wait_with_output().expect("the pull");
    assert!(
        pulled.status.success(),
        "the pull survives a GC: {}",
        String::from_utf8_lossy(&pulled.stderr)
    );
    assert_eq!(gc["swept"], serde_json::json!([]), "nothing swept: {gc}");
    assert_eq!(
        gc["marked"], 4,
        "the GC ran after the pull wrote its ref: {gc}"
    );
    let check = store.json(&["check", "p", "--verify"]);
    assert_eq!(check["missing"], serde_json::json!([]), "{check}");
}

#[test]
fn blobs_are_mounted_from_the_repositories_the_store_knows_have_them() {
    if !tools("blobs_are_mounted_from_the_repositories_the_store_knows_have_them") {
        return;
    }
    let registry = Registry::start(RegistryAuth::None);
    let other_registry = Registry::start(RegistryAuth::None);
    let source = TestStore::new();
    store_with_image(&source, 2, 10_000);
    source.ok(&[
        "push",
        "app:1",
        &format!("{}/first/app:1", registry.address()),
    ]);
    // Pushed there before: the next repository of the same registry mounts every blob.
    let second = source.json(&[
        "push",
        "app:1",
        &format!("{}/second/app:1", registry.address()),
    ]);
    assert_eq!(second["blobs_mounted"], 3, "{second}");
    assert_eq!(second["blobs_uploaded"], 0, "{second}");

    // Pulled from there: the same.
    let store = TestStore::new();
    let pulled_from = format!("{}/first/app:1", registry.address());
    store.ok(&["pull", &pulled_from, "--dref", "app"]);
    let third = store.json(&[
        "push",
        "app",
        &format!("{}/third/app:1", registry.address()),
    ]);
    assert_eq!(third["blobs_mounted"], 3, "{third}");
    // Another registry knows nothing of them: uploaded.
    let elsewhere = store.json(&[
        "push",
        "app",
        &format!("{}/app:1", other_registry.address()),
    ]);
    assert_eq!(elsewhere["blobs_mounted"], 0, "{elsewhere}");
    assert_eq!(elsewhere["blobs_uploaded"], 3, "{elsewhere}");
    // A repository that lost them answers the mount with an upload session: used.
    let lost = Registry::start(RegistryAuth::None);
    store.ok(&["push", "app", &format!("{}/gone/app:1", lost.address())]);
    let storage = lost.storage().join("docker/registry/v2/repositories/gone");
    std::fs::remove_dir_all(&storage).expect("dropping the repository");
    let fallback = store.json(&["push", "app", &format!("{}/again/app:1", lost.address())]);
    assert_eq!(fallback["blobs_mounted"], 0, "{fallback}");
    assert_eq!(fallback["blobs_uploaded"], 3, "{fallback}");
    for (registry, repository) in [(&registry, "third/app"), (&lost, "again/app")] {
        let check_store = TestStore::new();
        check_store.ok(&[
            "pull",
            &format!("{}/{repository}:1", registry.address()),
            "--dref",
            "x",
        ]);
        let check = check_store.json(&["check", "x", "--verify"]);
        assert_eq!(check["corrupt"], serde_json::json!([]), "{check}");
    }
}
