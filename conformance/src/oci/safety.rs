//! Bad input gets a clear error and changes nothing already stored (DESIGN.md invariant 7);
//! what a failed import did write is garbage for the next OCI GC.

use std::io::Write;
use std::path::Path;

use oci_store::stores::oci::{Descriptor, ImportOptions, OciError, OciStore, MAX_DOCUMENT_SIZE};
use serde_json::json;

use super::support::*;
use crate::base_store::StoreFixture;
use crate::check::TestResult;
use crate::{ensure, ensure_eq, fail, Context};

/// Appends a raw tar member whose name is written as-is (the tar crate refuses `..` when
/// building, which is the point of these tests).
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

pub fn archive_traversal_and_absolute_paths_are_refused(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let oci = OciStore::new(&store);
    let dir = scratch()?;
    // Unique per run: tests of several combinations run at once.
    let absolute = format!(
        "/tmp/oci-store-absolute-escape-{}",
        dir.path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    for name in ["../escaped", absolute.as_str(), "a/../../escaped"] {
        let mut raw = Vec::new();
        append_raw(&mut raw, "oci-layout", tar::EntryType::Regular, None, b"{}");
        append_raw(&mut raw, name, tar::EntryType::Regular, None, b"evil");
        let archive = path_in(&dir, "evil.tar");
        std::fs::write(&archive, finish_raw(raw)).context("writing the archive")?;
        let result = oci.import_layout(&archive, &ImportOptions::default());
        ensure!(
            matches!(result, Err(OciError::UnsafeArchiveEntry { .. })),
            "{name}: {result:?}"
        );
    }
    ensure!(
        !store.dir().join("tmp/escaped").exists(),
        "a member escaped the extraction directory"
    );
    ensure!(
        !store.dir().join("escaped").exists(),
        "a member escaped into the store directory"
    );
    ensure!(
        !Path::new(&absolute).exists(),
        "an absolute member was written to {absolute}"
    );
    ensure_eq!(blob_count(&store)?, 0, "blobs stored");
    Ok(())
}

pub fn symlinks_leading_out_are_refused(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let oci = OciStore::new(&store);
    let dir = scratch()?;
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
        std::fs::write(&archive, finish_raw(raw)).context("writing the archive")?;
        let result = oci.import_layout(&archive, &ImportOptions::default());
        ensure!(
            matches!(result, Err(OciError::UnsafeArchiveEntry { .. })),
            "{link} -> {target}: {result:?}"
        );
    }

    // In a layout directory: a blob that is a symlink to a file outside the layout.
    let layout = path_in(&dir, "layout");
    let image = simple_image(&layout, "linked")?;
    let layer_path = blob_path_in(&layout, &layer_digest_in(&layout, &image, 0)?);
    let outside = path_in(&dir, "outside-layer");
    std::fs::rename(&layer_path, &outside).context("moving the layer out")?;
    std::os::unix::fs::symlink(&outside, &layer_path).context("linking the layer")?;
    let result = oci.import_layout(&layout, &ImportOptions::default());
    ensure!(
        matches!(result, Err(OciError::PathOutsideLayout { .. })),
        "a blob linked out of the layout: {result:?}"
    );
    ensure!(ref_names(&oci)?.is_empty(), "a refused import left refs");
    ensure_eq!(blob_count(&store)?, 0, "blobs stored");
    Ok(())
}

pub fn oversize_manifest_is_refused(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let oci = OciStore::new(&store);
    let dir = scratch()?;
    let layout = path_in(&dir, "layout");
    let doing = "building the oversize manifest";
    let mut builder = new_builder(&layout)?;
    let config = builder
        .blob("application/vnd.oci.image.config.v1+json", b"{}")
        .context(doing)?;
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
        .context(doing)?;
    builder.add_ref(Some("huge"), &manifest);
    finish(&builder)?;
    match oci.import_layout(&layout, &ImportOptions::default()) {
        Err(error @ OciError::DocumentTooLarge { .. }) => ensure!(
            error.to_string().contains(&digest(&manifest)?.to_string()),
            "the error does not name the manifest: {error}"
        ),
        other => fail!("an oversize manifest: {other:?}"),
    }
    ensure_eq!(blob_count(&store)?, 0, "blobs stored");
    Ok(())
}

