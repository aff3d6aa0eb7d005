//! Image archives made by skopeo (issue 21): its `docker-archive:` (legacy layout, layers as
//! `<hex>.tar` with `<id>/layer.tar` symbolic links to them) and `oci-archive:`, single and
//! several images, plain, gzip and zstd, from files and from standard input; and our
//! `export --format docker-archive` read back by `skopeo inspect docker-archive:` and
//! `skopeo copy docker-archive: oci:`, digests compared. Fails (not skips) under `CI=true`
//! when skopeo or umoci is missing.

mod cli_support;
mod interop_tools;
mod oci_archive_support;

use std::io::{Read, Write};
use std::path::Path;

use cli_support::{sha256, TestStore};
use interop_tools::{layout_blobs, layout_ref_digest, path_str, run_tool, tools_available};
use oci_archive_support::RawTar;
use serde_json::Value;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).unwrap()
}

/// A umoci image with two layers at `<layout>:latest`; returns its manifest digest.
fn image(layout: &Path, seed: &str) -> String {
    interop_tools::umoci_image(
        layout,
        "latest",
        &[
            ("/etc/seed", seed.as_bytes()),
            ("/opt/data", format!("{seed} data\n").as_bytes()),
        ],
    )
}

fn blob_json(layout: &Path, digest: &str) -> Value {
    serde_json::from_slice(&layout_blobs(layout)[digest]).unwrap()
}

