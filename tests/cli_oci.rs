//! The OCI commands through the built binary, on layouts made by the project's layout builder:
//! what each prints (text and JSON), its exit status, and what it changed in the store.

mod cli_support;

use std::path::Path;

use cli_support::TestStore;
use oci_store::stores::oci::layout_builder::{LayoutBuilder, OCI_LAYER_GZIP};
use oci_store::stores::oci::Descriptor;
use serde_json::json;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const EMPTY_JSON: &str = "application/vnd.oci.empty.v1+json";
const SBOM_TYPE: &str = "application/vnd.example.sbom+json";

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp paths")
}

/// A layout with image `app:1` and, unnamed in `index.json`, an SBOM artifact whose subject is
/// the image. Returns (image, artifact) descriptors.
fn layout_with_referrer(root: &Path) -> (Descriptor, Descriptor) {
    let mut builder = LayoutBuilder::new(root).unwrap();
    let layer = LayoutBuilder::layer_tar_gz(&[("bin/app", b"#!/bin/sh\necho app\n")]).unwrap();
    let image = builder.image("linux", "arm64", &[layer]).unwrap();
    let empty = builder.blob(EMPTY_JSON, b"{}").unwrap();
    let sbom = builder.blob(SBOM_TYPE, br#"{"packages":["app"]}"#).unwrap();
    let artifact = builder
        .json_blob(
            OCI_MANIFEST,
            &json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "artifactType": SBOM_TYPE,
                "config": empty,
                "layers": [sbom],
                "subject": image,
            }),
        )
        .unwrap();
    builder.add_ref(Some("app:1"), &image);
    builder.add_ref(None, &artifact);
    builder.finish().unwrap();
    (image, artifact)
}

