//! `oci-store unpack`: layers in order with whiteouts, gzip and zstd, platform choice from an
//! index, every layer verified as it streams, all or nothing, and the GC kept out meanwhile.

mod cli_support;
mod rootfs_support;

use std::io::Write;
use std::path::Path;

use cli_support::{overwrite, TestStore};
use oci_spec::image::Descriptor;
use oci_store::store::{open_store, BackendChoice, LockMode};
use oci_store::stores::oci::layout_builder::{LayoutBuilder, OCI_CONFIG};
use oci_store::stores::oci::{OciStore, UnpackOptions, GC_LOCK};
use oci_store::stores::rootfs::tree_hash;
use oci_store::traits::{Algorithm, Digest};
use rootfs_support::*;
use serde_json::json;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
const DOCKER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn compress(media_type: &str, tar: &[u8]) -> Vec<u8> {
    match media_type {
        ZSTD => zstd::encode_all(tar, 3).unwrap(),
        _ => gzip(tar),
    }
}

/// An image of `layers` (media type, items) with a config listing their diff_ids.
fn image(builder: &mut LayoutBuilder, arch: &str, layers: &[(&str, Vec<Item>)]) -> Descriptor {
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for (media_type, items) in layers {
        let tar = layer(items);
        diff_ids.push(Digest::of_bytes(Algorithm::Sha256, &tar).to_string());
        descriptors.push(
            builder
                .blob(media_type, &compress(media_type, &tar))
                .unwrap(),
        );
    }
    let config = builder
        .json_blob(
            OCI_CONFIG,
            &json!({
                "architecture": arch, "os": "linux",
                "rootfs": { "type": "layers", "diff_ids": diff_ids },
                "config": {}
            }),
        )
        .unwrap();
    builder
        .json_blob(
            OCI_MANIFEST,
            &json!({ "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": descriptors }),
        )
        .unwrap()
}

fn three_layers() -> Vec<(&'static str, Vec<Item>)> {
    vec![
        (
            GZIP,
            vec![
                Dir("etc", 0o755),
                File("etc/passwd", b"root:x:0:0\n", 0o644),
                File("etc/motd", b"lower\n", 0o644),
                Dir("var/cache", 0o755),
                File("var/cache/junk", b"junk", 0o644),
                Dir("opt/app", 0o755),
                File("opt/app/v1", b"1", 0o644),
            ],
        ),
        (
            ZSTD,
            vec![
                File("etc/.wh.motd", b"", 0o644),
                File("var/.wh.cache", b"", 0o644),
                File("opt/app/.wh..wh..opq", b"", 0o644),
                File("opt/app/v2", b"2", 0o644),
                symlink("bin", "usr/bin"),
                HardLink("etc/passwd-", "etc/passwd"),
            ],
        ),
        (
            DOCKER_GZIP,
            vec![File("usr/bin/tool", b"#!/bin/sh\n", 0o755)],
        ),
    ]
}

fn store_with(image_of: impl FnOnce(&mut LayoutBuilder) -> Descriptor) -> TestStore {
    let store = TestStore::new();
    let layout = store.scratch("layout");
    let mut builder = LayoutBuilder::new(&layout).unwrap();
    let descriptor = image_of(&mut builder);
    builder.add_ref(Some("img:1"), &descriptor);
    builder.finish().unwrap();
    store.ok(&["import", layout.to_str().unwrap()]);
    store
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn layers_apply_in_order_with_whiteouts() {
    let store = store_with(|b| image(b, "amd64", &three_layers()));
    let out = store.scratch("rootfs");
    let report = store.json(&["unpack", "img:1", out.to_str().unwrap()]);
    assert_eq!(report["layers"].as_array().unwrap().len(), 3);
    assert_eq!(report["applied"]["whiteouts"], 2);
    assert_eq!(report["applied"]["opaque_directories"], 1);
    assert_eq!(names(&out), ["bin", "etc", "opt", "usr", "var"]);
    assert_eq!(names(&out.join("etc")), ["passwd", "passwd-"]);
    assert!(names(&out.join("var")).is_empty());
    assert_eq!(names(&out.join("opt/app")), ["v2"]);
    assert_eq!(
        std::fs::read_link(out.join("bin")).unwrap(),
        Path::new("usr/bin")
    );
    assert_eq!(mode_of(&out.join("usr/bin/tool")), 0o755);
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(out.join("etc/passwd-")).unwrap().ino(),
        std::fs::metadata(out.join("etc/passwd")).unwrap().ino()
    );
    // Nothing but the tree is left beside it.
    assert_eq!(names(out.parent().unwrap()), ["layout", "rootfs", "store"]);
}

