//! Rootless for real: the whole import-and-unpack runs as an unprivileged user (under root,
//! as `nobody` through `setpriv`; otherwise as the user running the tests). Read-only
//! directories of a lower layer still receive an upper layer's files and whiteouts, device
//! nodes are skipped, everything belongs to that user, and the modes are the image's.

mod rootfs_support;

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use oci_store::stores::oci::layout_builder::{LayoutBuilder, OCI_CONFIG};
use oci_store::traits::{Algorithm, Digest};
use rootfs_support::*;
use serde_json::json;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const NOBODY: u32 = 65534;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// Runs the tool as an unprivileged user; returns stdout, panics with stderr on failure.
fn run_unprivileged(args: &[&str]) -> String {
    let binary = env!("CARGO_BIN_EXE_oci-store");
    let mut command = if rustix::process::geteuid().is_root() {
        let mut command = Command::new("setpriv");
        command.args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
            binary,
        ]);
        command
    } else {
        Command::new(binary)
    };
    let output = command
        .args(args)
        .env_remove("OCI_STORE_DIR")
        .output()
        .expect("starting oci-store");
    assert!(
        output.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn layout(root: &Path) {
    let layers = [
        layer(&[
            Dir("ro", 0o555),
            File("ro/lower", b"lower", 0o444),
            Dir("ro/sub", 0o500),
        ]),
        layer(&[
            File("ro/upper", b"upper", 0o640),
            File("ro/sub/deep", b"deep", 0o600),
            // No entry for ro/implicit: made inside the read-only ro.
            File("ro/implicit/file", b"", 0o644),
            CharDevice("null", 1, 3),
        ]),
        // ro/sub gets a new mode and, after that entry, a new file: the mode the entry
        // asks for wins over the one it had when it was opened up for the file.
        layer(&[
            File("ro/.wh.lower", b"", 0o644),
            Dir("ro/sub", 0o550),
            File("ro/sub/more", b"", 0o644),
        ]),
    ];
    let mut builder = LayoutBuilder::new(root).unwrap();
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for tar in &layers {
        descriptors.push(builder.blob(GZIP, &gzip(tar)).unwrap());
        diff_ids.push(Digest::of_bytes(Algorithm::Sha256, tar).to_string());
    }
    let config = builder
        .json_blob(
            OCI_CONFIG,
            &json!({
                "architecture": "amd64", "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": diff_ids}
            }),
        )
        .unwrap();
    let manifest = builder
        .json_blob(
            OCI_MANIFEST,
            &json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": descriptors}),
        )
        .unwrap();
    builder.add_ref(Some("ro:1"), &manifest);
    builder.finish().unwrap();
}

#[test]
fn an_unprivileged_user_unpacks_read_only_directories_and_whiteouts_in_them() {
    let scratch = tempfile::tempdir().unwrap();
    // The unprivileged user needs to reach and write the scratch directory.
    std::fs::set_permissions(scratch.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    layout(&scratch.path().join("layout"));
    let store = scratch.path().join("store");
    let out = scratch.path().join("rootfs");
    let (store_arg, layout_arg, out_arg) = (
        store.to_str().unwrap(),
        scratch.path().join("layout"),
        out.to_str().unwrap(),
    );
    run_unprivileged(&["--store", store_arg, "import", layout_arg.to_str().unwrap()]);
    let text = run_unprivileged(&["--store", store_arg, "unpack", "ro:1", out_arg]);
    assert!(text.contains("1 device nodes skipped"), "{text}");

    let user = std::fs::metadata(&out).unwrap().uid();
    if rustix::process::geteuid().is_root() {
        assert_eq!(user, NOBODY, "made by the unprivileged user");
    }
    let mut names: Vec<String> = std::fs::read_dir(out.join("ro"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["implicit", "sub", "upper"],
        "the whiteout removed lower from a read-only dir"
    );
    assert_eq!(std::fs::read(out.join("ro/sub/deep")).unwrap(), b"deep");
    assert!(!out.join("null").exists());
    let expected_modes = [
        ("ro", 0o555),
        ("ro/sub", 0o550),
        ("ro/upper", 0o640),
        ("ro/sub/deep", 0o600),
        ("ro/implicit", 0o755),
    ];
    for (path, mode) in expected_modes {
        let metadata = std::fs::symlink_metadata(out.join(path)).unwrap();
        assert_eq!(metadata.permissions().mode() & 0o7777, mode, "{path}");
        assert_eq!(
            metadata.uid(),
            user,
            "{path} belongs to the user who unpacked"
        );
    }
    // The tree can be removed again by the tools of that user: make it writable for cleanup.
    oci_store::stores::rootfs::remove_tree(&out).unwrap();
}