fn ref_names(store: &TestStore) -> Vec<String> {
    store
        .json(&["list"])
        .as_array()
        .expect("list prints an array")
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn import_list_tag_and_rm() {
    let store = TestStore::new();
    let layout = store.scratch("layout");
    let manifest = LayoutBuilder::simple_image(&layout, "demo:1").unwrap();
    let digest = manifest.digest().to_string();

    let report = store.json(&["import", path_str(&layout)]);
    assert_eq!(
        report["refs"],
        json!([{ "name": "demo:1", "digest": digest }])
    );
    assert_eq!(report["blobs_written"], 4);
    let again = store.json(&["import", path_str(&layout)]);
    assert_eq!(again["blobs_written"], 0, "nothing is read twice");
    assert_eq!(again["blobs_skipped"], 4);

    let mut listed = store.json(&["list"]);
    // The import was a use of the ref: its time is listed.
    let used = listed[0]
        .as_object_mut()
        .unwrap()
        .remove("last_used_unix_ms")
        .expect("last_used_unix_ms listed");
    assert!(used.as_i64().is_some_and(|ms| ms > 0), "{used}");
    assert_eq!(
        listed,
        json!([{
            "name": "demo:1",
            "digest": digest,
            "media_type": OCI_MANIFEST,
            "size": manifest.size(),
            "platforms": ["linux/amd64"],
        }])
    );
    let text = store.ok(&["list"]);
    assert!(text.starts_with("NAME "), "{text}");
    assert!(text.contains("demo:1") && text.contains(&digest), "{text}");

    assert_eq!(
        store.ok(&["tag", "demo:1", "registry.example/demo:stable"]),
        "tagged demo:1 as registry.example/demo:stable\n"
    );
    assert_eq!(
        ref_names(&store),
        ["demo:1", "registry.example/demo:stable"]
    );
    store.ok(&["rm", "--ref", "demo:1"]);
    assert_eq!(ref_names(&store), ["registry.example/demo:stable"]);
    assert_eq!(
        store.listed_digests().len(),
        4,
        "the other name keeps the blobs"
    );

    let stderr = store.fails(&["rm", "--ref", "demo:1"]);
    assert!(stderr.contains("no ref named \"demo:1\""), "{stderr}");
    let output = store.run(&["tag", "registry.example/demo:stable", "Bad Name!"], b"");
    assert_eq!(
        output.status.code(),
        Some(2),
        "a malformed name is a usage error"
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid ref name"));
    assert!(store.ok(&["list"]).contains("registry.example/demo:stable"));
}

#[test]
fn import_selects_and_renames_refs() {
    let store = TestStore::new();
    let layout = store.scratch("layout");
    let mut builder = LayoutBuilder::new(&layout).unwrap();
    let layer = LayoutBuilder::layer_tar_gz(&[("a", b"a")]).unwrap();
    let amd64 = builder
        .image("linux", "amd64", std::slice::from_ref(&layer))
        .unwrap();
    let arm64 = builder.image("linux", "arm64", &[layer]).unwrap();
    let index = builder
        .index(&[(amd64.clone(), "linux", "amd64"), (arm64, "linux", "arm64")])
        .unwrap();
    builder.add_ref(Some("multi"), &index);
    builder.add_ref(Some("single"), &amd64);
    builder.finish().unwrap();
    let dir = path_str(&layout);

    let stderr = store.fails(&["import", dir]);
    assert!(
        stderr.contains("--sref") && stderr.contains("multi, single"),
        "{stderr}"
    );
    assert!(
        store.listed_digests().is_empty(),
        "a refused import stores nothing"
    );

    store.ok(&["import", "--sref", "multi", "--dref", "multi:v2", dir]);
    let listed = store.json(&["list"]);
    assert_eq!(listed[0]["name"], "multi:v2");
    assert_eq!(
        listed[0]["platforms"],
        json!(["linux/amd64", "linux/arm64"])
    );

    store.ok(&["import", "--all", dir]);
    assert_eq!(ref_names(&store), ["multi", "multi:v2", "single"]);

    // clap refuses the combination before anything runs: usage error, status 2.
    let output = store.run(&["import", "--all", "--sref", "multi", dir], b"");
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn export_writes_a_layout_and_an_archive() {
    let store = TestStore::new();
    let layout = store.scratch("layout");
    let manifest = LayoutBuilder::simple_image(&layout, "demo:1").unwrap();
    store.ok(&["import", path_str(&layout)]);

    let out = store.scratch("out");
    let report = store.json(&[
        "export",
        "--sref",
        "demo:1",
        "--dref",
        "copy",
        path_str(&out),
    ]);
    assert_eq!(report["name"], "copy");
    assert_eq!(report["digest"], manifest.digest().to_string());
    assert_eq!(report["blobs"], 4);
    assert_eq!(report["blobs_written"], 4);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "copy"
    );

    let archive = store.scratch("demo.tar");
    store.ok(&[
        "export",
        "--sref",
        "demo:1",
        "--archive",
        path_str(&archive),
    ]);
    let other = TestStore::new();
    let imported = other.json(&["import", path_str(&archive)]);
    assert_eq!(imported["refs"][0]["name"], "demo:1");
    assert_eq!(imported["refs"][0]["digest"], manifest.digest().to_string());

    let stderr = store.fails(&["export", "--sref", "absent", path_str(&store.scratch("x"))]);
    assert!(stderr.contains("no ref named \"absent\""), "{stderr}");
}

#[test]
fn check_names_what_is_missing_and_exits_3() {
    let store = TestStore::new();
    let layout = store.scratch("layout");
    LayoutBuilder::simple_image(&layout, "demo:1").unwrap();
    store.ok(&["import", path_str(&layout)]);
    let text = store.ok(&["check", "demo:1", "--verify"]);
    assert!(text.contains("4 blobs present and verified"), "{text}");
    assert!(text.ends_with("complete\n"), "{text}");

    let layer = store
        .json(&["blob", "ls", "--media-type", OCI_LAYER_GZIP])
        .as_array()
        .unwrap()[0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    // --force: the image holds the layer, so a plain `blob rm` would keep it.
    store.ok(&["blob", "rm", "--force", &layer]);

    let output = store.run(&["check", "demo:1"], b"");
    assert_eq!(output.status.code(), Some(3), "incomplete: status 3");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains(&format!("missing: {layer} ({OCI_LAYER_GZIP})")),
        "{text}"
    );
    assert!(text.contains("INCOMPLETE: 1 missing"), "{text}");

    let output = store.run(&["--json", "check", "demo:1"], b"");
    assert_eq!(output.status.code(), Some(3));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["missing"][0]["digest"], layer.as_str());

    let stderr = store.fails(&["check", "absent:1"]);
    assert!(stderr.contains("no ref named \"absent:1\""), "{stderr}");
}

#[test]
fn check_verify_finds_corrupt_content() {
    let store = TestStore::new();
    let layout = store.scratch("layout");
    LayoutBuilder::simple_image(&layout, "demo:1").unwrap();
    store.ok(&["import", path_str(&layout)]);
    let layer = store.json(&["blob", "ls", "--media-type", OCI_LAYER_GZIP])[0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let file = store.blob_file(&layer);
    let mut content = std::fs::read(&file).unwrap();
    content[0] ^= 0xff;
    cli_support::overwrite(&file, &content);

    assert!(
        store.run(&["check", "demo:1"], b"").status.success(),
        "presence only"
    );
    let output = store.run(&["check", "demo:1", "--verify"], b"");
    assert_eq!(output.status.code(), Some(3));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains(&format!("corrupt: {layer}")), "{text}");
}

#[test]
fn referrers_by_digest_prefix_and_artifact_type() {
    let store = TestStore::new();
    let layout = store.scratch("layout");
    let (image, artifact) = layout_with_referrer(&layout);
    let report = store.json(&["import", "--sref", "app:1", path_str(&layout)]);
    assert_eq!(report["referrers"], 1);

    let image_digest = image.digest().to_string();
    let prefix = &image_digest[..7 + 12];
    let found = store.json(&["referrers", prefix]);
    assert_eq!(found.as_array().map(Vec::len), Some(1), "{found}");
    assert_eq!(found[0]["digest"], artifact.digest().to_string());
    assert_eq!(found[0]["artifactType"], SBOM_TYPE);
    let text = store.ok(&["referrers", &image_digest, "--artifact-type", SBOM_TYPE]);
    assert_eq!(
        text,
        format!(
            "{} {OCI_MANIFEST} {} {SBOM_TYPE}\n",
            artifact.digest(),
            artifact.size()
        )
    );
    let none = store.json(&["referrers", prefix, "--artifact-type", "application/other"]);
    assert_eq!(none, json!([]));

    // The referrer lives while its subject does, and goes with it.
    let kept = store.json(&["gc"]);
    assert_eq!(kept["swept"], json!([]));
    assert_eq!(
        kept["marked"], 6,
        "image: manifest, config, layer; sbom: manifest, empty, sbom"
    );
    store.ok(&["rm", "--ref", "app:1"]);
    let swept = store.json(&["gc"]);
    assert_eq!(swept["swept"].as_array().map(Vec::len), Some(6), "{swept}");
    assert!(store.listed_digests().is_empty());
}

#[test]
fn leases_protect_blobs_from_gc_until_removed() {
    let store = TestStore::new();
    let layout = store.scratch("layout");
    let manifest = LayoutBuilder::simple_image(&layout, "demo:1").unwrap();
    store.ok(&["import", path_str(&layout)]);
    let digest = manifest.digest().to_string();

    let lease = store.json(&["lease", "create", "--ttl", "600", &digest[..7 + 10]]);
    let id = lease["id"].as_str().unwrap().to_string();
    assert_eq!(lease["digests"], json!([digest]));
    assert_eq!(lease["expired"], false);
    let expired = store
        .ok(&["lease", "create", "--ttl", "0"])
        .trim()
        .to_string();
    let listed = store.ok(&["lease", "ls"]);
    assert!(listed.contains(&format!("{id} expires ")), "{listed}");
    assert!(listed.contains(&format!("{expired} expired ")), "{listed}");

    store.ok(&["rm", "--ref", "demo:1"]);
    let dry = store.json(&["gc", "--dry-run"]);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["swept"], json!([]), "the lease reaches the whole image");
    assert_eq!(dry["expired_leases"], json!([expired]));
    let collected = store.json(&["gc"]);
    assert_eq!(collected["swept"], json!([]));
    assert_eq!(collected["expired_leases"], json!([expired]));
    assert_eq!(store.listed_digests().len(), 4);
    let leases = store.json(&["lease", "ls"]);
    assert_eq!(
        leases.as_array().map(Vec::len),
        Some(1),
        "the expired lease is gone"
    );

    store.ok(&["lease", "rm", &id]);
    let stderr = store.fails(&["lease", "rm", &id]);
    assert!(stderr.contains("no lease"), "{stderr}");
    store.ok(&["gc"]);
    assert!(store.listed_digests().is_empty());
}

