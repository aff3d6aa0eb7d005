//! OCI flavour: import and export of layouts, archives, pre-1.0 layouts, nested indexes,
//! Docker media types and artifacts with referrers.

mod oci_common;

use oci_common::*;
use oci_store::stores::oci::layout_builder::LayoutBuilder;
use oci_store::stores::oci::{ImportOptions, OciError, OciStore};
use oci_store::DynStore;
use serde_json::json;

fn import_all(oci: &Oci<'_>, path: &std::path::Path) {
    oci.import_layout(
        path,
        &ImportOptions {
            all: true,
            ..Default::default()
        },
    )
    .unwrap();
}

pub fn round_trip_is_blob_for_blob(store: &DynStore) {
    let oci = OciStore::new(store);
    let dir = scratch();
    let source = path_in(&dir, "source");
    let image = LayoutBuilder::simple_image(&source, "demo:latest").unwrap();

    let report = oci
        .import_layout(&source, &ImportOptions::default())
        .unwrap();
    assert_eq!(report.refs.len(), 1);
    assert_eq!(report.refs[0].name, "demo:latest");
    assert_eq!(report.blobs_written, 4, "config, two layers, manifest");
    assert_eq!(report.blobs_skipped, 0);

    // Importing again reads nothing new.
    let again = oci
        .import_layout(&source, &ImportOptions::default())
        .unwrap();
    assert_eq!((again.blobs_written, again.blobs_skipped), (0, 4));

    let exported = path_in(&dir, "exported");
    let export = oci.export("demo:latest", None, &exported, false).unwrap();
    assert_eq!(export.blobs, 4);
    assert_eq!(blob_files(&source), blob_files(&exported));
    let entries = index_entries(&exported);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["digest"], digest_string(&image));
    assert_eq!(ref_names_in_layout(&exported), vec!["demo:latest"]);
    assert!(exported.join("oci-layout").is_file());

    let refs = oci.list_refs().unwrap();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0].digest, digest(&image));
    assert_eq!(refs[0].platforms, vec!["linux/amd64"]);
    let check = oci.check("demo:latest", true).unwrap();
    assert!(check.is_complete(), "{check:?}");
    assert_eq!(check.blobs_present, 4);
}

pub fn sref_dref_and_all_choose_refs(store: &DynStore) {
    let oci = OciStore::new(store);
    let dir = scratch();
    let layout = path_in(&dir, "layout");
    layout_with_refs(&layout, &["one", "two"]);

    let ambiguous = oci.import_layout(&layout, &ImportOptions::default());
    assert!(
        matches!(ambiguous, Err(OciError::RefSelection { .. })),
        "{ambiguous:?}"
    );
    assert!(oci.list_refs().unwrap().is_empty());

    let missing = oci.import_layout(
        &layout,
        &ImportOptions {
            sref: Some("three".into()),
            ..Default::default()
        },
    );
    assert!(missing.unwrap_err().to_string().contains("three"));

    let renamed = oci
        .import_layout(
            &layout,
            &ImportOptions {
                sref: Some("two".into()),
                dref: Some("renamed:v2".into()),
                all: false,
            },
        )
        .unwrap();
    assert_eq!(renamed.refs[0].name, "renamed:v2");
    let names: Vec<String> = oci
        .list_refs()
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, vec!["renamed:v2"]);

    let conflicting = oci.import_layout(
        &layout,
        &ImportOptions {
            dref: Some("x".into()),
            all: true,
            sref: None,
        },
    );
    assert!(matches!(conflicting, Err(OciError::Invalid(_))));

    import_all(&oci, &layout);
    let names: Vec<String> = oci
        .list_refs()
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, vec!["one", "renamed:v2", "two"]);

    // Export with dref names the entry in the layout.
    let out = path_in(&dir, "out");
    oci.export("one", Some("exported:1"), &out, false).unwrap();
    assert_eq!(ref_names_in_layout(&out), vec!["exported:1"]);
}

