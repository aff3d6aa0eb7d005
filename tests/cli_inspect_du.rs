//! `inspect` shows what an image is (descriptor, manifest per platform, config summary,
//! layers); `du` shows where the space goes (total, per ref unique and shared, per flavour,
//! reclaimable by `gc --dry-run`). Both checked in text and in JSON, against the layout the
//! test built.

mod cli_support;

use cli_support::TestStore;
use oci_store::stores::oci::layout_builder::{LayoutBuilder, OCI_CONFIG};
use oci_store::stores::oci::Descriptor;
use serde_json::{json, Value};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

struct Built {
    index: Descriptor,
    amd64: Descriptor,
    arm64: Descriptor,
    base: Descriptor,
    app_amd64: Descriptor,
    app_arm64: Descriptor,
    config_amd64: Descriptor,
    config_arm64: Descriptor,
}

fn image(
    builder: &mut LayoutBuilder,
    architecture: &str,
    layers: &[Descriptor],
) -> (Descriptor, Descriptor) {
    let config = builder
        .json_blob(
            OCI_CONFIG,
            &json!({
                "architecture": architecture,
                "os": "linux",
                "created": "2024-05-01T12:00:00Z",
                "config": {
                    "Env": ["PATH=/usr/bin", format!("ARCH={architecture}")],
                    "Entrypoint": ["/bin/serve"],
                    "Cmd": ["--port", "80"],
                    "WorkingDir": "/srv",
                    "Labels": {"org.opencontainers.image.title": "demo"},
                    "ExposedPorts": {"80/tcp": {}}
                },
                "rootfs": {"type": "layers", "diff_ids": []},
                "history": [
                    {"created": "2024-05-01T11:00:00Z", "created_by": "ADD base.tar /"},
                    {"created": "2024-05-01T12:00:00Z", "created_by": "ENV ARCH", "empty_layer": true}
                ]
            }),
        )
        .unwrap();
    let manifest = builder
        .json_blob(
            OCI_MANIFEST,
            &json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": layers}),
        )
        .unwrap();
    (manifest, config)
}

/// `multi:1`, an index over linux/amd64 and linux/arm64 sharing a base layer, and
/// `single:1`, the amd64 manifest alone.
fn build(root: &std::path::Path) -> Built {
    let mut builder = LayoutBuilder::new(root).unwrap();
    let base = builder
        .blob(
            GZIP,
            &LayoutBuilder::layer_tar_gz(&[("etc/os-release", b"NAME=demo\n")]).unwrap(),
        )
        .unwrap();
    let app_amd64 = builder
        .blob(
            GZIP,
            &LayoutBuilder::layer_tar_gz(&[("bin/serve", b"amd64 binary")]).unwrap(),
        )
        .unwrap();
    let app_arm64 = builder
        .blob(
            GZIP,
            &LayoutBuilder::layer_tar_gz(&[("bin/serve", b"arm64 binary, longer")]).unwrap(),
        )
        .unwrap();
    let (amd64, config_amd64) = image(&mut builder, "amd64", &[base.clone(), app_amd64.clone()]);
    let (arm64, config_arm64) = image(&mut builder, "arm64", &[base.clone(), app_arm64.clone()]);
    let index = builder
        .index(&[
            (amd64.clone(), "linux", "amd64"),
            (arm64.clone(), "linux", "arm64"),
        ])
        .unwrap();
    builder.add_ref(Some("multi:1"), &index);
    builder.add_ref(Some("single:1"), &amd64);
    builder.finish().unwrap();
    Built {
        index,
        amd64,
        arm64,
        base,
        app_amd64,
        app_arm64,
        config_amd64,
        config_arm64,
    }
}

fn imported() -> (TestStore, Built) {
    let store = TestStore::new();
    let layout = store.scratch("layout");
    let built = build(&layout);
    store.ok(&["import", "--all", layout.to_str().unwrap()]);
    (store, built)
}

fn sizes(descriptors: &[&Descriptor]) -> u64 {
    descriptors.iter().map(|d| d.size()).sum()
}