#[test]
fn gc_dry_run_lists_what_would_go_and_changes_nothing() {
    let store = TestStore::new();
    let layout = store.scratch("layout");
    LayoutBuilder::simple_image(&layout, "demo:1").unwrap();
    store.ok(&["import", path_str(&layout)]);
    let kept = store.put(b"a blob outside the OCI flavour");
    store.ok(&["rm", "--ref", "demo:1"]);
    let before = store.listed_digests();

    let dry = store.json(&["gc", "--dry-run"]);
    let would_go: u64 = dry["swept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|blob| {
            assert_eq!(blob["deleted"], true);
            blob["size"].as_u64().unwrap()
        })
        .sum();
    assert_eq!(dry["swept"].as_array().map(Vec::len), Some(4));
    assert_eq!(dry["oci_freed_bytes"], would_go);
    assert_eq!(dry["freed_bytes"], would_go);
    assert!(
        dry.get("unindexed_blobs").is_none(),
        "the base GC does not run dry"
    );
    let text = store.ok(&["gc", "--dry-run"]);
    assert!(text.contains("would remove sha256:"), "{text}");
    assert!(
        text.contains(&format!("4 would go, {would_go} bytes")),
        "{text}"
    );
    assert_eq!(store.listed_digests(), before, "a dry run changes nothing");

    let collected = store.json(&["gc"]);
    assert_eq!(collected["freed_bytes"], would_go);
    assert_eq!(collected["unindexed_blobs"], json!([]), "the base GC ran");
    assert_eq!(
        store.listed_digests(),
        [kept],
        "blobs the flavour does not own stay"
    );
}