pub fn wrong_digest_or_size_stores_nothing(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let oci = OciStore::new(&store);
    let dir = scratch()?;

    // A layer whose content no longer matches its digest (same size).
    let layout = path_in(&dir, "corrupt-layer");
    let images = layout_with_refs(&layout, &["corrupt"])?;
    let layer_digest = layer_digest_in(&layout, &images[0], 1)?;
    let layer_hex = layer_digest.hex().to_string();
    corrupt_file(&blob_path_in(&layout, &layer_digest))?;
    match oci.import_layout(&layout, &ImportOptions::default()) {
        Err(error @ OciError::BlobImport { .. }) => ensure!(
            error.to_string().contains(&layer_hex),
            "the error does not name the layer: {error}"
        ),
        other => fail!("a corrupt layer: {other:?}"),
    }
    ensure!(ref_names(&oci)?.is_empty(), "a failed import left refs");
    let stored_now = stored(&store)?;
    ensure!(
        !stored_now.contains(&layer_digest),
        "the corrupt layer is stored"
    );
    ensure!(
        !stored_now.contains(&digest(&images[0])?),
        "the manifest is stored"
    );
    // What was written is GC-able: no ref holds it.
    oci.gc(false).context("gc")?;
    ensure_eq!(blob_count(&store)?, 0, "blobs left after gc");

    // A manifest whose size is wrong: refused before anything is written.
    let layout = path_in(&dir, "wrong-size");
    let mut builder = new_builder(&layout)?;
    let image = builder
        .image("linux", "amd64", &[layer("a")?])
        .context("building the image")?;
    let mut lying = serde_json::to_value(&image).context("descriptor")?;
    lying["size"] = json!(image.size() + 1);
    let lying: Descriptor = serde_json::from_value(lying).context("descriptor")?;
    builder.add_ref(Some("lying"), &lying);
    finish(&builder)?;
    let result = oci.import_layout(&layout, &ImportOptions::default());
    ensure!(
        matches!(result, Err(OciError::BadBlob { .. })),
        "a manifest of the wrong size: {result:?}"
    );
    ensure_eq!(blob_count(&store)?, 0, "blobs stored");
    Ok(())
}

pub fn invalid_ref_names_are_refused(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let oci = OciStore::new(&store);
    let dir = scratch()?;
    let layout = path_in(&dir, "layout");
    simple_image(&layout, "fine")?;
    for bad in ["../x", "a//b", "-a", "a b", ""] {
        let result = oci.import_layout(
            &layout,
            &ImportOptions {
                dref: Some(bad.to_string()),
                ..Default::default()
            },
        );
        ensure!(
            matches!(result, Err(OciError::InvalidRefName { .. })),
            "--dref {bad:?}: {result:?}"
        );
    }
    ensure_eq!(blob_count(&store)?, 0, "blobs stored");

    // An invalid name in the layout itself.
    let bad_layout = path_in(&dir, "bad");
    simple_image(&bad_layout, "bad name")?;
    let result = oci.import_layout(
        &bad_layout,
        &ImportOptions {
            all: true,
            ..Default::default()
        },
    );
    ensure!(
        matches!(result, Err(OciError::InvalidRefName { .. })),
        "a layout ref named \"bad name\": {result:?}"
    );
    ensure_eq!(blob_count(&store)?, 0, "blobs stored");

    import_default(&oci, &layout)?;
    let tagged = oci.tag("fine", "a//b");
    ensure!(
        matches!(tagged, Err(OciError::InvalidRefName { .. })),
        "tag to a//b: {tagged:?}"
    );
    let exported = oci.export("fine", Some("../up"), &dir.path().join("out"), false);
    ensure!(
        matches!(exported, Err(OciError::InvalidRefName { .. })),
        "export as ../up: {exported:?}"
    );
    ensure_eq!(ref_names(&oci)?, vec!["fine"], "refs");
    Ok(())
}

pub fn malformed_layouts_get_clear_errors(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let oci = OciStore::new(&store);
    let dir = scratch()?;
    let layout = path_in(&dir, "layout");
    simple_image(&layout, "x")?;

    std::fs::write(layout.join("index.json"), b"{not json").context("writing index.json")?;
    match oci.import_layout(&layout, &ImportOptions::default()) {
        Err(error @ OciError::InvalidDocument { .. }) => ensure!(
            error.to_string().contains("index.json"),
            "the error does not name index.json: {error}"
        ),
        other => fail!("a malformed index.json: {other:?}"),
    }

    // An unknown digest algorithm.
    let index = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": "md5:d41d8cd98f00b204e9800998ecf8427e",
        "size": 2,
        "annotations": {"org.opencontainers.image.ref.name": "x"},
    }]});
    std::fs::write(layout.join("index.json"), index.to_string()).context("writing index.json")?;
    match oci.import_layout(&layout, &ImportOptions::default()) {
        Err(error @ OciError::InvalidDigest { .. }) => ensure!(
            error.to_string().contains("md5"),
            "the error does not name the algorithm: {error}"
        ),
        other => fail!("an md5 digest: {other:?}"),
    }

    // Not a layout at all; a corrupt archive.
    let empty = path_in(&dir, "empty");
    std::fs::create_dir_all(&empty).context("creating an empty directory")?;
    let result = oci.import_layout(&empty, &ImportOptions::default());
    ensure!(
        matches!(result, Err(OciError::NotALayout { .. })),
        "an empty directory: {result:?}"
    );
    let garbage = path_in(&dir, "garbage.tar.gz");
    let mut file = std::fs::File::create(&garbage).context("creating the archive")?;
    file.write_all(&[0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7])
        .context("writing the archive")?;
    drop(file);
    let result = oci.import_layout(&garbage, &ImportOptions::default());
    ensure!(
        matches!(result, Err(OciError::CorruptArchive { .. })),
        "a corrupt gzip archive: {result:?}"
    );
    ensure_eq!(blob_count(&store)?, 0, "blobs stored");
    Ok(())
}