#[test]
fn inspect_shows_every_platform_with_its_config_summary_and_layers() {
    let (store, built) = imported();
    let inspected = store.json(&["inspect", "multi:1"]);
    assert_eq!(inspected["schema"], "oci-store.inspect.v1");
    assert_eq!(inspected["name"], "multi:1");
    assert_eq!(
        inspected["descriptor"]["digest"],
        built.index.digest().to_string()
    );
    let target = &inspected["target"];
    assert_eq!(target["kind"], "index");
    let manifests = target["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 2);
    for (entry, (manifest, architecture, app)) in manifests.iter().zip([
        (&built.amd64, "amd64", &built.app_amd64),
        (&built.arm64, "arm64", &built.app_arm64),
    ]) {
        assert_eq!(entry["platform"], format!("linux/{architecture}"));
        let image = &entry["target"];
        assert_eq!(image["kind"], "manifest");
        assert_eq!(image["digest"], manifest.digest().to_string());
        let config = &image["image"];
        assert_eq!(config["os"], "linux");
        assert_eq!(config["architecture"], architecture);
        assert_eq!(
            config["env"],
            json!(["PATH=/usr/bin", format!("ARCH={architecture}")])
        );
        assert_eq!(config["entrypoint"], json!(["/bin/serve"]));
        assert_eq!(config["cmd"], json!(["--port", "80"]));
        assert_eq!(config["working_dir"], "/srv");
        assert_eq!(config["labels"]["org.opencontainers.image.title"], "demo");
        assert_eq!(config["created"], "2024-05-01T12:00:00Z");
        assert_eq!(config["exposed_ports"], json!(["80/tcp"]));
        assert_eq!(config["history"][1]["empty_layer"], true);
        assert_eq!(config["history"][0]["created_by"], "ADD base.tar /");
        let layers: Vec<(&str, &str, u64)> = image["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["digest"].as_str().unwrap(),
                    l["media_type"].as_str().unwrap(),
                    l["size"].as_u64().unwrap(),
                )
            })
            .collect();
        let base_digest = built.base.digest().to_string();
        let app_digest = app.digest().to_string();
        assert_eq!(
            layers,
            [
                (base_digest.as_str(), GZIP, built.base.size()),
                (app_digest.as_str(), GZIP, app.size())
            ]
        );
        assert_eq!(image["layer_bytes"], built.base.size() + app.size());
    }

    // The text form: every platform, the fields people look for.
    let text = store.ok(&["inspect", "multi:1"]);
    for needed in [
        "platform linux/amd64",
        "platform linux/arm64",
        "entrypoint:  [\"/bin/serve\"]",
        "working dir: /srv",
        "ARCH=arm64",
        "org.opencontainers.image.title=demo",
        "80/tcp",
        "ENV ARCH (no layer)",
        built.app_arm64.digest().as_ref(),
    ] {
        assert!(text.contains(needed), "no {needed:?} in:\n{text}");
    }

    // A single manifest, and a manifest by digest prefix.
    let single = store.json(&["inspect", "single:1"]);
    assert_eq!(single["target"]["kind"], "manifest");
    assert_eq!(single["target"]["image"]["architecture"], "amd64");
    let prefix = &built.arm64.digest().to_string()[..20];
    let by_digest = store.json(&["inspect", prefix]);
    assert_eq!(by_digest["name"], Value::Null);
    assert_eq!(by_digest["target"]["image"]["architecture"], "arm64");
}

#[test]
fn du_splits_each_ref_into_unique_and_shared_and_says_what_gc_would_free() {
    let (store, built) = imported();
    let put = store.put(b"a blob a user stored");
    let du = store.json(&["du"]);
    assert_eq!(du["schema"], "oci-store.du.v1");

    let image_blobs = [
        &built.index,
        &built.amd64,
        &built.arm64,
        &built.base,
        &built.app_amd64,
        &built.app_arm64,
        &built.config_amd64,
        &built.config_arm64,
    ];
    let put_size = "a blob a user stored".len() as u64;
    assert_eq!(du["total"]["blobs"], 9);
    assert_eq!(du["total"]["bytes"], sizes(&image_blobs) + put_size);

    let refs = du["refs"].as_array().unwrap();
    let by_name = |name: &str| refs.iter().find(|r| r["name"] == name).unwrap().clone();
    let multi = by_name("multi:1");
    let single = by_name("single:1");
    let single_blobs = [
        &built.amd64,
        &built.config_amd64,
        &built.base,
        &built.app_amd64,
    ];
    assert_eq!(single["blobs"], 4);
    assert_eq!(single["bytes"], sizes(&single_blobs));
    assert_eq!(
        single["unique_bytes"], 0,
        "everything single:1 reaches, multi:1 reaches too"
    );
    assert_eq!(single["shared_bytes"], sizes(&single_blobs));
    assert_eq!(multi["blobs"], 8);
    let multi_only = [
        &built.index,
        &built.arm64,
        &built.config_arm64,
        &built.app_arm64,
    ];
    assert_eq!(multi["unique_bytes"], sizes(&multi_only));
    assert_eq!(multi["shared_bytes"], sizes(&single_blobs));
    assert_eq!(du["reached_by_refs"]["bytes"], sizes(&image_blobs));

    assert_eq!(du["flavours"]["oci"]["blobs"], 8);
    assert_eq!(du["flavours"]["oci"]["bytes"], sizes(&image_blobs));
    assert_eq!(du["flavours"]["base"]["blobs"], 1, "{du}");
    assert_eq!(du["flavours"]["base"]["bytes"], put_size);
    assert_eq!(du["reclaimable"]["bytes"], 0);

    // Without multi:1, exactly its unique bytes are what gc would free; du changes nothing.
    store.ok(&["rm", "multi:1"]);
    let du = store.json(&["du"]);
    assert_eq!(du["reclaimable"]["blobs"], 4);
    assert_eq!(du["reclaimable"]["bytes"], sizes(&multi_only));
    let dry_run = store.json(&["gc", "--dry-run"]);
    assert_eq!(dry_run["oci_freed_bytes"], du["reclaimable"]["bytes"]);
    assert_eq!(
        store.json(&["du"])["total"]["blobs"],
        9,
        "du swept something"
    );
    assert!(store.listed_digests().contains(&put));

    let text = store.ok(&["du"]);
    for needed in [
        "total: 9 blobs",
        "single:1",
        "held by oci: 8 blobs",
        "reclaimable by gc: 4 blobs",
    ] {
        assert!(text.contains(needed), "no {needed:?} in:\n{text}");
    }
}