/// "Put the blobs now, tag later": blobs stored with `blob put` (the manifest by its digest
/// prefix) become an image once tagged, checked whole. They stay the user's: untagged and
/// collected, the image's blobs remain until `blob rm` lets go of them.
#[test]
fn tag_a_manifest_put_as_blobs() {
    let store = TestStore::new();
    let layout = store.scratch("layout");
    let image = LayoutBuilder::simple_image(&layout, "unused:1").unwrap();
    let manifest_digest = image.digest().to_string();
    let blob_files: Vec<_> = std::fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    let manifest_file = layout.join("blobs/sha256").join(&manifest_digest[7..]);

    // The manifest alone (no media type given: the document names its own) is incomplete.
    store.ok(&["blob", "put", path_str(&manifest_file)]);
    let error = store.fails(&["tag", &manifest_digest[..19], "app:1"]);
    assert!(error.contains("sha256:"), "names the missing blob: {error}");
    assert!(
        ref_names(&store).is_empty(),
        "no ref for an incomplete image"
    );

    for file in &blob_files {
        store.ok(&["blob", "put", path_str(file)]);
    }
    store.ok(&["tag", &manifest_digest[..19], "app:1"]);
    assert_eq!(ref_names(&store), ["app:1"]);
    let check = store.json(&["check", "app:1", "--verify"]);
    assert_eq!(check["blobs_present"], blob_files.len());

    // The ref now holds every blob; once it goes, gc lets go of them, but the puts keep them.
    assert_eq!(store.json(&["gc"])["swept"], json!([]));
    store.ok(&["rm", "--ref", "app:1"]);
    let report = store.json(&["gc"]);
    let swept = report["swept"].as_array().unwrap();
    assert_eq!(swept.len(), blob_files.len(), "{report}");
    assert!(swept.iter().all(|s| s["deleted"] == false), "{report}");
    let mut listed = store.listed_digests();
    let mut put: Vec<String> = blob_files
        .iter()
        .map(|f| format!("sha256:{}", f.file_name().unwrap().to_str().unwrap()))
        .collect();
    listed.sort();
    put.sort();
    assert_eq!(listed, put, "the user's blobs are kept");
    for digest in &put {
        store.ok(&["blob", "rm", digest]);
    }
    assert!(
        store.listed_digests().is_empty(),
        "blobs left after blob rm"
    );

    // A blob that is no manifest cannot be tagged.
    let plain = store.put(b"just bytes");
    let error = store.fails(&["tag", &plain, "plain:1"]);
    assert!(error.contains("not an image manifest"), "{error}");
}