/// Invariant 7 with something already stored: a failed import (a corrupt layer that comes
/// after a config and two layers it writes first, from a directory and from an archive)
/// leaves the store's full dump byte-identical, without a GC: what it wrote is gone again, what
/// was there before keeps its marks and refs.
pub fn failed_import_leaves_the_dump_unchanged(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let oci = OciStore::new(&store);
    let dir = scratch()?;
    let good = path_in(&dir, "good");
    simple_image(&good, "good")?;
    import_default(&oci, &good)?;

    // The corrupt layer comes after two layers only this image has: they are written first.
    let bad = path_in(&dir, "bad");
    let mut builder = new_builder(&bad)?;
    let layers = [layer("fresh-1")?, layer("fresh-2")?, layer("corrupt")?];
    let image = builder
        .image("linux", "amd64", &layers)
        .context("building the image")?;
    builder.add_ref(Some("bad"), &image);
    finish(&builder)?;
    let corrupt_digest = layer_digest_in(&bad, &image, 2)?;
    corrupt_file(&blob_path_in(&bad, &corrupt_digest))?;
    let archive = path_in(&dir, "bad.tar");
    tar_layout(&bad, &archive, false)?;
    let gzip = path_in(&dir, "bad.tar.gz");
    tar_layout(&bad, &gzip, true)?;

    let before = store.dump().context("dump")?;
    for source in [&bad, &archive, &gzip] {
        let result = oci.import_layout(source, &ImportOptions::default());
        match result {
            Err(error @ OciError::BlobImport { .. }) => ensure!(
                error.to_string().contains(corrupt_digest.hex()),
                "the error does not name the corrupt layer: {error}"
            ),
            other => fail!(
                "importing {} with a corrupt layer: {other:?}",
                source.display()
            ),
        }
        ensure_eq!(
            store.dump().context("dump")?,
            before,
            "the store after the failed import of {}",
            source.display()
        );
        let fsck = store.fsck(Default::default()).context("fsck")?;
        ensure!(fsck.is_clean(), "fsck after the failed import: {fsck:?}");
    }
    let check = oci.check("good", true).context("checking good")?;
    ensure!(
        check.is_complete(),
        "good after the failed imports: {check:?}"
    );
    Ok(())
}

/// An import that is refused lets go only of its own holds: another import of the same blobs
/// running at the same time in another thread still succeeds, and its image is complete, round
/// after round (and after a GC).
pub fn refused_import_beside_an_import_of_the_same_blobs(fixture: &StoreFixture) -> TestResult {
    const ROUNDS: usize = 8;
    let store = fixture.open()?;
    let dir = scratch()?;
    let shared = [layer("shared-1")?, layer("shared-2")?];
    let good = path_in(&dir, "good");
    let mut builder = new_builder(&good)?;
    let image = builder
        .image("linux", "amd64", &shared)
        .context("building the image")?;
    builder.add_ref(Some("good"), &image);
    finish(&builder)?;
    let bad = path_in(&dir, "bad");
    let mut builder = new_builder(&bad)?;
    let bad_layers = [shared[0].clone(), shared[1].clone(), layer("corrupt")?];
    let bad_image = builder
        .image("linux", "amd64", &bad_layers)
        .context("building the image")?;
    builder.add_ref(Some("bad"), &bad_image);
    finish(&builder)?;
    corrupt_file(&blob_path_in(&bad, &layer_digest_in(&bad, &bad_image, 2)?))?;
    let bad_archive = path_in(&dir, "bad.tar");
    tar_layout(&bad, &bad_archive, false)?;

    let (imported, refused) = std::thread::scope(|scope| {
        let importer = scope.spawn(|| -> TestResult {
            let oci = OciStore::new(&store);
            for round in 0..ROUNDS {
                import_default(&oci, &good).context(format!("round {round}"))?;
                let check = oci.check("good", true).context("checking")?;
                ensure!(check.is_complete(), "round {round}: {check:?}");
                oci.remove_ref("good").context("removing the ref")?;
            }
            import_default(&oci, &good).context("last round")?;
            Ok(())
        });
        let refuser = scope.spawn(|| -> TestResult {
            let oci = OciStore::new(&store);
            for round in 0..ROUNDS {
                let source = if round % 2 == 0 { &bad } else { &bad_archive };
                let result = oci.import_layout(source, &ImportOptions::default());
                ensure!(
                    matches!(result, Err(OciError::BlobImport { .. })),
                    "round {round}: {result:?}"
                );
            }
            Ok(())
        });
        let join = |handle: std::thread::ScopedJoinHandle<'_, TestResult>| {
            handle
                .join()
                .unwrap_or_else(|_| Err("a thread panicked".to_string()))
        };
        (join(importer), join(refuser))
    });
    imported?;
    refused?;
    let oci = OciStore::new(&store);
    oci.gc(false).context("gc")?;
    let check = oci.check("good", true).context("checking good")?;
    ensure!(check.is_complete(), "good at the end: {check:?}");
    ensure_eq!(ref_names(&oci)?, vec!["good"], "refs at the end");
    ensure_eq!(
        blob_count(&store)?,
        4,
        "blobs at the end: the good image only"
    );
    Ok(())
}
