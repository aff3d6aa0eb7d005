//! A pull killed in the middle of a layer leaves the part it downloaded staged, and the next
//! pull, in another process, takes it over: it asks the registry only for the rest (`Range:
//! bytes=N-`, N > 0), hashes the kept bytes again so the digest check covers the whole blob,
//! and the image verifies. Once per blob backend (`fs` stages in a file, `sqlite` and `lmdb`
//! in database chunks), against our own `serve` behind a proxy that logs every request.

mod cli_support;
mod registry_support;
mod serve_support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use cli_support::{pseudo_random_bytes, sha256, TestStore};
use oci_store::stores::oci::layout_builder::LayoutBuilder;
use registry_support::proxy::{Action, Proxy};
use rstest::rstest;
use serve_support::Server;

const MIB: usize = 1024 * 1024;
/// The layer: large enough that the part sent before the stall fills several of the
/// database backends' 1 MiB chunks and the `fs` writer's 1 MiB buffer.
const LAYER_SIZE: usize = 8 * MIB;
/// What the proxy sends of the layer before it stalls, the pull still waiting for the rest.
const SENT_BEFORE_STALL: usize = 7 * MIB / 2;
/// What the killed pull must have written by then: the sent bytes less the reader's and the
/// writer's buffers (a megabyte each at most).
const WRITTEN_BEFORE_KILL: u64 = 3 * MIB as u64 / 2;

/// A store serving `demo:v1`: one config and one layer of incompressible bytes. Returns the
/// manifest digest and the layer's digest.
fn served_image(source: &TestStore) -> (String, String) {
    let layout = source.scratch("layout");
    let mut builder = LayoutBuilder::new(&layout).unwrap();
    let layer = pseudo_random_bytes(LAYER_SIZE, 22);
    let image = builder
        .image("linux", "amd64", std::slice::from_ref(&layer))
        .unwrap();
    builder.add_ref(Some("demo:v1"), &image);
    builder.finish().unwrap();
    source.ok(&["import", layout.to_str().unwrap()]);
    (image.digest().to_string(), sha256(&layer))
}