pub fn tag_and_remove_refs(store: &DynStore) {
    let oci = OciStore::new(store);
    let dir = scratch();
    let layout = path_in(&dir, "layout");
    let image = LayoutBuilder::simple_image(&layout, "app").unwrap();
    oci.import_layout(&layout, &ImportOptions::default())
        .unwrap();
    oci.tag("app", "app:copy").unwrap();
    oci.remove_ref("app").unwrap();
    let refs = oci.list_refs().unwrap();
    assert_eq!(refs.len(), 1);
    assert_eq!(
        (refs[0].name.as_str(), &refs[0].digest),
        ("app:copy", &digest(&image))
    );
    assert!(matches!(
        oci.remove_ref("app"),
        Err(OciError::RefNotFound(_))
    ));
    assert!(matches!(
        oci.tag("nope", "x"),
        Err(OciError::RefNotFound(_))
    ));
}

pub fn pre_1_0_layout_with_both_blob_forms(store: &DynStore) {
    let oci = OciStore::new(store);
    let dir = scratch();
    let layout = path_in(&dir, "old");
    let images = layout_with_refs(&layout, &["old-one"]);
    std::fs::remove_file(layout.join("index.json")).unwrap();
    std::fs::create_dir_all(layout.join("refs")).unwrap();
    std::fs::write(
        layout.join("refs/old-one"),
        serde_json::to_vec(&images[0]).unwrap(),
    )
    .unwrap();
    // Half the blobs in the dashed form: blobs/sha256-<hex>.
    let mut moved = 0;
    for (index, entry) in std::fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .enumerate()
    {
        if index % 2 == 0 {
            let path = entry.unwrap().path();
            let hex = path.file_name().unwrap().to_str().unwrap().to_string();
            std::fs::rename(&path, layout.join(format!("blobs/sha256-{hex}"))).unwrap();
            moved += 1;
        }
    }
    assert!(moved > 0);

    let report = oci
        .import_layout(&layout, &ImportOptions::default())
        .unwrap();
    assert_eq!(report.refs[0].name, "old-one");
    assert_eq!(report.blobs_written, 4);
    assert!(oci.check("old-one", true).unwrap().is_complete());
}

pub fn oci_archives_plain_and_gzip(store: &DynStore) {
    let oci = OciStore::new(store);
    let dir = scratch();
    let layout = path_in(&dir, "layout");
    layout_with_refs(&layout, &["plain", "zipped"]);
    let plain = path_in(&dir, "image.tar");
    let zipped = path_in(&dir, "image.tar.gz");
    tar_layout(&layout, &plain, false);
    tar_layout(&layout, &zipped, true);

    let options = |name: &str| ImportOptions {
        sref: Some(name.to_string()),
        ..Default::default()
    };
    oci.import_layout(&plain, &options("plain")).unwrap();
    oci.import_layout(&zipped, &options("zipped")).unwrap();
    assert_eq!(oci.list_refs().unwrap().len(), 2);
    // The extraction directory is cleaned up.
    let scratch_dir = store.dir().join("tmp");
    assert_eq!(std::fs::read_dir(&scratch_dir).unwrap().count(), 0);

    // Export as an archive and import it into a second store: same blobs.
    let archive = path_in(&dir, "out.tar");
    oci.export("plain", None, &archive, true).unwrap();
    let second_dir = scratch();
    let second = oci_store::open_store(
        &second_dir.path().join("store"),
        &oci_store::BackendChoice::default(),
    )
    .unwrap();
    let second_oci = OciStore::new(&second);
    second_oci
        .import_layout(&archive, &ImportOptions::default())
        .unwrap();
    assert_eq!(
        second_oci.list_refs().unwrap()[0].digest,
        oci.list_refs().unwrap()[0].digest
    );
    assert!(second_oci.check("plain", true).unwrap().is_complete());
}

