//! docs/CLI.md cannot drift from the tool: its command reference is what the clap
//! definitions generate, every command's `--help` ends in an example, man pages and shell
//! completions are generated from the same definitions, and every JSON schema documented
//! there is checked against what the command prints (exactly the fields listed).
//!
//! `OCI_STORE_UPDATE_DOCS=1 cargo test --test cli_docs` rewrites the generated reference.

mod cli_support;
mod serve_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use cli_support::TestStore;
use oci_store::cli::reference::{command_paths, markdown_reference};
use oci_store::stores::oci::layout_builder::LayoutBuilder;
use serde_json::{json, Value};

const BEGIN: &str = "<!-- BEGIN GENERATED COMMAND REFERENCE -->";
const END: &str = "<!-- END GENERATED COMMAND REFERENCE -->";

fn docs_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/CLI.md")
}

fn docs() -> String {
    std::fs::read_to_string(docs_path()).expect("docs/CLI.md")
}

#[test]
fn the_command_reference_in_docs_is_what_clap_generates() {
    let text = docs();
    let start = text.find(BEGIN).expect("begin marker") + BEGIN.len();
    let end = text.find(END).expect("end marker");
    let generated = format!("\n\n{}", markdown_reference());
    if text[start..end] == generated {
        return;
    }
    if std::env::var("OCI_STORE_UPDATE_DOCS").as_deref() == Ok("1") {
        let updated = format!("{}{generated}{}", &text[..start], &text[end..]);
        std::fs::write(docs_path(), updated).unwrap();
        return;
    }
    let first_difference = text[start..end]
        .lines()
        .zip(generated.lines())
        .find(|(a, b)| a != b)
        .map_or_else(
            || "one is a prefix of the other".to_string(),
            |(a, b)| format!("docs: {a:?}\nclap: {b:?}"),
        );
    panic!(
        "docs/CLI.md's command reference differs from --help; run \
         `OCI_STORE_UPDATE_DOCS=1 cargo test --test cli_docs` to regenerate it.\n{first_difference}"
    );
}

#[test]
fn every_command_s_help_ends_in_an_example() {
    let store = TestStore::new();
    for path in command_paths() {
        let mut args: Vec<&str> = path.split(' ').filter(|w| !w.is_empty()).collect();
        args.push("--help");
        let help = store.ok(&args);
        assert!(
            help.contains("Example:") || help.contains("Examples:"),
            "`oci-store {path} --help` shows no example:\n{help}"
        );
        let usage_line = format!("oci-store {path}").trim().to_string();
        assert!(help.contains(&usage_line), "{help}");
        // The reference documents the same command.
        let heading = format!("### `{usage_line}`");
        assert!(docs().contains(&heading), "docs/CLI.md has no {heading}");
    }
}

#[test]
fn man_pages_are_written_for_every_command() {
    let store = TestStore::new();
    let dir = store.scratch("man");
    store.ok(&["man", dir.to_str().unwrap()]);
    for path in command_paths() {
        let name = if path.is_empty() {
            "oci-store".to_string()
        } else {
            format!("oci-store-{}", path.replace(' ', "-"))
        };
        let page = dir.join(format!("{name}.1"));
        let text =
            std::fs::read_to_string(&page).unwrap_or_else(|e| panic!("{}: {e}", page.display()));
        assert!(
            text.starts_with(".ie") || text.contains(".TH"),
            "{name}: not roff"
        );
        assert!(
            text.contains("Example"),
            "{name}: no example in the man page"
        );
    }
}

#[test]
fn completion_scripts_are_generated_for_bash_zsh_and_fish() {
    let store = TestStore::new();
    let bash = store.ok(&["completions", "bash"]);
    assert!(bash.contains("complete -F"), "{bash}");
    for word in ["import", "inspect", "completions"] {
        assert!(bash.contains(word), "bash completion lacks {word}");
    }
    let script = store.scratch("oci-store.bash");
    std::fs::write(&script, &bash).unwrap();
    let checked = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(store
        .ok(&["completions", "zsh"])
        .starts_with("#compdef oci-store"));
    assert!(store
        .ok(&["completions", "fish"])
        .contains("complete -c oci-store"));
}

/// One documented schema: its fields, and which of them may be absent.
struct Schema {
    fields: BTreeMap<String, bool>,
}