/// Bytes the process has handed to `write` and its kin so far (`/proc/PID/io`, `wchar`):
/// whatever its blob backend stages through (a file, SQLite's log, LMDB's pages).
fn bytes_written_by(pid: u32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
    io.lines()
        .find_map(|line| line.strip_prefix("wchar: "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0)
}

/// The offset a `Range: bytes=N-` header asks from.
fn range_start(range: &str) -> u64 {
    range
        .strip_prefix("bytes=")
        .and_then(|rest| rest.strip_suffix('-'))
        .and_then(|start| start.parse().ok())
        .unwrap_or_else(|| panic!("not an open range: {range:?}"))
}

/// A served image behind a proxy that stalls the first download of its layer after
/// [`SENT_BEFORE_STALL`] bytes and forwards everything else.
struct Served {
    _server: Server,
    proxy: Proxy,
    manifest: String,
    layer: String,
    reference: String,
    _source: TestStore,
}

fn serve_with_a_stalling_proxy() -> Served {
    let source = TestStore::new();
    let (manifest, layer) = served_image(&source);
    let server = Server::start(&source, &[]);
    let stalled_layer = layer.clone();
    let proxy = Proxy::start(
        server.address.clone(),
        Box::new(move |request, log| {
            let is_layer = request.method == "GET" && request.path.ends_with(&stalled_layer);
            let earlier_gets = log
                .iter()
                .filter(|l| l.method == "GET" && l.path.ends_with(&stalled_layer))
                .count();
            if is_layer && earlier_gets == 1 {
                Action::StallAfter(SENT_BEFORE_STALL)
            } else {
                Action::Forward
            }
        }),
    );
    let reference = format!("{}/demo:v1", proxy.address());
    Served {
        _server: server,
        proxy,
        manifest,
        layer,
        reference,
        _source: source,
    }
}

/// Starts a pull of the served image into `store` and kills it (SIGKILL) once the layer's
/// first part is written where the backend stages it.
fn pull_and_kill_mid_layer(store: &TestStore, blobs: &str, served: &Served) {
    let mut pull = store
        .command(&["--blobs", blobs, "pull", &served.reference])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting a pull");
    let deadline = Instant::now() + Duration::from_secs(60);
    while served.proxy.blob_gets(&served.layer) == 0
        || bytes_written_by(pull.id()) < WRITTEN_BEFORE_KILL
    {
        assert!(
            pull.try_wait().expect("polling the pull").is_none(),
            "the pull ended before it was killed"
        );
        assert!(
            Instant::now() < deadline,
            "the pull never wrote the layer's first part"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    pull.kill().expect("killing the pull");
    pull.wait().expect("reaping the pull");
}

/// The Range headers of the layer's downloads, in order.
fn layer_ranges(served: &Served) -> Vec<Option<String>> {
    served
        .proxy
        .log()
        .into_iter()
        .filter(|l| l.method == "GET" && l.path.ends_with(&served.layer))
        .map(|l| l.range)
        .collect()
}

fn assert_verifies(store: &TestStore, blobs: &str, served: &Served) {
    let check = store.json(&["--blobs", blobs, "check", "--verify", &served.reference]);
    assert_eq!(check["missing"], serde_json::json!([]), "{check}");
    assert_eq!(check["corrupt"], serde_json::json!([]), "{check}");
}

#[rstest]
#[case::fs("fs")]
#[case::sqlite("sqlite")]
#[case::lmdb("lmdb")]
fn a_killed_pulls_partial_layer_is_resumed_by_the_next_pull(#[case] blobs: &str) {
    let served = serve_with_a_stalling_proxy();
    let store = TestStore::new();
    pull_and_kill_mid_layer(&store, blobs, &served);

    let pulled = store.json(&["--blobs", blobs, "pull", &served.reference]);
    assert_eq!(pulled["digest"], served.manifest.as_str(), "{pulled}");
    let ranges = layer_ranges(&served);
    assert_eq!(
        ranges.len(),
        2,
        "one killed download, one resumed: {ranges:?}"
    );
    assert_eq!(ranges[0], None, "the first download asks from the start");
    let resumed_from = range_start(ranges[1].as_deref().unwrap_or_else(|| {
        panic!("the second pull downloaded the layer again from the start: {ranges:?}")
    }));
    assert!(
        resumed_from > 0 && resumed_from <= SENT_BEFORE_STALL as u64,
        "resumed from {resumed_from}, the killed pull got {SENT_BEFORE_STALL} bytes"
    );
    assert_verifies(&store, blobs, &served);
}

/// The staged part is hashed again, not trusted: when it was damaged after the kill, the
/// resumed download ends in a digest mismatch, the part is discarded, and the pull downloads
/// the layer once more from its first byte, then verifies.
#[test]
fn a_damaged_partial_layer_is_downloaded_again_whole() {
    let served = serve_with_a_stalling_proxy();
    let store = TestStore::new();
    pull_and_kill_mid_layer(&store, "fs", &served);
    // `ingest/<id>.sha256-<hex>.staging`: the layer's resumable staging file.
    let layer_staging = format!(".{}.staging", served.layer.replace(':', "-"));
    let staged: Vec<_> = std::fs::read_dir(store.path().join("ingest"))
        .expect("the ingest directory")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_string_lossy().ends_with(&layer_staging))
        .collect();
    assert_eq!(staged.len(), 1, "the layer's staging file: {staged:?}");
    let mut bytes = std::fs::read(&staged[0]).unwrap();
    assert!(bytes.len() > 1000, "{} bytes staged", bytes.len());
    bytes[1000] ^= 0x01;
    std::fs::write(&staged[0], &bytes).unwrap();

    let pulled = store.json(&["pull", &served.reference]);
    assert_eq!(pulled["digest"], served.manifest.as_str(), "{pulled}");
    let ranges = layer_ranges(&served);
    assert_eq!(
        ranges.len(),
        3,
        "killed, resumed then refused, whole again: {ranges:?}"
    );
    assert!(
        ranges[1].is_some(),
        "the second download resumed: {ranges:?}"
    );
    assert_eq!(ranges[2], None, "the third asks from the start: {ranges:?}");
    assert_verifies(&store, "fs", &served);
}

/// What a killed pull left staged is counted by `gc --dry-run` as the real `gc` then frees it:
/// the same dead writes and bytes, on every blob backend (and afterwards nothing is left to
/// take over: the next pull downloads the layer from the start).
#[rstest]
#[case::fs("fs")]
#[case::sqlite("sqlite")]
#[case::lmdb("lmdb")]
fn gc_dry_run_counts_a_killed_pulls_partial_layer_as_gc_frees_it(#[case] blobs: &str) {
    let served = serve_with_a_stalling_proxy();
    let store = TestStore::new();
    pull_and_kill_mid_layer(&store, blobs, &served);

    let dry_run = store.json(&["--blobs", blobs, "gc", "--dry-run"]);
    let would = (
        dry_run["dead_ingests"].as_u64(),
        dry_run["dead_ingest_bytes"].as_u64(),
    );
    assert!(
        would.0 >= Some(1) && would.1 >= Some(MIB as u64),
        "the dry run counts the partial layer: {dry_run}"
    );
    let collected = store.json(&["--blobs", blobs, "gc"]);
    assert_eq!(
        (
            collected["dead_ingests"].as_u64(),
            collected["dead_ingest_bytes"].as_u64()
        ),
        would,
        "gc frees what its dry run counted: {collected}"
    );
    let after = store.json(&["--blobs", blobs, "gc", "--dry-run"]);
    assert_eq!(after["dead_ingests"], 0, "{after}");

    store.ok(&["--blobs", blobs, "pull", &served.reference]);
    assert_eq!(
        layer_ranges(&served).last(),
        Some(&None),
        "nothing left to resume from"
    );
    assert_verifies(&store, blobs, &served);
}
