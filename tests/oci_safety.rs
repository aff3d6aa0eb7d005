//! OCI flavour: bad input gets a clear error and changes nothing already stored.

mod oci_common;

use std::io::Write;

use oci_common::*;
use oci_store::stores::oci::layout_builder::LayoutBuilder;
use oci_store::stores::oci::{ImportOptions, OciError, OciStore, MAX_DOCUMENT_SIZE};
use oci_store::DynStore;
use serde_json::json;

fn blob_count(store: &DynStore) -> usize {
    store.list(None).unwrap().len()
}

/// Appends a raw tar member whose name is written as-is (the tar crate refuses `..` when
/// building, which is the point of this test).
fn append_raw(
    out: &mut Vec<u8>,
    name: &str,
    kind: tar::EntryType,
    link: Option<&str>,
    content: &[u8],
) {
    let mut header = tar::Header::new_old();
    {
        let bytes = header.as_old_mut();
        bytes.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            bytes.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
    }
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(kind);
    header.set_cksum();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(content);
    let padding = (512 - content.len() % 512) % 512;
    out.extend(std::iter::repeat_n(0u8, padding));
}

fn finish_raw(mut out: Vec<u8>) -> Vec<u8> {
    out.extend(std::iter::repeat_n(0u8, 1024));
    out
}

pub fn archive_traversal_and_absolute_paths_are_refused(store: &DynStore) {
    let oci = OciStore::new(store);
    let dir = scratch();
    for name in [
        "../escaped",
        "/tmp/oci-store-absolute-escape",
        "a/../../escaped",
    ] {
        let mut raw = Vec::new();
        append_raw(&mut raw, "oci-layout", tar::EntryType::Regular, None, b"{}");
        append_raw(&mut raw, name, tar::EntryType::Regular, None, b"evil");
        let archive = path_in(&dir, "evil.tar");
        std::fs::write(&archive, finish_raw(raw)).unwrap();
        let result = oci.import_layout(&archive, &ImportOptions::default());
        assert!(
            matches!(result, Err(OciError::UnsafeArchiveEntry { .. })),
            "{name}: {result:?}"
        );
    }
    assert!(!store.dir().join("tmp/escaped").exists());
    assert!(!store.dir().join("escaped").exists());
    assert!(!std::path::Path::new("/tmp/oci-store-absolute-escape").exists());
    assert_eq!(blob_count(store), 0);
}

pub fn symlinks_leading_out_are_refused(store: &DynStore) {
    let oci = OciStore::new(store);
    let dir = scratch();
    // In an archive: a link out, and a file written through a link out.
    for (link, target) in [("blobs/sha256/x", "/etc/passwd"), ("blobs", "../../..")] {
        let mut raw = Vec::new();
        append_raw(&mut raw, link, tar::EntryType::Symlink, Some(target), b"");
        append_raw(
            &mut raw,
            "blobs/written-through",
            tar::EntryType::Regular,
            None,
            b"x",
        );
        let archive = path_in(&dir, "links.tar");
        std::fs::write(&archive, finish_raw(raw)).unwrap();
        let result = oci.import_layout(&archive, &ImportOptions::default());
        assert!(
            matches!(result, Err(OciError::UnsafeArchiveEntry { .. })),
            "{link} -> {target}: {result:?}"
        );
    }

    // In a layout directory: a blob that is a symlink to a file outside the layout.
    let layout = path_in(&dir, "layout");
    let image = LayoutBuilder::simple_image(&layout, "linked").unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(layout.join(format!("blobs/sha256/{}", digest(&image).hex()))).unwrap(),
    )
    .unwrap();
    let layer_hex = manifest["layers"][0]["digest"].as_str().unwrap()[7..].to_string();
    let layer_path = layout.join(format!("blobs/sha256/{layer_hex}"));
    let outside = path_in(&dir, "outside-layer");
    std::fs::rename(&layer_path, &outside).unwrap();
    std::os::unix::fs::symlink(&outside, &layer_path).unwrap();
    let result = oci.import_layout(&layout, &ImportOptions::default());
    assert!(
        matches!(result, Err(OciError::PathOutsideLayout { .. })),
        "{result:?}"
    );
    assert!(oci.list_refs().unwrap().is_empty());
    assert_eq!(blob_count(store), 0);
}

