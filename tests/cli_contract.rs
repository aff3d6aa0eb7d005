//! The command line's contract as scripts use it (issue 22): exit codes per command (0, 1 for a
//! failed operation, 2 for usage, 3 for `check` of an incomplete ref), one JSON document on
//! failure too, one resolver of stored images (ref, full digest, unique prefix), a missing
//! store read as an empty one and never created, and references spelled as docker spells them.

mod cli_support;
mod registry_support;
mod serve_support;

use std::process::Output;

use cli_support::{sha256, TestStore};
use oci_store::stores::oci::layout_builder::LayoutBuilder;
use serde_json::Value;

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

fn with_image(name: &str) -> (TestStore, String) {
    let store = TestStore::new();
    let layout = store.scratch("layout");
    let image = LayoutBuilder::simple_image(&layout, name).unwrap();
    store.ok(&["import", layout.to_str().unwrap()]);
    (store, image.digest().to_string())
}

/// One row of the table: arguments, the exit status, and with a failure the `error.kind` of
/// the `--json` document.
struct Case {
    args: Vec<String>,
    code: i32,
    kind: Option<&'static str>,
}

fn case(args: &[&str], code: i32, kind: Option<&'static str>) -> Case {
    Case {
        args: args.iter().map(|a| a.to_string()).collect(),
        code,
        kind,
    }
}

const USAGE: Option<&str> = Some("usage");
const NOT_FOUND: Option<&str> = Some("not_found");
const FAILED: Option<&str> = Some("failed");