#[test]
fn an_index_is_narrowed_to_the_platform_asked_for_or_the_hosts() {
    let store = store_with(|b| {
        let amd = image(b, "amd64", &[(GZIP, vec![File("arch", b"amd64", 0o644)])]);
        let arm = image(b, "arm64", &[(GZIP, vec![File("arch", b"arm64", 0o644)])]);
        b.index(&[(amd, "linux", "amd64"), (arm, "linux", "arm64")])
            .unwrap()
    });
    let arm = store.scratch("arm");
    let report = store.json(&[
        "unpack",
        "img:1",
        arm.to_str().unwrap(),
        "--platform",
        "linux/arm64",
    ]);
    assert_eq!(report["platform"], "linux/arm64");
    assert_eq!(std::fs::read(arm.join("arch")).unwrap(), b"arm64");

    let host = store.scratch("host");
    let host_arch = oci_store::stores::oci::Platform::host().architecture;
    if host_arch == "amd64" || host_arch == "arm64" {
        store.ok(&["unpack", "img:1", host.to_str().unwrap()]);
        assert_eq!(
            std::fs::read(host.join("arch")).unwrap(),
            host_arch.as_bytes()
        );
    }

    let none = store.scratch("none");
    let error = store.fails(&[
        "unpack",
        "img:1",
        none.to_str().unwrap(),
        "--platform",
        "linux/s390x",
    ]);
    assert!(
        error.contains("no image for linux/s390x") && error.contains("linux/amd64, linux/arm64"),
        "{error}"
    );
    assert!(!none.exists());
    // A malformed platform is a usage error (status 2).
    let output = store.run(
        &[
            "unpack",
            "img:1",
            none.to_str().unwrap(),
            "--platform",
            "linux",
        ],
        b"",
    );
    assert_eq!(output.status.code(), Some(2));
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains("os/architecture"), "{error}");
}

#[test]
fn a_corrupt_layer_in_the_store_fails_the_unpack_and_leaves_nothing() {
    let layers = three_layers();
    let tar = layer(&layers[2].1);
    let blob = gzip(&tar);
    let layer_digest = Digest::of_bytes(Algorithm::Sha256, &blob).to_string();
    let store = store_with(|b| image(b, "amd64", &layers));
    // Same length, one byte changed, inside the gzip stream's stored data.
    let mut damaged = blob.clone();
    let last = damaged.len() - 9;
    damaged[last] ^= 0x01;
    overwrite(&store.blob_file(&layer_digest), &damaged);
    let out = store.scratch("rootfs");
    let error = store.fails(&["unpack", "img:1", out.to_str().unwrap()]);
    assert!(error.contains(&layer_digest), "{error}");
    assert!(!out.exists(), "no partial tree");
    assert_eq!(
        names(out.parent().unwrap()),
        ["layout", "store"],
        "no staging left"
    );
}

#[test]
fn a_wrong_diff_id_is_caught() {
    let store = store_with(|b| {
        let layer_blob = b
            .blob(GZIP, &gzip(&layer(&[File("a", b"a", 0o644)])))
            .unwrap();
        let wrong = Digest::of_bytes(Algorithm::Sha256, b"not the tar").to_string();
        let config = b
            .json_blob(OCI_CONFIG, &json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [wrong]}}))
            .unwrap();
        b.json_blob(OCI_MANIFEST, &json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [layer_blob]}))
            .unwrap()
    });
    let out = store.scratch("rootfs");
    let error = store.fails(&["unpack", "img:1", out.to_str().unwrap()]);
    assert!(error.contains("diff_id"), "{error}");
    assert!(!out.exists());
}

#[test]
fn a_hostile_layer_is_refused_and_leaves_nothing() {
    let store = store_with(|b| {
        image(
            b,
            "amd64",
            &[(
                GZIP,
                vec![symlink("escape", ".."), File("escape/owned", b"x", 0o644)],
            )],
        )
    });
    let out = store.scratch("rootfs");
    let error = store.fails(&["unpack", "img:1", out.to_str().unwrap()]);
    assert!(
        error.contains("escape/owned") && error.contains("symlink"),
        "{error}"
    );
    assert!(!out.exists());
    assert!(!store.scratch("owned").exists());
}

#[test]
fn the_target_must_be_new_or_empty() {
    let store = store_with(|b| image(b, "amd64", &[(GZIP, vec![File("a", b"a", 0o644)])]));
    let out = store.scratch("rootfs");
    std::fs::create_dir(&out).unwrap();
    store.ok(&["unpack", "img:1", out.to_str().unwrap()]);
    assert_eq!(names(&out), ["a"]);
    let error = store.fails(&["unpack", "img:1", out.to_str().unwrap()]);
    assert!(error.contains("not empty"), "{error}");
    let error = store.fails(&["unpack", "nope:1", store.scratch("x").to_str().unwrap()]);
    assert!(error.contains("nope:1"), "{error}");
}

