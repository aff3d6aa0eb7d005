//! External OCI tools (umoci, skopeo) for the end-to-end and interop tests: finding them, running
//! them, and building images with them.
//!
//! A missing tool fails the test when `CI=true` (CI installs them, see `.ci/run`), and skips it
//! with a message otherwise, so a developer without them can still run the rest.

#![allow(dead_code)] // each test file uses a different part of this

pub mod containerd;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether every tool in `names` is on `PATH`. When one is not: panics under `CI=true`, else
/// prints why the test is skipped and returns false.
pub fn tools_available(test: &str, names: &[&str]) -> bool {
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|name| find_on_path(name).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let message = format!(
        "{test}: {} not found on PATH (install with: apt-get install {})",
        missing.join(", "),
        missing.join(" ")
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{message}; CI=true, so this is a failure, not a skip");
    }
    eprintln!("skipping {message}");
    false
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Runs a tool that must succeed; returns its stdout.
pub fn run_tool(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("starting {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed with {:?}:\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp paths")
}

/// An image built by umoci at `layout:tag`: a fresh layout, a blank image, one layer per file
/// (`umoci insert`), an environment variable in its config, then `umoci gc` so that the layout
/// holds exactly the blobs the image reaches. Returns the manifest digest.
pub fn umoci_image(layout: &Path, tag: &str, files: &[(&str, &[u8])]) -> String {
    let layout_arg = path_str(layout);
    let image = format!("{layout_arg}:{tag}");
    run_tool("umoci", &["init", "--layout", layout_arg]);
    run_tool("umoci", &["new", "--image", &image]);
    let sources = tempfile::tempdir().expect("temp dir");
    for (index, (target, content)) in files.iter().enumerate() {
        let source = sources.path().join(format!("file-{index}"));
        std::fs::write(&source, content).expect("writing an insert source");
        run_tool(
            "umoci",
            &[
                "insert",
                "--rootless",
                "--image",
                &image,
                path_str(&source),
                target,
            ],
        );
    }
    run_tool(
        "umoci",
        &[
            "config",
            "--image",
            &image,
            "--config.env",
            "BUILT_BY=umoci",
        ],
    );
    run_tool("umoci", &["gc", "--layout", layout_arg]);
    layout_ref_digest(layout, tag)
}

/// The digest `index.json` of a layout gives the ref `name`.
pub fn layout_ref_digest(layout: &Path, name: &str) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("index.json"))
            .expect("index.json is JSON");
    index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|entry| entry["annotations"]["org.opencontainers.image.ref.name"] == name)
        .and_then(|entry| entry["digest"].as_str())
        .unwrap_or_else(|| panic!("no ref {name} in {}", layout.display()))
        .to_string()
}

/// Every blob of a layout: `alg:hex` -> content.
pub fn layout_blobs(layout: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut blobs = BTreeMap::new();
    let blobs_dir = layout.join("blobs");
    for algorithm in std::fs::read_dir(&blobs_dir).expect("blobs directory") {
        let algorithm = algorithm.expect("directory entry").path();
        let algorithm_name = algorithm.file_name().unwrap().to_string_lossy().to_string();
        for blob in std::fs::read_dir(&algorithm).expect("algorithm directory") {
            let blob = blob.expect("directory entry").path();
            let hex = blob.file_name().unwrap().to_string_lossy().to_string();
            blobs.insert(
                format!("{algorithm_name}:{hex}"),
                std::fs::read(&blob).expect("blob content"),
            );
        }
    }
    blobs
}

/// `skopeo inspect` of `reference` (e.g. `oci:DIR:REF`), parsed.
pub fn skopeo_inspect(reference: &str) -> serde_json::Value {
    let stdout = run_tool("skopeo", &["inspect", reference]);
    serde_json::from_str(&stdout).expect("skopeo inspect prints JSON")
}

/// The layer digests a manifest blob of `layout` lists.
pub fn manifest_layers(layout: &Path, manifest_digest: &str) -> Vec<String> {
    let bytes = layout_blobs(layout)
        .remove(manifest_digest)
        .unwrap_or_else(|| panic!("manifest {manifest_digest} not in {}", layout.display()));
    let manifest: serde_json::Value = serde_json::from_slice(&bytes).expect("manifest JSON");
    manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|layer| layer["digest"].as_str().expect("layer digest").to_string())
        .collect()
}