pub fn oversize_manifest_is_refused(store: &DynStore) {
    let oci = OciStore::new(store);
    let dir = scratch();
    let layout = path_in(&dir, "layout");
    let mut builder = LayoutBuilder::new(&layout).unwrap();
    let config = builder
        .blob("application/vnd.oci.image.config.v1+json", b"{}")
        .unwrap();
    let padding = "x".repeat(MAX_DOCUMENT_SIZE as usize);
    let manifest = builder
        .json_blob(
            "application/vnd.oci.image.manifest.v1+json",
            &json!({
                "schemaVersion": 2,
                "config": config,
                "layers": [],
                "annotations": {"padding": padding},
            }),
        )
        .unwrap();
    builder.add_ref(Some("huge"), &manifest);
    builder.finish().unwrap();
    let result = oci.import_layout(&layout, &ImportOptions::default());
    assert!(
        matches!(result, Err(OciError::DocumentTooLarge { .. })),
        "{result:?}"
    );
    assert!(result
        .unwrap_err()
        .to_string()
        .contains(&digest(&manifest).to_string()));
    assert_eq!(blob_count(store), 0);
}

pub fn wrong_digest_or_size_stores_nothing(store: &DynStore) {
    let oci = OciStore::new(store);
    let dir = scratch();

    // A layer whose content no longer matches its digest (same size).
    let layout = path_in(&dir, "corrupt-layer");
    let images = layout_with_refs(&layout, &["corrupt"]);
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(layout.join(format!("blobs/sha256/{}", digest(&images[0]).hex()))).unwrap(),
    )
    .unwrap();
    let layer_hex = manifest["layers"][1]["digest"].as_str().unwrap()[7..].to_string();
    let layer_path = layout.join(format!("blobs/sha256/{layer_hex}"));
    let mut bytes = std::fs::read(&layer_path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&layer_path, &bytes).unwrap();
    let result = oci.import_layout(&layout, &ImportOptions::default());
    let error = result.unwrap_err();
    assert!(matches!(error, OciError::BlobImport { .. }), "{error:?}");
    assert!(error.to_string().contains(&layer_hex), "{error}");
    assert!(oci.list_refs().unwrap().is_empty());
    let stored: Vec<String> = store
        .list(None)
        .unwrap()
        .into_iter()
        .map(|r| r.digest.to_string())
        .collect();
    assert!(!stored.iter().any(|d| d.contains(&layer_hex)));
    assert!(
        !stored.contains(&digest(&images[0]).to_string()),
        "no manifest stored"
    );
    // What was written is GC-able: no ref holds it.
    oci.gc(false).unwrap();
    assert_eq!(blob_count(store), 0);

    // A manifest whose size is wrong: refused before anything is written.
    let layout = path_in(&dir, "wrong-size");
    let mut builder = LayoutBuilder::new(&layout).unwrap();
    let image = builder.image("linux", "amd64", &[layer("a")]).unwrap();
    let mut lying = serde_json::to_value(&image).unwrap();
    lying["size"] = json!(image.size() + 1);
    let lying: oci_store::stores::oci::Descriptor = serde_json::from_value(lying).unwrap();
    builder.add_ref(Some("lying"), &lying);
    builder.finish().unwrap();
    let result = oci.import_layout(&layout, &ImportOptions::default());
    assert!(
        matches!(result, Err(OciError::BadBlob { .. })),
        "{result:?}"
    );
    assert_eq!(blob_count(store), 0);
}