#[test]
fn rootless_unpack_skips_devices_and_owns_everything() {
    let store = store_with(|b| {
        image(
            b,
            "amd64",
            &[(
                GZIP,
                vec![CharDevice("dev-null", 1, 3), File("f", b"", 0o644)],
            )],
        )
    });
    let out = store.scratch("rootfs");
    let report = store.json(&["unpack", "--rootless", "img:1", out.to_str().unwrap()]);
    assert_eq!(report["applied"]["devices_skipped"], 1);
    assert_eq!(names(&out), ["f"]);
    let text = store.ok(&[
        "unpack",
        "--rootless",
        "img:1",
        store.scratch("again").to_str().unwrap(),
    ]);
    assert!(text.contains("1 device nodes skipped"), "{text}");
}

#[test]
fn unpacking_holds_the_gc_out() {
    let store = store_with(|b| image(b, "amd64", &three_layers()));
    let base = open_store(&store.path(), &BackendChoice::default()).unwrap();
    let out = store.scratch("rootfs");
    let gc_lock = base.named_lock(GC_LOCK, LockMode::Exclusive).unwrap();
    std::thread::scope(|scope| {
        let unpack =
            scope.spawn(|| OciStore::new(&base).unpack("img:1", &out, &UnpackOptions::default()));
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(
            !unpack.is_finished(),
            "unpack waits while a GC holds the lock"
        );
        assert!(!out.exists());
        drop(gc_lock);
        let report = unpack.join().unwrap().expect("unpacks once the GC is done");
        assert_eq!(report.layers.len(), 3);
    });
    // The same tree as the CLI makes.
    let cli = store.scratch("cli");
    store.ok(&["unpack", "img:1", cli.to_str().unwrap()]);
    assert_eq!(tree_hash(&out).unwrap(), tree_hash(&cli).unwrap());
}

#[test]
fn damage_that_breaks_the_archive_is_reported_as_the_damaged_blob() {
    let items = vec![File(
        "big",
        b"some file content that deflate will encode",
        0o644,
    )];
    let blob = gzip(&layer(&items));
    let layer_digest = Digest::of_bytes(Algorithm::Sha256, &blob).to_string();
    let store = store_with(|b| image(b, "amd64", &[(GZIP, items)]));
    let mut damaged = blob.clone();
    damaged[12] ^= 0xff; // inside the deflate stream: decompression fails
    overwrite(&store.blob_file(&layer_digest), &damaged);
    let out = store.scratch("rootfs");
    let error = store.fails(&["unpack", "img:1", out.to_str().unwrap()]);
    assert!(
        error.contains(&format!("layer {layer_digest} does not verify")),
        "{error}"
    );
    assert!(!out.exists());
}

#[test]
fn every_metadata_backend_unpacks_the_same_tree() {
    let mut hashes = Vec::new();
    let backends: Vec<&str> = oci_store::traits::registry::registered_backends()
        .into_iter()
        .filter(|backend| backend.fills(oci_store::traits::Role::Index))
        .map(|backend| backend.name)
        .collect();
    assert!(
        backends.len() >= 2,
        "sqlite and lmdb at least: {backends:?}"
    );
    for backend in &backends {
        let store = TestStore::new();
        let layout = store.scratch("layout");
        let mut builder = LayoutBuilder::new(&layout).unwrap();
        let descriptor = image(&mut builder, "amd64", &three_layers());
        builder.add_ref(Some("img:1"), &descriptor);
        builder.finish().unwrap();
        store.ok(&["--backend", backend, "import", layout.to_str().unwrap()]);
        let out = store.scratch("rootfs");
        store.ok(&[
            "--backend",
            backend,
            "unpack",
            "img:1",
            out.to_str().unwrap(),
        ]);
        hashes.push(tree_hash(&out).unwrap().hash);
    }
    hashes.dedup();
    assert_eq!(
        hashes.len(),
        1,
        "one tree whatever the backends: {backends:?}"
    );
}

#[test]
fn a_docker_schema2_image_unpacks() {
    const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    let store = store_with(|b| {
        let tar = layer(&[
            File("docker-made", b"by docker\n", 0o644),
            File(".wh.nothing", b"", 0o644),
        ]);
        let diff_id = Digest::of_bytes(Algorithm::Sha256, &tar).to_string();
        let layer_blob = b.blob(DOCKER_GZIP, &gzip(&tar)).unwrap();
        let config = b
            .json_blob(
                DOCKER_CONFIG,
                &json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff_id]}}),
            )
            .unwrap();
        b.json_blob(
            DOCKER_MANIFEST,
            &json!({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST, "config": config, "layers": [layer_blob]}),
        )
        .unwrap()
    });
    let out = store.scratch("rootfs");
    store.ok(&["unpack", "img:1", out.to_str().unwrap()]);
    assert_eq!(names(&out), ["docker-made"]);
}