/// Every `#### \`oci-store.X.v1\`` section of docs/CLI.md with its field table.
fn documented_schemas() -> BTreeMap<String, Schema> {
    let mut schemas = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in docs().lines() {
        if let Some(rest) = line.strip_prefix("#### `") {
            let id = rest.trim_end_matches('`').to_string();
            schemas.insert(
                id.clone(),
                Schema {
                    fields: BTreeMap::new(),
                },
            );
            current = Some(id);
        } else if line.starts_with("## ") {
            current = None;
        } else if let (Some(id), Some(rest)) = (&current, line.strip_prefix("| `")) {
            let field = rest.split('`').next().unwrap().to_string();
            let optional = line.split('|').nth(2).unwrap_or("").contains("(optional)");
            schemas.get_mut(id).unwrap().fields.insert(field, optional);
        }
    }
    schemas
}

fn check_document(id: &str, schema: &Schema, document: &Value) {
    let object = document
        .as_object()
        .unwrap_or_else(|| panic!("{id}: not an object: {document}"));
    for key in object.keys() {
        assert!(
            schema.fields.contains_key(key),
            "{id}: field {key:?} is printed but not documented in docs/CLI.md"
        );
    }
    for (field, optional) in &schema.fields {
        assert!(
            *optional || object.contains_key(field),
            "{id}: documented field {field:?} is missing from {document}"
        );
    }
}

/// An ACI (plain tar) of one image.
fn aci(path: &Path) {
    let manifest = json!({
        "acKind": "ImageManifest",
        "acVersion": "0.8.11",
        "name": "example.com/app",
        "labels": [{"name": "version", "value": "1.0"}, {"name": "os", "value": "linux"}],
    });
    let mut builder = tar::Builder::new(Vec::new());
    for (name, kind, bytes) in [
        (
            "manifest",
            tar::EntryType::Regular,
            serde_json::to_vec(&manifest).unwrap(),
        ),
        ("rootfs", tar::EntryType::Directory, Vec::new()),
        ("rootfs/content", tar::EntryType::Regular, b"1".to_vec()),
    ] {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(kind);
        header.set_size(bytes.len() as u64);
        header.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
        header.set_mtime(1_500_000_000);
        header.set_uid(0);
        header.set_gid(0);
        builder
            .append_data(&mut header, name, bytes.as_slice())
            .unwrap();
    }
    std::fs::write(path, builder.into_inner().unwrap()).unwrap();
}