pub fn nested_index_and_multi_arch(store: &DynStore) {
    let oci = OciStore::new(store);
    let dir = scratch();
    let layout = path_in(&dir, "layout");
    let mut builder = LayoutBuilder::new(&layout).unwrap();
    let amd64 = builder.image("linux", "amd64", &[layer("amd64")]).unwrap();
    let arm64 = builder.image("linux", "arm64", &[layer("arm64")]).unwrap();
    let inner = builder
        .index(&[(amd64, "linux", "amd64"), (arm64, "linux", "arm64")])
        .unwrap();
    let outer = builder
        .json_blob(
            "application/vnd.oci.image.index.v1+json",
            &json!({"schemaVersion": 2, "manifests": [inner]}),
        )
        .unwrap();
    builder.add_ref(Some("multi"), &inner);
    builder.add_ref(Some("nested"), &outer);
    builder.finish().unwrap();

    let report = oci
        .import_layout(
            &layout,
            &ImportOptions {
                all: true,
                ..Default::default()
            },
        )
        .unwrap();
    // 2 x (config, layer, manifest) + inner + outer.
    assert_eq!(report.blobs_written, 8);
    let refs = oci.list_refs().unwrap();
    let multi = refs.iter().find(|r| r.name == "multi").unwrap();
    assert_eq!(multi.platforms, vec!["linux/amd64", "linux/arm64"]);
    let check = oci.check("nested", false).unwrap();
    assert_eq!(check.blobs_present, 8);
    assert!(check.is_complete());

    let out = path_in(&dir, "out");
    oci.export("nested", None, &out, false).unwrap();
    assert_eq!(blob_files(&out), blob_files(&layout));
}

pub fn docker_media_types_and_absent_foreign_layer(store: &DynStore) {
    let oci = OciStore::new(store);
    let dir = scratch();
    let layout = path_in(&dir, "layout");
    let mut builder = LayoutBuilder::new(&layout).unwrap();
    let config = builder
        .json_blob(
            "application/vnd.docker.container.image.v1+json",
            &json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}}),
        )
        .unwrap();
    let layer_descriptor = builder
        .blob(
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            &layer("docker"),
        )
        .unwrap();
    // A foreign (non-distributable) layer: only its URL is known, it is not in the layout.
    let foreign = json!({
        "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "digest": format!("sha256:{}", "ab".repeat(32)),
        "size": 12345,
        "urls": ["https://example.invalid/layer"],
    });
    let manifest = builder
        .json_blob(
            "application/vnd.docker.distribution.manifest.v2+json",
            &json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": config,
                "layers": [foreign, layer_descriptor],
            }),
        )
        .unwrap();
    let mut entry = serde_json::to_value(&manifest).unwrap();
    entry["platform"] = json!({"architecture": "amd64", "os": "windows"});
    let list = builder
        .json_blob(
            "application/vnd.docker.distribution.manifest.list.v2+json",
            &json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
                "manifests": [entry],
            }),
        )
        .unwrap();
    builder.add_ref(Some("docker:list"), &list);
    builder.finish().unwrap();

    let report = oci
        .import_layout(&layout, &ImportOptions::default())
        .unwrap();
    assert_eq!(report.blobs_written, 4, "list, manifest, config, layer");
    let check = oci.check("docker:list", true).unwrap();
    assert!(check.is_complete(), "{check:?}");
    assert_eq!(check.absent_optional.len(), 1);
    assert_eq!(oci.list_refs().unwrap()[0].platforms, vec!["windows/amd64"]);

    let out = path_in(&dir, "out");
    oci.export("docker:list", None, &out, false).unwrap();
    assert_eq!(blob_files(&out), blob_files(&layout));
}