#[test]
fn every_command_exits_as_documented_and_fails_in_json_with_an_error_document() {
    let (store, manifest) = with_image("app:1");
    let blob = store.put(b"a blob of the table");
    let layout = store.scratch("layout");
    let layout = layout.to_str().unwrap();
    let out = store.scratch("out");
    let out = out.to_str().unwrap();
    let missing_config = store.scratch("missing.toml");
    let missing_config = missing_config.to_str().unwrap();
    let unknown = format!("sha256:{}", "0".repeat(64));
    let cases = vec![
        case(&[], 2, USAGE),
        case(&["import", "/nonexistent-layout"], 1, FAILED),
        case(&["import", "--dref", "a b", layout], 2, USAGE),
        case(&["export", "--sref", "nope", out], 1, NOT_FOUND),
        case(&["export", "--sref", "sha256:zzzz", out], 2, USAGE),
        case(
            &["export", "--sref", "app:1", "--dref", "a b", out],
            2,
            USAGE,
        ),
        case(&["list"], 0, None),
        case(&["list", "--bogus"], 2, USAGE),
        case(&["tag", "app:1", "a b"], 2, USAGE),
        case(&["tag", "nope", "other"], 1, NOT_FOUND),
        case(&["rm", "nope"], 1, NOT_FOUND),
        case(&["rm"], 2, USAGE),
        case(&["cat", "840"], 2, USAGE),
        case(&["cat", "nope"], 1, NOT_FOUND),
        case(&["inspect", "sha256:zzzz"], 2, USAGE),
        case(&["inspect", &unknown], 1, NOT_FOUND),
        case(&["du", "--bogus"], 2, USAGE),
        case(&["du"], 0, None),
        case(&["check", "app:1"], 0, None),
        case(&["check", "nope"], 1, NOT_FOUND),
        case(&["check", "sha256:zz"], 2, USAGE),
        case(&["unpack", "app:1", out, "--platform", "arm64"], 2, USAGE),
        case(&["unpack", "nope", out], 1, NOT_FOUND),
        case(&["referrers", "zz"], 2, USAGE),
        case(&["referrers", &manifest], 0, None),
        case(&["lease", "create", "zz"], 2, USAGE),
        case(&["lease", "ls"], 0, None),
        case(&["lease", "rm", "nope"], 1, NOT_FOUND),
        case(&["gc", "--lock-wait", "soon"], 2, USAGE),
        case(&["prune", "--keep-last", "many"], 2, USAGE),
        case(&["pin", "nope"], 1, NOT_FOUND),
        case(&["unpin"], 2, USAGE),
        case(&["blob", "put", "/nonexistent-file"], 1, FAILED),
        case(&["blob", "get", "840"], 2, USAGE),
        case(&["blob", "get", &unknown], 1, NOT_FOUND),
        case(&["blob", "info", "sha256:zzzz"], 2, USAGE),
        case(&["blob", "ls", "--bogus"], 2, USAGE),
        case(&["blob", "resolve", "840"], 2, USAGE),
        case(&["blob", "rm", "nope"], 2, USAGE),
        case(&["data", "set", "k", "v"], 2, USAGE),
        case(&["data", "get", "--type", "t", "nope"], 1, NOT_FOUND),
        case(&["data", "ls", "--type", "t"], 0, None),
        case(&["data", "rm", "--type", "t", "nope"], 1, NOT_FOUND),
        case(&["extra", "set", "zz", "t", "v"], 2, USAGE),
        case(&["extra", "get", &blob, "nope"], 1, NOT_FOUND),
        case(&["extra", "rm", &blob, "nope"], 1, NOT_FOUND),
        case(&["fsck", "--bogus"], 2, USAGE),
        case(&["stats"], 0, None),
        case(&["backend", "info"], 0, None),
        case(&["backend", "convert"], 2, USAGE),
        case(&["backend", "convert", "--to", "nosuch"], 2, USAGE),
        case(&["backend", "convert", "--to-blobs", "nosuch"], 2, USAGE),
        case(&["pull", "http://127.0.0.1:1/app:1"], 2, USAGE),
        case(
            &["pull", "127.0.0.1:1/app:1", "--platform", "arm64"],
            2,
            USAGE,
        ),
        case(&["pull", "--retries", "0", "127.0.0.1:1/app:1"], 1, FAILED),
        case(&["serve", "--listen", "nowhere"], 2, USAGE),
        case(&["push", "app:1", "https://127.0.0.1:1/app:1"], 2, USAGE),
        case(&["push", "nope", "127.0.0.1:1/app:1"], 1, NOT_FOUND),
        case(&["login", "127.0.0.1:1"], 2, USAGE),
        case(&["logout"], 2, USAGE),
        case(&["appc", "import", "/nonexistent.aci"], 1, FAILED),
        case(&["appc", "get", "example.com/nope"], 1, NOT_FOUND),
        case(&["appc", "ls"], 0, None),
        case(&["appc", "info", "example.com/nope"], 1, NOT_FOUND),
        case(&["appc", "remote", "set", "https://x/a.aci"], 2, USAGE),
        case(&["appc", "remote", "get", "https://x/a.aci"], 1, NOT_FOUND),
        case(&["appc", "remote", "ls"], 0, None),
        case(&["appc", "remote", "rm", "https://x/a.aci"], 1, NOT_FOUND),
        case(&["appc", "remote", "decide", "https://x/a.aci"], 0, None),
        case(
            &["appc", "remote", "not-modified", "https://x/a.aci"],
            1,
            NOT_FOUND,
        ),
        case(&["appc", "check", "example.com/nope"], 1, NOT_FOUND),
        case(&["appc", "render", "example.com/nope"], 1, NOT_FOUND),
        case(&["appc", "verify-tree", "example.com/nope"], 1, NOT_FOUND),
        case(&["appc", "export", "example.com/nope", out], 1, NOT_FOUND),
        case(&["appc", "rm", "example.com/nope"], 1, NOT_FOUND),
        case(&["appc", "gc", "--grace-period", "a while"], 2, USAGE),
        case(&["config", "show"], 0, None),
        case(&["--config", missing_config, "list"], 2, USAGE),
        case(&["--backend", "postgres", "list"], 2, USAGE),
        case(&["completions", "tcsh"], 2, USAGE),
        case(&["man"], 2, USAGE),
    ];

    // Every command of the tree has a row (a group counts through its commands).
    let tried: Vec<String> = cases
        .iter()
        .map(|case| {
            case.args
                .iter()
                .filter(|a| !a.starts_with('-'))
                .cloned()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    for path in oci_store::cli::reference::command_paths() {
        assert!(
            tried.iter().any(|args| args == &path
                || args.starts_with(&format!("{path} "))
                || path.is_empty()),
            "no row of the table runs `oci-store {path}`"
        );
    }

    let mut wrong = Vec::new();
    for case in &cases {
        let args: Vec<&str> = case.args.iter().map(String::as_str).collect();
        let output = store.run(&args, b"");
        if output.status.code() != Some(case.code) {
            wrong.push(format!(
                "{args:?}: exit {:?}, documented {}; stderr: {}",
                output.status.code(),
                case.code,
                stderr_of(&output).trim()
            ));
            continue;
        }
        let Some(kind) = case.kind else { continue };
        let mut with_json = vec!["--json"];
        with_json.extend_from_slice(&args);
        let output = store.run(&with_json, b"");
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        if output.status.code() != Some(case.code) {
            wrong.push(format!(
                "{with_json:?}: exit {:?} with --json, {} without",
                output.status.code(),
                case.code
            ));
            continue;
        }
        let document: Value = match serde_json::from_str(&stdout) {
            Ok(document) => document,
            Err(e) => {
                wrong.push(format!(
                    "{with_json:?}: stdout is not one JSON document ({e}): {stdout:?}"
                ));
                continue;
            }
        };
        let error = &document["error"];
        let fields: Vec<&str> = error
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        if fields != ["hint", "kind", "message"]
            || error["kind"] != kind
            || error["message"].as_str().is_none_or(|m| m.is_empty())
            || !(error["hint"].is_null() || error["hint"].is_string())
        {
            wrong.push(format!(
                "{with_json:?}: error document {document}, kind should be {kind}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn check_of_an_incomplete_ref_exits_3_distinct_from_a_failure() {
    let (store, _) = with_image("app:1");
    let manifest_json = store.json(&["inspect", "app:1"]);
    let layer = manifest_json["target"]["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    // A layer lost from the disk, and its record dropped by the repair: the ref stays,
    // incomplete.
    std::fs::remove_file(store.blob_file(&layer)).unwrap();
    store.run(&["fsck", "--repair"], b"");
    let output = store.run(&["check", "app:1"], b"");
    assert_eq!(output.status.code(), Some(3), "{}", stderr_of(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("INCOMPLETE"));
    let output = store.run(&["--json", "check", "app:1"], b"");
    assert_eq!(output.status.code(), Some(3));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["missing"][0]["digest"], layer.as_str());
    let help = store.ok(&["check", "--help"]);
    assert!(help.contains("3 when blobs are missing"), "{help}");
}

#[test]
fn a_stored_image_is_named_by_ref_full_digest_or_unique_prefix_by_every_command() {
    let (store, manifest) = with_image("app:1");
    let hex = manifest.trim_start_matches("sha256:");
    for (n, spelling) in [
        manifest.clone(),
        format!("sha256-{hex}"),
        hex[..8].to_string(),
        format!("sha256:{}", &hex[..8]),
    ]
    .into_iter()
    .enumerate()
    {
        let inspected = store.json(&["inspect", &spelling]);
        assert_eq!(inspected["descriptor"]["digest"], manifest.as_str());
        let cat = store.ok(&["cat", &spelling]);
        assert!(cat.contains("schemaVersion"), "{cat}");
        let checked = store.json(&["check", &spelling]);
        assert_eq!(checked["digest"], manifest.as_str(), "{spelling}");
        let dir = store.scratch(&format!("unpacked-{n}"));
        store.ok(&["unpack", &spelling, dir.to_str().unwrap()]);
        assert!(dir.join("app/hello.txt").exists());
        let out = store.scratch(&format!("exported-{n}"));
        let exported = store.json(&[
            "export",
            "--sref",
            &spelling,
            "--dref",
            "copy",
            out.to_str().unwrap(),
        ]);
        assert_eq!(exported["digest"], manifest.as_str());
        store.ok(&["tag", &spelling, &format!("tagged-{n}")]);
    }
    // A digest exported without --dref is named by the digest in the layout.
    let out = store.scratch("by-digest");
    let exported = store.json(&["export", "--sref", &manifest, out.to_str().unwrap()]);
    assert_eq!(exported["name"], manifest.as_str());
    // A layer is a blob, not an image: cat and inspect show it, check refuses it by name.
    let layer = store.json(&["inspect", "app:1"])["target"]["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    store.ok(&["inspect", &layer]);
    let stderr = store.fails(&["check", &layer]);
    assert!(
        stderr.contains("not an image manifest or index"),
        "{stderr}"
    );
}

#[test]
fn push_takes_a_digest_of_a_stored_image() {
    let (store, manifest) = with_image("app:1");
    let registry_store = TestStore::new();
    let server = serve_support::Server::start(&registry_store, &["--push"]);
    let destination = format!("{}/demo/app:pushed", server.address);
    store.ok(&["push", &manifest, &destination]);
    store.ok(&["push", &manifest[..15], &destination]);
    let pulled = TestStore::new();
    let report = pulled.json(&["pull", &destination]);
    assert_eq!(report["digest"], manifest.as_str());
}

/// Two blobs whose sha256 digests share their first four hex characters.
fn two_blobs_sharing_a_prefix() -> (Vec<u8>, Vec<u8>) {
    let mut seen = std::collections::HashMap::new();
    for n in 0u32.. {
        let bytes = format!("blob number {n}").into_bytes();
        let prefix = sha256(&bytes)[7..11].to_string();
        if let Some(other) = seen.insert(prefix, bytes.clone()) {
            return (other, bytes);
        }
    }
    unreachable!()
}

#[test]
fn one_set_of_resolver_errors_everywhere() {
    let (store, _) = with_image("app:1");
    let (a, b) = two_blobs_sharing_a_prefix();
    let digest_a = store.put(&a);
    let digest_b = store.put(&b);
    let shared = &digest_a[7..11];
    for command in [
        &["inspect"][..],
        &["cat"],
        &["check"],
        &["tag"],
        &["export", "--sref"],
        &["blob", "info"],
    ] {
        let with = |arg: &str| {
            let mut args = command.to_vec();
            args.push(arg);
            match command[0] {
                "tag" => args.push("new-name"),
                "export" => args.push("/nonexistent/out"),
                _ => {}
            }
            args.into_iter().map(str::to_string).collect::<Vec<_>>()
        };
        let run = |arg: &str| {
            let args = with(arg);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            store.run(&args, b"")
        };
        // Too short.
        let output = run("840");
        assert_eq!(
            output.status.code(),
            Some(2),
            "{command:?}: {}",
            stderr_of(&output)
        );
        assert!(
            stderr_of(&output).contains("too short"),
            "{command:?}: {}",
            stderr_of(&output)
        );
        // Ambiguous: the candidates listed.
        let output = run(shared);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{command:?}: {}",
            stderr_of(&output)
        );
        let stderr = stderr_of(&output);
        assert!(
            stderr.contains("ambiguous")
                && stderr.contains(&digest_a)
                && stderr.contains(&digest_b),
            "{command:?}: {stderr}"
        );
        // Invalid.
        let output = run("sha256:zzzz");
        assert_eq!(
            output.status.code(),
            Some(2),
            "{command:?}: {}",
            stderr_of(&output)
        );
        assert!(
            stderr_of(&output).contains("invalid digest"),
            "{command:?}: {}",
            stderr_of(&output)
        );
    }
    // Unknown, with a suggestion, the same for every command that takes an image.
    for args in [
        &["inspect", "app:2"][..],
        &["cat", "app:2"],
        &["check", "app:2"],
        &["unpack", "app:2", "/nonexistent/out"],
        &["export", "--sref", "app:2", "/nonexistent/out"],
        &["tag", "app:2", "other"],
    ] {
        let stderr = store.fails(args);
        assert!(
            stderr.contains("no ref named \"app:2\""),
            "{args:?}: {stderr}"
        );
        assert!(
            stderr.contains("did you mean `app:1`?"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn read_only_commands_on_a_missing_store_read_it_as_empty_and_never_create_it() {
    let store = TestStore::new();
    let listed = store.json(&["ls"]);
    assert_eq!(listed, serde_json::json!([]));
    for (args, code) in [
        (&["list"][..], 0),
        (&["blob", "ls"], 0),
        (&["du"], 0),
        (&["fsck"], 0),
        (&["gc"], 0),
        (&["gc", "--dry-run"], 0),
        (&["stats"], 0),
        (&["backend", "info"], 0),
        (&["lease", "ls"], 0),
        (&["appc", "ls"], 0),
        (&["appc", "gc"], 0),
        (&["appc", "remote", "ls"], 0),
        (&["data", "ls", "--type", "t"], 0),
        (&["prune", "--keep-last", "1"], 0),
        (&["inspect", "nginx"], 1),
        (&["cat", "nginx"], 1),
        (&["check", "nginx"], 1),
        (&["export", "--sref", "nginx", "out"], 1),
        (&["rm", "nginx"], 1),
        (&["tag", "nginx", "other"], 1),
    ] {
        let output = store.run(args, b"");
        assert_eq!(
            output.status.code(),
            Some(code),
            "{args:?}: {}",
            stderr_of(&output)
        );
        assert!(!store.path().exists(), "{args:?} created the store");
    }
    assert_eq!(store.json(&["blob", "ls"]), serde_json::json!([]));
    assert_eq!(store.json(&["stats"])["blobs"], 0);
    let stderr = store.fails(&["inspect", "nginx"]);
    assert!(stderr.contains("no ref named \"nginx\""), "{stderr}");
    assert!(stderr.contains("the store has no refs"), "{stderr}");
    assert!(!store.path().exists());
}

#[test]
fn a_failed_command_that_would_create_a_store_leaves_nothing_behind() {
    let store = TestStore::new();
    // Nothing listens on port 1: the pull fails after the store was opened.
    let output = store.run(&["pull", "--retries", "0", "127.0.0.1:1/app:1"], b"");
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    assert!(!store.path().exists(), "a failed pull left a store");
    store.fails(&["import", store.scratch("no-layout").to_str().unwrap()]);
    assert!(!store.path().exists(), "a failed import left a store");
    // In a directory that was there: only what the command made goes.
    std::fs::create_dir_all(store.path()).unwrap();
    std::fs::write(store.path().join("notes.txt"), b"mine").unwrap();
    store.fails(&["import", store.scratch("no-layout").to_str().unwrap()]);
    let left: Vec<_> = std::fs::read_dir(store.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("notes.txt")]);
    // A store with something in it stays, failure or not.
    std::fs::remove_dir_all(store.path()).unwrap();
    store.put(b"kept");
    store.fails(&["import", store.scratch("no-layout").to_str().unwrap()]);
    assert_eq!(store.listed_digests(), vec![sha256(b"kept")]);
}

#[test]
fn references_are_spelled_as_docker_spells_them() {
    let (source, manifest) = with_image("demo/main:small");
    let server = serve_support::Server::start(&source, &[]);
    let store = TestStore::new();
    // name:tag@digest: the digest is pulled, the tag names the ref.
    let reference = format!("{}/demo/main:small@{manifest}", server.address);
    let report = store.json(&["pull", &reference]);
    assert_eq!(report["digest"], manifest.as_str());
    assert_eq!(
        report["name"],
        format!("{}/demo/main:small", server.address)
    );
    // A URL scheme is refused as such.
    let output = store.run(
        &[
            "pull",
            &format!("http://{}/demo/main:small", server.address),
        ],
        b"",
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("no URL scheme"), "{stderr}");
    assert!(!stderr.contains("lowercase"), "{stderr}");
    // A short name takes the default registry, docker.io unless configured.
    let shown = store.json(&["config", "show"]);
    let setting = shown["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "default_registry")
        .cloned()
        .expect("config show lists default_registry");
    assert_eq!(setting["value"], "docker.io");
    let config = store.scratch("config.toml");
    std::fs::write(
        &config,
        format!("default_registry = \"{}\"\n", server.address),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let report = store.json(&["--config", config, "pull", "demo/main:small"]);
    assert_eq!(
        report["name"],
        format!("{}/demo/main:small", server.address)
    );
    let output = store.run(&["--config", config, "config", "show"], b"");
    assert!(String::from_utf8_lossy(&output.stdout).contains(&server.address));
    let output = store
        .command(&["pull", "demo/main:small"])
        .env("OCI_STORE_DEFAULT_REGISTRY", "not a host")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    assert!(stderr_of(&output).contains("OCI_STORE_DEFAULT_REGISTRY"));
}

#[test]
fn unpack_of_a_platform_the_image_is_not_for_is_refused() {
    let (store, _) = with_image("app:1");
    let dir = store.scratch("rootfs");
    let stderr = store.fails(&[
        "unpack",
        "--platform",
        "linux/arm64",
        "app:1",
        dir.to_str().unwrap(),
    ]);
    assert!(stderr.contains("linux/amd64 only"), "{stderr}");
    assert!(!dir.exists());
    store.ok(&[
        "unpack",
        "--platform",
        "linux/amd64",
        "app:1",
        dir.to_str().unwrap(),
    ]);
}

#[test]
fn an_unknown_backend_flag_is_a_usage_error_without_a_convert_hint() {
    let (store, _) = with_image("app:1");
    let output = store.run(&["--backend", "postgres", "list"], b"");
    assert_eq!(output.status.code(), Some(2));
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("postgres") && stderr.contains("--backend"),
        "{stderr}"
    );
    assert!(!stderr.contains("backend convert"), "{stderr}");
}

/// A pull killed mid-download leaves what it committed held by its operation, and what it
/// staged as dead writes: `du` and `gc --dry-run` count both as reclaimable, and `gc` reports
/// them as freed, the operation's per holder.
#[test]
fn gc_and_du_count_what_a_killed_pull_left_and_gc_reports_it() {
    use registry_support::proxy::{Action, Proxy};
    let source = TestStore::new();
    let layout = source.scratch("layout");
    let mut builder = LayoutBuilder::new(&layout).unwrap();
    // Stored raw (not gzip) so the sizes are exact: the first arrives at once, the second is
    // throttled so the pull is still downloading it when it is killed.
    let fast = cli_support::pseudo_random_bytes(3 << 20, 1);
    let slow = cli_support::pseudo_random_bytes(8 << 20, 2);
    let image = builder
        .image("linux", "amd64", &[fast.clone(), slow.clone()])
        .unwrap();
    builder.add_ref(Some("big:1"), &image);
    builder.finish().unwrap();
    source.ok(&["import", layout.to_str().unwrap()]);
    let server = serve_support::Server::start(&source, &[]);
    let (fast_digest, slow_digest) = (sha256(&fast), sha256(&slow));
    let throttled = slow_digest.clone();
    let proxy = Proxy::start(
        server.address.clone(),
        Box::new(move |request, _| {
            if request.path.ends_with(&throttled) {
                Action::Throttle(64 << 10, std::time::Duration::from_millis(100))
            } else {
                Action::Forward
            }
        }),
    );
    let store = TestStore::new();
    let mut pull = store
        .command(&["pull", "--jobs", "1", &format!("{}/big:1", proxy.address())])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while proxy.blob_gets(&slow_digest) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the pull never got going"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(1000));
    pull.kill().unwrap();
    pull.wait().unwrap();

    let du = store.json(&["du"]);
    let reclaimable = du["reclaimable"]["bytes"].as_u64().unwrap();
    assert!(
        reclaimable >= fast.len() as u64,
        "du says {reclaimable} bytes reclaimable; the killed pull left {} held",
        fast.len()
    );
    let dry = store.json(&["gc", "--dry-run"]);
    assert_eq!(dry["freed_bytes"].as_u64().unwrap(), reclaimable, "{dry}");
    let stale = &dry["stale_operations"][0];
    assert!(
        stale["holder"].as_str().unwrap().starts_with("oci-op."),
        "{dry}"
    );
    // The operation held what it committed (the config); its staged layers are dead writes.
    assert!(stale["freed_bytes"].as_u64().unwrap() > 0, "{dry}");
    assert!(
        dry["dead_ingest_bytes"].as_u64().unwrap() >= fast.len() as u64,
        "{dry}"
    );
    let text = store.ok(&["gc", "--dry-run"]);
    assert!(text.contains("would finish oci-op."), "{text}");

    let gc = store.json(&["gc"]);
    assert_eq!(gc["stale_operations"][0]["holder"], stale["holder"], "{gc}");
    let freed = gc["freed_bytes"].as_u64().unwrap();
    assert!(
        freed >= reclaimable,
        "gc reports {freed} freed, its dry run said {reclaimable}"
    );
    assert!(!store.blob_file(&fast_digest).exists());
    assert_eq!(store.json(&["du"])["reclaimable"]["bytes"], 0);
    assert_eq!(store.json(&["gc", "--dry-run"])["freed_bytes"], 0);
}

#[test]
fn every_argument_of_every_command_is_described() {
    let mut root = oci_store::cli::reference::command();
    root.build();
    let mut undocumented = Vec::new();
    fn walk(command: &clap::Command, path: &str, undocumented: &mut Vec<String>) {
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            if matches!(id, "help" | "version") {
                continue;
            }
            let help = arg
                .get_long_help()
                .or(arg.get_help())
                .map(|h| h.to_string());
            if help.is_none_or(|h| h.trim().is_empty()) {
                undocumented.push(format!("`oci-store {path}`: {id}"));
            }
        }
        for sub in command.get_subcommands() {
            walk(
                sub,
                format!("{path} {}", sub.get_name()).trim(),
                undocumented,
            );
        }
    }
    walk(&root, "", &mut undocumented);
    assert!(
        undocumented.is_empty(),
        "arguments without a description:\n{}",
        undocumented.join("\n")
    );
}

/// A plain-tar ACI of one image named `name`.
fn write_aci(path: &std::path::Path, name: &str) {
    let manifest = serde_json::json!({
        "acKind": "ImageManifest", "acVersion": "0.8.11", "name": name,
        "labels": [{"name": "os", "value": "linux"}],
    });
    let mut builder = tar::Builder::new(Vec::new());
    for (entry, kind, bytes) in [
        (
            "manifest",
            tar::EntryType::Regular,
            serde_json::to_vec(&manifest).unwrap(),
        ),
        ("rootfs", tar::EntryType::Directory, Vec::new()),
        (
            "rootfs/hello",
            tar::EntryType::Regular,
            name.as_bytes().to_vec(),
        ),
    ] {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(kind);
        header.set_size(bytes.len() as u64);
        header.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
        header.set_mtime(1_500_000_000);
        header.set_uid(0);
        header.set_gid(0);
        builder
            .append_data(&mut header, entry, bytes.as_slice())
            .unwrap();
    }
    std::fs::write(path, builder.into_inner().unwrap()).unwrap();
}

#[test]
fn appc_ids_resolve_like_oci_digests_and_output_is_in_words() {
    let store = TestStore::new();
    let aci = store.scratch("app.aci");
    write_aci(&aci, "example.com/app");
    let imported = store.ok(&["appc", "import", aci.to_str().unwrap()]);
    assert!(imported.contains("(uncompressed, "), "{imported}");
    assert!(
        !imported.contains("None") && !imported.contains("Gzip"),
        "{imported}"
    );
    let id = store.json(&["appc", "info", "example.com/app"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Bare hex, as `inspect 840db1` takes a digest prefix.
    let bare = &id["sha512-".len().."sha512-".len() + 6];
    assert_eq!(store.json(&["appc", "info", bare])["id"], id.as_str());
    // Did you mean, for a near miss of a name.
    let stderr = store.fails(&["appc", "get", "example.com/ap"]);
    assert!(
        stderr.contains("did you mean `example.com/app`?"),
        "{stderr}"
    );
    let rendered = store.ok(&["appc", "render", "example.com/app"]);
    assert!(rendered.contains("(1 image)"), "{rendered}");
    let fsck = store.ok(&["fsck"]);
    assert!(fsck.contains("no problems"), "{fsck}");
    let lost = store.put(b"lost");
    std::fs::remove_file(store.blob_file(&lost)).unwrap();
    let output = store.run(&["fsck"], b"");
    let fsck = String::from_utf8_lossy(&output.stdout);
    assert!(fsck.contains("1 problem, 0 repaired"), "{fsck}");
}

#[test]
fn smaller_items_errors_name_what_the_user_gave_and_verbosity_levels_differ() {
    let (store, _) = with_image("app:1");
    // Exporting a layout onto a file: what to do, not "File exists (os error 17)".
    let file = store.scratch("a-file");
    std::fs::write(&file, b"not a layout").unwrap();
    let output = store.run(&["export", "--sref", "app:1", file.to_str().unwrap()], b"");
    assert_eq!(output.status.code(), Some(2));
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("--archive") && !stderr.contains("os error"),
        "{stderr}"
    );
    // Unpacking where the parent is missing: the target named, no staging path.
    let target = store.scratch("no-parent/rootfs");
    let stderr = store.fails(&["unpack", "app:1", target.to_str().unwrap()]);
    assert!(stderr.contains(target.to_str().unwrap()), "{stderr}");
    assert!(
        !stderr.contains(".render-") && !stderr.contains("os error"),
        "{stderr}"
    );
    // An archive named through a symbolic link is imported.
    let archive = store.scratch("app.tar");
    store.ok(&[
        "export",
        "--archive",
        "--sref",
        "app:1",
        archive.to_str().unwrap(),
    ]);
    let link = store.scratch("link.tar");
    std::os::unix::fs::symlink(&archive, &link).unwrap();
    let other = TestStore::new();
    other.ok(&["import", link.to_str().unwrap()]);
    assert!(other.ok(&["list"]).contains("app:1"));
    // -vv says more than -v.
    let once = stderr_of(&store.run(&["-v", "list"], b""));
    let twice = stderr_of(&store.run(&["-vv", "list"], b""));
    assert!(
        twice.len() > once.len() && twice.contains("backends"),
        "-v:\n{once}\n-vv:\n{twice}"
    );
}

#[test]
fn concurrent_first_commands_do_not_say_another_process_has_the_store_alone() {
    for _ in 0..3 {
        let store = TestStore::new();
        let children: Vec<_> = (0..4)
            .map(|n| {
                store
                    .command(&["data", "set", "--type", "t", &format!("k{n}"), "v"])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let output = child.wait_with_output().unwrap();
            assert!(output.status.success(), "{}", stderr_of(&output));
            assert!(
                !stderr_of(&output).contains("alone"),
                "{}",
                stderr_of(&output)
            );
        }
    }
}