/// Imports `bytes` from standard input; returns the report.
fn import_stdin(store: &TestStore, args: &[&str], bytes: &[u8]) -> Value {
    let mut all = vec!["--json", "import"];
    all.extend_from_slice(args);
    all.push("-");
    let output = store.run(&all, bytes);
    assert!(
        output.status.success(),
        "{all:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn hex_of(name: &str) -> String {
    sha256(name.as_bytes())[7..].to_string()
}

/// The config digest and layer digests of a stored ref, read through an exported layout.
fn stored_image(store: &TestStore, name: &str) -> (String, Vec<String>, Vec<Value>) {
    let dir = store.scratch(&format!("look-{}", hex_of(name)));
    store.ok(&["export", "--sref", name, "--dref", "x", path_str(&dir)]);
    let manifest = blob_json(&dir, &layout_ref_digest(&dir, "x"));
    let config = manifest["config"]["digest"].as_str().unwrap().to_string();
    let layers = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect();
    let diff_ids = blob_json(&dir, &config)["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .clone();
    (config, layers, diff_ids)
}

#[test]
fn skopeo_docker_and_oci_archives_import_plain_gzip_and_zstd_from_files_and_stdin() {
    let test = "skopeo_docker_and_oci_archives_import_plain_gzip_and_zstd_from_files_and_stdin";
    if !tools_available(test, &["umoci", "skopeo"]) {
        return;
    }
    let store = TestStore::new();
    let source = store.scratch("source");
    let manifest = image(&source, "one");
    let source_manifest = blob_json(&source, &manifest);
    let config = source_manifest["config"]["digest"].as_str().unwrap();
    let docker = store.scratch("docker.tar");
    let oci = store.scratch("oci.tar");
    let from = format!("oci:{}:latest", path_str(&source));
    run_tool(
        "skopeo",
        &[
            "copy",
            "-q",
            &from,
            &format!("docker-archive:{}:busybox:1.36", path_str(&docker)),
        ],
    );
    run_tool(
        "skopeo",
        &[
            "copy",
            "-q",
            &from,
            &format!("oci-archive:{}:v1", path_str(&oci)),
        ],
    );
    let inspected: Value = serde_json::from_str(&run_tool(
        "skopeo",
        &["inspect", &format!("docker-archive:{}", path_str(&docker))],
    ))
    .unwrap();

    // skopeo's docker-archive: a legacy archive, its layer links resolved among its members.
    let report = store.json(&["import", path_str(&docker)]);
    assert_eq!(report["refs"][0]["name"], "docker.io/library/busybox:1.36");
    store.ok(&["check", "--verify", "docker.io/library/busybox:1.36"]);
    let (stored_config, stored_layers, diff_ids) =
        stored_image(&store, "docker.io/library/busybox:1.36");
    assert_eq!(stored_config, config);
    assert_eq!(
        Value::from(stored_layers.clone()),
        inspected["Layers"],
        "skopeo and we see the same layers"
    );
    assert_eq!(Value::from(diff_ids), inspected["Layers"]);

    // skopeo's oci-archive, by its ref name; the manifest digest is the source's.
    let report = store.json(&["import", "--dref", "from-oci:1", path_str(&oci)]);
    assert_eq!(report["refs"][0]["digest"], manifest.as_str());

    // The same archives wrapped whole in gzip and zstd, from standard input.
    let docker_bytes = std::fs::read(&docker).unwrap();
    let oci_bytes = std::fs::read(&oci).unwrap();
    for (what, bytes, expected) in [
        ("docker plain", docker_bytes.clone(), None),
        ("docker gzip", gzip(&docker_bytes), None),
        ("docker zstd", zstd(&docker_bytes), None),
        ("oci plain", oci_bytes.clone(), Some(manifest.as_str())),
        ("oci gzip", gzip(&oci_bytes), Some(manifest.as_str())),
        ("oci zstd", zstd(&oci_bytes), Some(manifest.as_str())),
    ] {
        let fresh = TestStore::new();
        let report = import_stdin(&fresh, &["--dref", "piped:1"], &bytes);
        assert_eq!(report["refs"][0]["name"], "piped:1", "{what}");
        if let Some(expected) = expected {
            assert_eq!(report["refs"][0]["digest"], expected, "{what}");
        }
        let (piped_config, piped_layers, _) = stored_image(&fresh, "piped:1");
        assert_eq!(piped_config, config, "{what}");
        if what.starts_with("docker") {
            assert_eq!(piped_layers, stored_layers, "{what}");
        }
    }
}

/// Every member of a tar: name, kind, link target, content.
fn members(bytes: &[u8]) -> Vec<(String, tar::EntryType, Option<String>, Vec<u8>)> {
    let mut archive = tar::Archive::new(bytes);
    let mut out = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().to_string();
        let kind = entry.header().entry_type();
        let link = entry
            .link_name()
            .unwrap()
            .map(|l| l.to_string_lossy().to_string());
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        out.push((name, kind, link, data));
    }
    out
}

#[test]
fn several_images_in_one_skopeo_made_archive_import_together() {
    let test = "several_images_in_one_skopeo_made_archive_import_together";
    if !tools_available(test, &["umoci", "skopeo"]) {
        return;
    }
    let store = TestStore::new();
    let (first, second) = (store.scratch("first"), store.scratch("second"));
    let first_manifest = image(&first, "first");
    let second_manifest = image(&second, "second");

    // Docker: two archives skopeo wrote, joined as `docker save a b` joins them (one
    // manifest.json listing both, members shared once); skopeo reads each image of it.
    let mut joined = Vec::new();
    let mut images = Vec::new();
    for (position, (layout, name)) in [(&first, "first:1"), (&second, "example.com/second:2")]
        .into_iter()
        .enumerate()
    {
        let archive = store.scratch(&format!("single-{position}.tar"));
        run_tool(
            "skopeo",
            &[
                "copy",
                "-q",
                &format!("oci:{}:latest", path_str(layout)),
                &format!("docker-archive:{}:{name}", path_str(&archive)),
            ],
        );
        for member in members(&std::fs::read(&archive).unwrap()) {
            if member.0 == "manifest.json" {
                let list: Vec<Value> = serde_json::from_slice(&member.3).unwrap();
                images.extend(list);
            } else if member.0 != "repositories"
                && !joined.iter().any(|m: &(String, _, _, _)| m.0 == member.0)
            {
                joined.push(member);
            }
        }
    }
    let mut tar = RawTar::new();
    for (name, kind, link, data) in &joined {
        tar.member(name, *kind, link.as_deref(), data);
    }
    tar.file("manifest.json", &serde_json::to_vec(&images).unwrap());
    let multi = store.scratch("multi.tar");
    std::fs::write(&multi, tar.finish()).unwrap();
    for position in 0..2 {
        run_tool(
            "skopeo",
            &[
                "inspect",
                &format!("docker-archive:{}:@{position}", path_str(&multi)),
            ],
        );
    }
    let report = store.json(&["import", path_str(&multi)]);
    let names: Vec<&str> = report["refs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["docker.io/library/first:1", "example.com/second:2"]);
    store.ok(&["check", "--verify", "example.com/second:2"]);

    // OCI: both images copied by skopeo into one layout, archived, read from stdin.
    let layout = store.scratch("both");
    for (source, tag) in [(&first, "a"), (&second, "b")] {
        run_tool(
            "skopeo",
            &[
                "copy",
                "-q",
                &format!("oci:{}:latest", path_str(source)),
                &format!("oci:{}:{tag}", path_str(&layout)),
            ],
        );
    }
    let mut tar = RawTar::new();
    tar.layout(&layout);
    let report = import_stdin(&TestStore::new(), &["--all"], &tar.finish());
    let refs: Vec<(&str, &str)> = report["refs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap(), r["digest"].as_str().unwrap()))
        .collect();
    assert_eq!(
        refs,
        [
            ("a", first_manifest.as_str()),
            ("b", second_manifest.as_str())
        ]
    );
}

#[test]
fn our_docker_archive_is_read_by_skopeo_with_the_same_digests() {
    let test = "our_docker_archive_is_read_by_skopeo_with_the_same_digests";
    if !tools_available(test, &["umoci", "skopeo"]) {
        return;
    }
    let store = TestStore::new();
    let source = store.scratch("source");
    image(&source, "exported");
    store.ok(&[
        "import",
        "--sref",
        "latest",
        "--dref",
        "app:1",
        path_str(&source),
    ]);
    let (config, layers, diff_ids) = stored_image(&store, "app:1");
    let to_file = store.scratch("out.tar");
    store.ok(&[
        "export",
        "--sref",
        "app:1",
        "--format",
        "docker-archive",
        path_str(&to_file),
    ]);
    let to_stdout = store.ok_bytes(&[
        "export",
        "--sref",
        "app:1",
        "--format",
        "docker-archive",
        "-",
    ]);
    assert_eq!(std::fs::read(&to_file).unwrap(), to_stdout);
    let reference = format!("docker-archive:{}", path_str(&to_file));

    let inspected: Value =
        serde_json::from_str(&run_tool("skopeo", &["inspect", &reference])).unwrap();
    assert_eq!(inspected["Layers"], Value::from(diff_ids.clone()));
    let raw_config = run_tool("skopeo", &["inspect", "--config", "--raw", &reference]);
    assert_eq!(sha256(raw_config.as_bytes()), config);

    let copied = store.scratch("copied");
    run_tool(
        "skopeo",
        &[
            "copy",
            "-q",
            &reference,
            &format!("oci:{}:copied", path_str(&copied)),
        ],
    );
    let manifest = blob_json(&copied, &layout_ref_digest(&copied, "copied"));
    let copied_layers: Vec<String> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(copied_layers, layers);
    let copied_config = blob_json(&copied, manifest["config"]["digest"].as_str().unwrap());
    assert_eq!(copied_config["rootfs"]["diff_ids"], Value::from(diff_ids));
}