#[test]
fn every_documented_json_schema_matches_what_its_command_prints() {
    let store = TestStore::new();
    let layout = store.scratch("layout");
    let mut builder = LayoutBuilder::new(&layout).unwrap();
    let layer = LayoutBuilder::layer_tar_gz(&[("hello", b"hello")]).unwrap();
    let image = builder.image("linux", "amd64", &[layer]).unwrap();
    let empty = builder
        .blob("application/vnd.oci.empty.v1+json", b"{}")
        .unwrap();
    let referrer = builder
        .json_blob(
            "application/vnd.oci.image.manifest.v1+json",
            &json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "artifactType": "application/spdx+json",
                "config": empty,
                "layers": [empty],
                "subject": image,
                "annotations": {"org.example": "sbom"}
            }),
        )
        .unwrap();
    builder.add_ref(Some("app:1"), &image);
    builder.add_ref(None, &referrer);
    builder.finish().unwrap();
    let manifest = image.digest().to_string();

    let mut printed: BTreeMap<&str, Value> = BTreeMap::new();
    printed.insert(
        "oci-store.import.v1",
        store.json(&["import", "--sref", "app:1", layout.to_str().unwrap()]),
    );
    let blob = store.put(b"a blob");
    store.ok(&["data", "set", "--type", "tag", "pin", "v", "--blob", &blob]);
    store.ok(&["extra", "set", &blob, "note", "text"]);
    store.ok(&["lease", "create", &blob]);
    let aci_path = store.scratch("app.aci");
    aci(&aci_path);
    store.ok(&["appc", "import", aci_path.to_str().unwrap()]);
    store.ok(&[
        "appc",
        "remote",
        "set",
        "https://example.com/app.aci",
        "example.com/app",
    ]);
    let out = store.scratch("exported");

    let commands: &[(&str, Vec<&str>)] = &[
        ("oci-store.list.v1", vec!["list"]),
        ("oci-store.inspect.v1", vec!["inspect", "app:1"]),
        ("oci-store.du.v1", vec!["du"]),
        ("oci-store.check.v1", vec!["check", "app:1"]),
        ("oci-store.referrers.v1", vec!["referrers", &manifest]),
        (
            "oci-store.export.v1",
            vec!["export", "--sref", "app:1", out.to_str().unwrap()],
        ),
        ("oci-store.fsck.v1", vec!["fsck"]),
        ("oci-store.stats.v1", vec!["stats"]),
        ("oci-store.blob-ls.v1", vec!["blob", "ls"]),
        ("oci-store.blob-info.v1", vec!["blob", "info", &blob]),
        (
            "oci-store.blob-resolve.v1",
            vec!["blob", "resolve", &blob[..20]],
        ),
        ("oci-store.data-ls.v1", vec!["data", "ls", "--type", "tag"]),
        (
            "oci-store.extra-get.v1",
            vec!["extra", "get", &blob, "note"],
        ),
        ("oci-store.lease-ls.v1", vec!["lease", "ls"]),
        ("oci-store.backend-info.v1", vec!["backend", "info"]),
        ("oci-store.config.v1", vec!["config", "show"]),
        ("oci-store.appc-ls.v1", vec!["appc", "ls"]),
        (
            "oci-store.appc-check.v1",
            vec!["appc", "check", "example.com/app"],
        ),
        ("oci-store.appc-remote-ls.v1", vec!["appc", "remote", "ls"]),
        (
            "oci-store.appc-remote-decide.v1",
            vec!["appc", "remote", "decide", "https://example.com/app.aci"],
        ),
        (
            "oci-store.prune.v1",
            vec!["prune", "--dry-run", "--until", "0s"],
        ),
        ("oci-store.pin.v1", vec!["pin", "app:1"]),
        // Last: it changes the store.
        ("oci-store.gc.v1", vec!["gc"]),
    ];
    for (id, args) in commands {
        printed.insert(id, store.json(args));
    }
    // The commands that change refs or write elsewhere, and a failure.
    printed.insert("oci-store.tag.v1", store.json(&["tag", "app:1", "app:2"]));
    printed.insert("oci-store.rm.v1", store.json(&["rm", "app:2"]));
    let rootfs = store.scratch("rootfs");
    printed.insert(
        "oci-store.unpack.v1",
        store.json(&["unpack", "app:1", rootfs.to_str().unwrap()]),
    );
    let registry = TestStore::new();
    let server = serve_support::Server::start(&registry, &["--push"]);
    let remote = format!("{}/demo/app:1", server.address);
    printed.insert("oci-store.push.v1", store.json(&["push", "app:1", &remote]));
    let puller = TestStore::new();
    printed.insert("oci-store.pull.v1", puller.json(&["pull", &remote]));
    let failed = store.run(&["--json", "inspect", "no-such-ref"], b"");
    assert_eq!(failed.status.code(), Some(1));
    printed.insert(
        "oci-store.error.v1",
        serde_json::from_slice(&failed.stdout).expect("an error document"),
    );

    let schemas = documented_schemas();
    assert!(schemas.len() >= 20, "too few schemas found in docs/CLI.md");
    for (id, schema) in &schemas {
        let document = printed
            .get(id.as_str())
            .unwrap_or_else(|| panic!("{id} is documented but this test runs no command for it"));
        match document {
            Value::Array(items) => {
                assert!(
                    !items.is_empty(),
                    "{id}: the test's store gave an empty list"
                );
                for item in items {
                    check_document(id, schema, item);
                }
            }
            other => check_document(id, schema, other),
        }
    }
    for id in printed.keys() {
        assert!(
            schemas.contains_key(*id),
            "{id} is printed but not documented"
        );
    }
    // The same documents through the other commands the docs name for them.
    check_document(
        "oci-store.data-ls.v1",
        &schemas["oci-store.data-ls.v1"],
        &store.json(&["data", "get", "--type", "tag", "pin"]),
    );
    check_document(
        "oci-store.appc-ls.v1",
        &schemas["oci-store.appc-ls.v1"],
        &store.json(&["appc", "info", "example.com/app"]),
    );
}
