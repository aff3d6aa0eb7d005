//! Retention run by the tools that fill the store: `serve` applies `[prune]` every
//! `prune.interval` and at once when a write leaves the file system above the high
//! watermark; `pull` applies it after a pull that succeeded when `prune.after_pull` is set.
//! Each run is logged with what it removed and freed.

mod cli_support;
mod serve_support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cli_support::{sha256, TestStore};
use oci_store::stores::oci::layout_builder::LayoutBuilder;
use serve_support::{send, Server};

const DAY_MS: i64 = 24 * 3600 * 1000;

/// A store with `old:1` and `old:2` last used 30 days ago and `new:1` used now, and a config
/// file with `config` under `[prune]`.
fn aged_store(config: &str) -> (TestStore, String) {
    let store = TestStore::new();
    let layout = store.scratch("layout");
    let mut builder = LayoutBuilder::new(&layout).unwrap();
    for name in ["old:1", "old:2", "new:1"] {
        let layer = LayoutBuilder::layer_tar_gz(&[("name", name.as_bytes())]).unwrap();
        let image = builder.image("linux", "amd64", &[layer]).unwrap();
        builder.add_ref(Some(name), &image);
    }
    builder.finish().unwrap();
    store.ok(&["import", "--all", layout.to_str().unwrap()]);
    let month_ago = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
        - 30 * DAY_MS;
    for name in ["old:1", "old:2"] {
        store.ok(&[
            "data",
            "set",
            "--type",
            "store.last-used",
            &format!("oci/{name}"),
            &month_ago.to_string(),
        ]);
    }
    let path = store.scratch("config.toml");
    std::fs::write(&path, format!("[prune]\n{config}\n")).unwrap();
    (store, path.to_str().unwrap().to_string())
}

fn ref_names(store: &TestStore) -> Vec<String> {
    store
        .json(&["list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn serve_prunes_by_the_configured_policy_every_interval() {
    let (store, config) = aged_store("until = \"7d\"\ninterval = \"1s\"");
    let server = Server::start_with_env(&store, &[], &[("OCI_STORE_CONFIG", &config)]);
    assert!(
        server.wait_for_log("prune (scheduled): removed 2 refs (old:1, old:2)"),
        "{}",
        server.log()
    );
    assert_eq!(ref_names(&store), ["new:1"]);
    store.ok(&["check", "--verify", "new:1"]);
}

#[test]
fn a_push_above_the_high_watermark_prunes_at_once() {
    // Every file system is above a 0% watermark: the push's write is what starts the prune
    // (the hour-long interval, and the periodic look at the watermark 15 s after the start,
    // are both later than the wait below).
    let (store, config) = aged_store(
        "until = \"7d\"\nhigh_watermark = \"0%\"\nlow_watermark = \"0%\"\ninterval = \"1h\"",
    );
    let started = Instant::now();
    let server = Server::start_with_env(&store, &["--push"], &[("OCI_STORE_CONFIG", &config)]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!server.log().contains("prune ("), "{}", server.log());
    let blob = b"a pushed blob";
    let answer = send(
        "POST",
        &server.url(&format!(
            "/v2/pushed/blobs/uploads/?digest={}",
            sha256(blob)
        )),
        &[("Content-Type", "application/octet-stream")],
        blob,
    );
    assert_eq!(answer.status, 201, "{answer:?}");
    assert!(
        server.wait_for_log("prune (high watermark): removed 2 refs (old:1, old:2)"),
        "{}",
        server.log()
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the periodic check could have done it"
    );
    assert_eq!(ref_names(&store), ["new:1"]);
}

#[test]
fn pull_prunes_after_a_successful_pull_when_configured() {
    // The source: a store serving one image.
    let source = TestStore::new();
    let layout = source.scratch("layout");
    LayoutBuilder::simple_image(&layout, "app:1").unwrap();
    source.ok(&["import", layout.to_str().unwrap()]);
    let server = Server::start(&source, &[]);

    let (store, config) = aged_store("until = \"7d\"\nafter_pull = true");
    let reference = format!("{}/app:1", server.address);
    let mut command = store.command(&["pull", &reference]);
    command.env("OCI_STORE_CONFIG", &config);
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("pruned 2 refs after the pull (old:1, old:2)"),
        "{stderr}"
    );
    assert_eq!(ref_names(&store), [reference.as_str(), "new:1"]);

    // Without after_pull, a pull prunes nothing.
    let (store, _) = aged_store("until = \"7d\"");
    store.ok(&["pull", &reference]);
    assert_eq!(ref_names(&store).len(), 4);
}