pub fn artifacts_with_subject_are_referrers(store: &DynStore) {
    let oci = OciStore::new(store);
    let dir = scratch();
    let layout = path_in(&dir, "layout");
    let mut builder = LayoutBuilder::new(&layout).unwrap();
    let image = builder.image("linux", "amd64", &[layer("app")]).unwrap();
    let signature_manifest = signature(&mut builder, &image, "signed");
    let sbom = builder
        .blob("application/spdx+json", b"{\"spdx\":1}")
        .unwrap();
    let artifact = builder
        .json_blob(
            "application/vnd.oci.artifact.manifest.v1+json",
            &json!({
                "mediaType": "application/vnd.oci.artifact.manifest.v1+json",
                "artifactType": "application/spdx+json",
                "blobs": [sbom],
                "subject": image,
            }),
        )
        .unwrap();
    builder.add_ref(Some("app"), &image);
    // Referrers travel as unnamed index entries, as oras and cosign lay them out.
    builder.add_ref(None, &signature_manifest);
    builder.add_ref(None, &artifact);
    builder.finish().unwrap();

    let report = oci
        .import_layout(
            &layout,
            &ImportOptions {
                sref: Some("app".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(report.referrers, 2);
    let image_digest = digest(&image);
    let all = oci.referrers(&image_digest, None).unwrap();
    assert_eq!(all.len(), 2);
    let signatures = oci
        .referrers(&image_digest, Some("application/vnd.example.signature"))
        .unwrap();
    assert_eq!(signatures.len(), 1);
    assert_eq!(signatures[0].digest(), signature_manifest.digest());
    assert!(oci
        .referrers(&image_digest, Some("application/none"))
        .unwrap()
        .is_empty());

    // A tagged artifact reaches its subject.
    let sig_layout = path_in(&dir, "sig");
    let mut sig_builder = LayoutBuilder::new(&sig_layout).unwrap();
    sig_builder.add_ref(Some("sig"), &signature_manifest);
    sig_builder.finish().unwrap();
    // Copy the blobs the signature needs (its subject is optional; include it anyway).
    for (name, bytes) in blob_files(&layout) {
        let target = sig_layout.join("blobs").join(name);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(target, bytes).unwrap();
    }
    oci.import_layout(&sig_layout, &ImportOptions::default())
        .unwrap();
    let check = oci.check("sig", false).unwrap();
    assert!(check.is_complete());
    assert_eq!(
        check.blobs_present, 6,
        "signature, config, payload + image (3)"
    );
}

pub fn subject_may_travel_without_its_image(store: &DynStore) {
    let oci = OciStore::new(store);
    let dir = scratch();
    let layout = path_in(&dir, "layout");
    let mut builder = LayoutBuilder::new(&layout).unwrap();
    let image = builder.image("linux", "amd64", &[layer("gone")]).unwrap();
    let signature_manifest = signature(&mut builder, &image, "lonely");
    builder.add_ref(Some("sig"), &signature_manifest);
    builder.finish().unwrap();
    // Remove the image manifest: the signature's subject is absent.
    std::fs::remove_file(builder.blob_path(&digest(&image))).unwrap();
    oci.import_layout(&layout, &ImportOptions::default())
        .unwrap();
    let check = oci.check("sig", false).unwrap();
    assert!(check.is_complete());
    assert_eq!(check.absent_optional.len(), 1);
    assert_eq!(oci.referrers(&digest(&image), None).unwrap().len(), 1);
}

#[test]
fn round_trip_is_blob_for_blob_default() {
    run(round_trip_is_blob_for_blob);
}
#[test]
fn sref_dref_and_all_choose_refs_default() {
    run(sref_dref_and_all_choose_refs);
}
#[test]
fn tag_and_remove_refs_default() {
    run(tag_and_remove_refs);
}
#[test]
fn pre_1_0_layout_with_both_blob_forms_default() {
    run(pre_1_0_layout_with_both_blob_forms);
}
#[test]
fn oci_archives_plain_and_gzip_default() {
    run(oci_archives_plain_and_gzip);
}
#[test]
fn nested_index_and_multi_arch_default() {
    run(nested_index_and_multi_arch);
}
#[test]
fn docker_media_types_and_absent_foreign_layer_default() {
    run(docker_media_types_and_absent_foreign_layer);
}
#[test]
fn artifacts_with_subject_are_referrers_default() {
    run(artifacts_with_subject_are_referrers);
}
#[test]
fn subject_may_travel_without_its_image_default() {
    run(subject_may_travel_without_its_image);
}
