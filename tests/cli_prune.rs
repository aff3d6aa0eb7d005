//! `oci-store prune`, `pin` and `unpin` as a script uses them: the dry-run plan (text and
//! `--json`) names each victim, why, and the bytes it frees, and changes nothing; the real run
//! does what the plan said; pins hold; the config file's `[prune]` is the policy when no flag
//! is given; a missing or bad policy is a usage error (status 2).

mod cli_support;

use std::time::{SystemTime, UNIX_EPOCH};

use cli_support::{pseudo_random_bytes, TestStore};
use oci_store::stores::oci::layout_builder::LayoutBuilder;

const DAY_MS: i64 = 24 * 3600 * 1000;

/// A store with `app:1` (used 40 days ago), `app:2` (10 days), `app:3` (2 days) and
/// `web:1` (20 days): each image has its own 100 kB layer and a shared base layer.
fn store_with_aged_refs() -> TestStore {
    let store = TestStore::new();
    let layout = store.scratch("layout");
    let mut builder = LayoutBuilder::new(&layout).unwrap();
    let base = LayoutBuilder::layer_tar_gz(&[("etc/base", b"shared base")]).unwrap();
    let refs = [("app:1", 40), ("app:2", 10), ("app:3", 2), ("web:1", 20)];
    for (seed, (name, _)) in refs.iter().enumerate() {
        let own = pseudo_random_bytes(100_000, seed as u64 + 1);
        let image = builder
            .image("linux", "amd64", &[base.clone(), own])
            .unwrap();
        builder.add_ref(Some(name), &image);
    }
    builder.finish().unwrap();
    store.ok(&["import", "--all", layout.to_str().unwrap()]);
    let now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    for (name, days) in refs {
        let at = (now - days * DAY_MS).to_string();
        store.ok(&[
            "data",
            "set",
            "--type",
            "store.last-used",
            &format!("oci/{name}"),
            &at,
        ]);
    }
    store
}

fn ref_names(store: &TestStore) -> Vec<String> {
    let list = store.json(&["list"]);
    list.as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_dry_run_plan_names_each_victim_why_and_what_it_frees() {
    let store = store_with_aged_refs();
    let text = store.ok(&["prune", "--dry-run", "--until", "7d"]);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("would remove app:1: last used 40d ago, frees ")
            && lines[0].contains("shared stays")
            && lines[0].ends_with("unused for 40d (--until 7d)"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("would remove web:1: last used 20d ago"),
        "{text}"
    );
    assert!(
        lines[2].starts_with("would remove app:2: last used 10d ago"),
        "{text}"
    );
    assert!(text.contains("kept: 1 used within --until"), "{text}");
    assert!(text.contains("would remove 3 refs, freeing "), "{text}");
    assert_eq!(ref_names(&store).len(), 4, "a dry run removes nothing");

    let plan = store.json(&["prune", "--dry-run", "--until", "7d"]);
    assert_eq!(plan["dry_run"], true);
    let victims = plan["plan"]["victims"].as_array().unwrap();
    let names: Vec<&str> = victims
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["app:1", "web:1", "app:2"]);
    for victim in victims {
        // Its own layer and manifest at least; the base layer is shared and stays.
        assert!(
            victim["frees_bytes"].as_u64().unwrap() > 100_000,
            "{victim}"
        );
        assert!(victim["shared_bytes"].as_u64().unwrap() > 0, "{victim}");
        assert_eq!(victim["reasons"][0]["policy"], "until");
        assert!(victim["target"].as_str().unwrap().starts_with("sha256:"));
    }
    assert_eq!(plan["plan"]["protected"]["used_within_until"], 1);
    assert_eq!(
        plan["freed_bytes"].as_u64(),
        plan["plan"]["freed_bytes"].as_u64()
    );

    // The real run removes what the plan named and frees what it said.
    let before = store.json(&["stats"])["bytes"].as_u64().unwrap();
    let done = store.json(&["prune", "--until", "7d"]);
    assert_eq!(
        done["removed"],
        serde_json::json!(["app:1", "web:1", "app:2"])
    );
    let after = store.json(&["stats"])["bytes"].as_u64().unwrap();
    assert_eq!(before - after, done["freed_bytes"].as_u64().unwrap());
    assert_eq!(
        done["freed_bytes"].as_u64(),
        plan["plan"]["freed_bytes"].as_u64()
    );
    assert_eq!(ref_names(&store), ["app:3"]);
    store.ok(&["check", "--verify", "app:3"]);
}

#[test]
fn pins_hold_and_keep_last_counts_per_repository() {
    let store = store_with_aged_refs();
    store.ok(&["pin", "app:1"]);
    let pins = store.json(&["pin", "web:1"]);
    assert_eq!(pins["pinned"], serde_json::json!(["app:1", "web:1"]));
    let done = store.ok(&["prune", "--keep-last", "1"]);
    assert!(done.contains("removing app:2"), "{done}");
    assert!(
        done.contains("kept: 2 pinned, 1 among the most recent of their repository"),
        "{done}"
    );
    assert_eq!(ref_names(&store), ["app:1", "app:3", "web:1"]);

    assert!(store
        .ok(&["unpin", "web:1", "nope:1"])
        .contains("nope:1 was not pinned"));
    let output = store.run(&["pin", "nope:1"], b"");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("nope:1"));
}

#[test]
fn a_size_budget_from_the_config_file_is_the_policy_when_no_flag_is_given() {
    let store = store_with_aged_refs();
    let total = store.json(&["stats"])["bytes"].as_u64().unwrap();
    let config = store.scratch("config.toml");
    // Room for all but about one image: the least recently used goes.
    std::fs::write(
        &config,
        format!(
            "[prune]\nmax_size = {}\nlast_used_interval = \"0s\"\n",
            total - 50_000
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let shown = store.ok(&["--config", config, "config", "show"]);
    assert!(shown.contains("prune.max_size"), "{shown}");
    let done = store.json(&["--config", config, "prune"]);
    assert_eq!(done["removed"], serde_json::json!(["app:1"]));
    assert_eq!(done["plan"]["goal_met"], true);
    assert!(store.json(&["stats"])["bytes"].as_u64().unwrap() <= total - 50_000);
}

#[test]
fn no_policy_or_a_bad_one_is_a_usage_error_that_changes_nothing() {
    let store = store_with_aged_refs();
    for args in [
        vec!["prune"],
        vec!["prune", "--filter", "app:*"],
        vec!["prune", "--max-size", "lots"],
        vec!["prune", "--high-watermark", "80%", "--low-watermark", "90%"],
        vec!["prune", "--until", "soon"],
    ] {
        let output = store.run(&args, b"");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with("oci-store: "), "{args:?}: {stderr}");
    }
    assert_eq!(ref_names(&store).len(), 4);
}