pub fn invalid_ref_names_are_refused(store: &DynStore) {
    let oci = OciStore::new(store);
    let dir = scratch();
    let layout = path_in(&dir, "layout");
    LayoutBuilder::simple_image(&layout, "fine").unwrap();
    for bad in ["../x", "a//b", "-a", "a b", ""] {
        let result = oci.import_layout(
            &layout,
            &ImportOptions {
                dref: Some(bad.to_string()),
                ..Default::default()
            },
        );
        assert!(
            matches!(result, Err(OciError::InvalidRefName { .. })),
            "{bad:?}: {result:?}"
        );
    }
    assert_eq!(blob_count(store), 0);

    // An invalid name in the layout itself.
    let bad_layout = path_in(&dir, "bad");
    LayoutBuilder::simple_image(&bad_layout, "bad name").unwrap();
    let result = oci.import_layout(
        &bad_layout,
        &ImportOptions {
            all: true,
            ..Default::default()
        },
    );
    assert!(
        matches!(result, Err(OciError::InvalidRefName { .. })),
        "{result:?}"
    );
    assert_eq!(blob_count(store), 0);

    oci.import_layout(&layout, &ImportOptions::default())
        .unwrap();
    assert!(matches!(
        oci.tag("fine", "a//b"),
        Err(OciError::InvalidRefName { .. })
    ));
    assert!(matches!(
        oci.export("fine", Some("../up"), &dir.path().join("out"), false),
        Err(OciError::InvalidRefName { .. })
    ));
    assert_eq!(oci.list_refs().unwrap().len(), 1);
}

pub fn malformed_layouts_get_clear_errors(store: &DynStore) {
    let oci = OciStore::new(store);
    let dir = scratch();
    let layout = path_in(&dir, "layout");
    LayoutBuilder::simple_image(&layout, "x").unwrap();

    std::fs::write(layout.join("index.json"), b"{not json").unwrap();
    let error = oci
        .import_layout(&layout, &ImportOptions::default())
        .unwrap_err();
    assert!(
        matches!(error, OciError::InvalidDocument { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("index.json"), "{error}");

    // An unknown digest algorithm.
    let index = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": "md5:d41d8cd98f00b204e9800998ecf8427e",
        "size": 2,
        "annotations": {"org.opencontainers.image.ref.name": "x"},
    }]});
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    let error = oci
        .import_layout(&layout, &ImportOptions::default())
        .unwrap_err();
    assert!(matches!(error, OciError::InvalidDigest { .. }), "{error:?}");
    assert!(error.to_string().contains("md5"), "{error}");

    // Not a layout at all; a corrupt archive.
    let empty = path_in(&dir, "empty");
    std::fs::create_dir_all(&empty).unwrap();
    assert!(matches!(
        oci.import_layout(&empty, &ImportOptions::default()),
        Err(OciError::NotALayout { .. })
    ));
    let garbage = path_in(&dir, "garbage.tar.gz");
    let mut file = std::fs::File::create(&garbage).unwrap();
    file.write_all(&[0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7])
        .unwrap();
    drop(file);
    let error = oci
        .import_layout(&garbage, &ImportOptions::default())
        .unwrap_err();
    assert!(
        matches!(error, OciError::CorruptArchive { .. }),
        "{error:?}"
    );
    assert_eq!(blob_count(store), 0);
}

#[test]
fn archive_traversal_and_absolute_paths_are_refused_default() {
    run(archive_traversal_and_absolute_paths_are_refused);
}
#[test]
fn symlinks_leading_out_are_refused_default() {
    run(symlinks_leading_out_are_refused);
}
#[test]
fn oversize_manifest_is_refused_default() {
    run(oversize_manifest_is_refused);
}
#[test]
fn wrong_digest_or_size_stores_nothing_default() {
    run(wrong_digest_or_size_stores_nothing);
}
#[test]
fn invalid_ref_names_are_refused_default() {
    run(invalid_ref_names_are_refused);
}
#[test]
fn malformed_layouts_get_clear_errors_default() {
    run(malformed_layouts_get_clear_errors);
}
