//! Import and export of layouts, archives, pre-1.0 layouts, nested indexes, Docker media types
//! and artifacts with referrers; refs (tag, remove, list).

use oci_store::stores::oci::{ImportOptions, OciError, OciStore};
use serde_json::json;

use super::support::*;
use crate::base_store::StoreFixture;
use crate::check::TestResult;
use crate::{ensure, ensure_eq, Context};

pub fn round_trip_is_blob_for_blob(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let oci = OciStore::new(&store);
    let dir = scratch()?;
    let source = path_in(&dir, "source");
    let image = simple_image(&source, "demo:latest")?;

    let report = import_default(&oci, &source)?;
    ensure_eq!(report.refs.len(), 1, "refs imported");
    ensure_eq!(report.refs[0].name, "demo:latest", "imported ref name");
    ensure_eq!(
        report.blobs_written,
        4,
        "blobs written: config, two layers, manifest"
    );
    ensure_eq!(report.blobs_skipped, 0, "blobs skipped on a first import");

    let again = import_default(&oci, &source)?;
    ensure_eq!(
        (again.blobs_written, again.blobs_skipped),
        (0, 4),
        "importing again reads nothing new"
    );

    let exported = path_in(&dir, "exported");
    let export = oci
        .export("demo:latest", None, &exported, false)
        .context("exporting demo:latest")?;
    ensure_eq!(export.blobs, 4, "blobs exported");
    ensure!(
        blob_files(&source)? == blob_files(&exported)?,
        "the export holds other blobs than the source layout"
    );
    let entries = index_entries(&exported)?;
    ensure_eq!(entries.len(), 1, "index.json entries of the export");
    ensure_eq!(
        entries[0]["digest"],
        digest_string(&image),
        "digest of the exported entry"
    );
    ensure_eq!(
        ref_names_in_layout(&exported)?,
        vec!["demo:latest"],
        "ref names in the export"
    );
    ensure!(
        exported.join("oci-layout").is_file(),
        "the export has no oci-layout file"
    );

    let refs = oci.list_refs().context("listing refs")?;
    ensure_eq!(refs.len(), 1, "refs listed");
    ensure_eq!(refs[0].digest, digest(&image)?, "digest of the listed ref");
    ensure_eq!(
        refs[0].platforms,
        vec!["linux/amd64"],
        "platforms of the listed ref"
    );
    let check = oci.check("demo:latest", true).context("checking")?;
    ensure!(check.is_complete(), "check is not complete: {check:?}");
    ensure_eq!(check.blobs_present, 4, "blobs the check found");
    Ok(())
}

pub fn sref_dref_and_all_choose_refs(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let oci = OciStore::new(&store);
    let dir = scratch()?;
    let layout = path_in(&dir, "layout");
    layout_with_refs(&layout, &["one", "two"])?;

    let ambiguous = oci.import_layout(&layout, &ImportOptions::default());
    ensure!(
        matches!(ambiguous, Err(OciError::RefSelection { .. })),
        "two entries and no --sref: {ambiguous:?}"
    );
    ensure!(ref_names(&oci)?.is_empty(), "a refused import left refs");

    let missing = oci.import_layout(
        &layout,
        &ImportOptions {
            sref: Some("three".into()),
            ..Default::default()
        },
    );
    match missing {
        Err(error) => ensure!(
            error.to_string().contains("three"),
            "the error does not name the missing ref: {error}"
        ),
        Ok(report) => crate::fail!("importing a ref the layout lacks succeeded: {report:?}"),
    }

    let renamed = oci
        .import_layout(
            &layout,
            &ImportOptions {
                sref: Some("two".into()),
                dref: Some("renamed:v2".into()),
                ..ImportOptions::default()
            },
        )
        .context("importing two as renamed:v2")?;
    ensure_eq!(renamed.refs[0].name, "renamed:v2", "name given by --dref");
    ensure_eq!(ref_names(&oci)?, vec!["renamed:v2"], "refs after --dref");

    let conflicting = oci.import_layout(
        &layout,
        &ImportOptions {
            dref: Some("x".into()),
            all: true,
            ..ImportOptions::default()
        },
    );
    ensure!(
        matches!(conflicting, Err(OciError::Invalid(_))),
        "--all with --dref: {conflicting:?}"
    );

    import_all(&oci, &layout)?;
    ensure_eq!(
        ref_names(&oci)?,
        vec!["one", "renamed:v2", "two"],
        "refs after --all"
    );

    let out = path_in(&dir, "out");
    oci.export("one", Some("exported:1"), &out, false)
        .context("exporting one as exported:1")?;
    ensure_eq!(
        ref_names_in_layout(&out)?,
        vec!["exported:1"],
        "export with dref names the layout entry"
    );
    Ok(())
}

pub fn tag_and_remove_refs(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let oci = OciStore::new(&store);
    let dir = scratch()?;
    let layout = path_in(&dir, "layout");
    let image = simple_image(&layout, "app")?;
    import_default(&oci, &layout)?;
    oci.tag("app", "app:copy")
        .context("tagging app as app:copy")?;
    oci.remove_ref("app").context("removing app")?;
    let refs = oci.list_refs().context("listing refs")?;
    ensure_eq!(refs.len(), 1, "refs left");
    ensure_eq!(
        (refs[0].name.as_str(), &refs[0].digest),
        ("app:copy", &digest(&image)?),
        "the copy outlives the original"
    );
    let again = oci.remove_ref("app");
    ensure!(
        matches!(again, Err(OciError::RefNotFound(_))),
        "removing a removed ref: {again:?}"
    );
    let unknown = oci.tag("nope", "x");
    ensure!(
        matches!(unknown, Err(OciError::RefNotFound(_))),
        "tagging an unknown ref: {unknown:?}"
    );
    Ok(())
}

pub fn pre_1_0_layout_with_both_blob_forms(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let oci = OciStore::new(&store);
    let dir = scratch()?;
    let layout = path_in(&dir, "old");
    let images = layout_with_refs(&layout, &["old-one"])?;
    let doing = "turning the layout into a pre-1.0 one";
    std::fs::remove_file(layout.join("index.json")).context(doing)?;
    std::fs::create_dir_all(layout.join("refs")).context(doing)?;
    let descriptor = serde_json::to_vec(&images[0]).context(doing)?;
    std::fs::write(layout.join("refs/old-one"), descriptor).context(doing)?;
    // Half the blobs in the dashed form: blobs/sha256-<hex>.
    let mut moved = 0;
    let mut names: Vec<_> = std::fs::read_dir(layout.join("blobs/sha256"))
        .context(doing)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .context(doing)?;
    names.sort();
    for (position, path) in names.iter().enumerate() {
        if position % 2 == 0 {
            let hex = path
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| format!("odd blob file name {}", path.display()))?;
            std::fs::rename(path, layout.join(format!("blobs/sha256-{hex}"))).context(doing)?;
            moved += 1;
        }
    }
    ensure!(moved > 0, "no blob was moved to the dashed form");

    let report = import_default(&oci, &layout)?;
    ensure_eq!(report.refs[0].name, "old-one", "ref name from refs/old-one");
    ensure_eq!(report.blobs_written, 4, "blobs written");
    let check = oci.check("old-one", true).context("checking old-one")?;
    ensure!(check.is_complete(), "check is not complete: {check:?}");
    Ok(())
}

pub fn oci_archives_plain_and_gzip(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let oci = OciStore::new(&store);
    let dir = scratch()?;
    let layout = path_in(&dir, "layout");
    layout_with_refs(&layout, &["plain", "zipped"])?;
    let plain = path_in(&dir, "image.tar");
    let zipped = path_in(&dir, "image.tar.gz");
    tar_layout(&layout, &plain, false)?;
    tar_layout(&layout, &zipped, true)?;

    let options = |name: &str| ImportOptions {
        sref: Some(name.to_string()),
        ..Default::default()
    };
    oci.import_layout(&plain, &options("plain"))
        .context("importing the plain archive")?;
    oci.import_layout(&zipped, &options("zipped"))
        .context("importing the gzip archive")?;
    ensure_eq!(oci.list_refs().context("listing")?.len(), 2, "refs");
    let scratch_dir = store.dir().join("tmp");
    if scratch_dir.exists() {
        let left = std::fs::read_dir(&scratch_dir)
            .context(format!("listing {}", scratch_dir.display()))?
            .count();
        ensure_eq!(left, 0, "files left in the store's tmp/");
    }
    // Streamed before their descriptors were read, the blobs still get their media types.
    let manifest = digest(&oci.get_ref("zipped").context("ref zipped")?)?;
    ensure_eq!(
        store.info(&manifest).context("info")?.media_type,
        "application/vnd.oci.image.manifest.v1+json",
        "media type recorded for a manifest imported from an archive"
    );

    // Export as an archive and import it into a second store of the same kind: same blobs.
    let archive = path_in(&dir, "out.tar");
    oci.export("plain", None, &archive, true)
        .context("exporting plain as an archive")?;
    let second_dir = scratch()?;
    let second = fixture.open_in(&second_dir.path().join("store"))?;
    let second_oci = OciStore::new(&second);
    import_default(&second_oci, &archive)?;
    let first_digest = oci.get_ref("plain").context("ref plain")?;
    ensure_eq!(
        second_oci.list_refs().context("listing")?[0].digest,
        digest(&first_digest)?,
        "the archive carries the same image"
    );
    let check = second_oci.check("plain", true).context("checking")?;
    ensure!(check.is_complete(), "check in the second store: {check:?}");
    Ok(())
}

pub fn nested_index_and_multi_arch(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let oci = OciStore::new(&store);
    let dir = scratch()?;
    let layout = path_in(&dir, "layout");
    let doing = "building the nested layout";
    let mut builder = new_builder(&layout)?;
    let amd64 = builder
        .image("linux", "amd64", &[layer("amd64")?])
        .context(doing)?;
    let arm64 = builder
        .image("linux", "arm64", &[layer("arm64")?])
        .context(doing)?;
    let inner = builder
        .index(&[(amd64, "linux", "amd64"), (arm64, "linux", "arm64")])
        .context(doing)?;
    let outer = builder
        .json_blob(
            "application/vnd.oci.image.index.v1+json",
            &json!({"schemaVersion": 2, "manifests": [inner]}),
        )
        .context(doing)?;
    builder.add_ref(Some("multi"), &inner);
    builder.add_ref(Some("nested"), &outer);
    finish(&builder)?;

    let report = import_all(&oci, &layout)?;
    ensure_eq!(
        report.blobs_written,
        8,
        "2 x (config, layer, manifest) + inner + outer"
    );
    let refs = oci.list_refs().context("listing")?;
    let multi = refs
        .iter()
        .find(|r| r.name == "multi")
        .ok_or_else(|| format!("no ref multi in {refs:?}"))?;
    ensure_eq!(
        multi.platforms,
        vec!["linux/amd64", "linux/arm64"],
        "platforms of the index"
    );
    let check = oci.check("nested", false).context("checking nested")?;
    ensure_eq!(check.blobs_present, 8, "blobs nested reaches");
    ensure!(check.is_complete(), "check is not complete: {check:?}");

    let out = path_in(&dir, "out");
    oci.export("nested", None, &out, false)
        .context("exporting nested")?;
    ensure!(
        blob_files(&out)? == blob_files(&layout)?,
        "the export of nested holds other blobs than the layout"
    );
    Ok(())
}

pub fn docker_media_types_and_absent_foreign_layer(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let oci = OciStore::new(&store);
    let dir = scratch()?;
    let layout = path_in(&dir, "layout");
    let doing = "building the Docker layout";
    let mut builder = new_builder(&layout)?;
    let config = builder
        .json_blob(
            "application/vnd.docker.container.image.v1+json",
            &json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}}),
        )
        .context(doing)?;
    let layer_descriptor = builder
        .blob(
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            &layer("docker")?,
        )
        .context(doing)?;
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
        .context(doing)?;
    let mut entry = serde_json::to_value(&manifest).context(doing)?;
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
        .context(doing)?;
    builder.add_ref(Some("docker:list"), &list);
    finish(&builder)?;

    let report = import_default(&oci, &layout)?;
    ensure_eq!(
        report.blobs_written,
        4,
        "blobs written: list, manifest, config, layer"
    );
    let check = oci.check("docker:list", true).context("checking")?;
    ensure!(check.is_complete(), "check is not complete: {check:?}");
    ensure_eq!(
        check.absent_optional.len(),
        1,
        "absent non-distributable layers"
    );
    ensure_eq!(
        oci.list_refs().context("listing")?[0].platforms,
        vec!["windows/amd64"],
        "platforms of the manifest list"
    );

    let out = path_in(&dir, "out");
    oci.export("docker:list", None, &out, false)
        .context("exporting docker:list")?;
    ensure!(
        blob_files(&out)? == blob_files(&layout)?,
        "the export holds other blobs than the layout"
    );
    Ok(())
}

pub fn artifacts_with_subject_are_referrers(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let oci = OciStore::new(&store);
    let dir = scratch()?;
    let layout = path_in(&dir, "layout");
    let doing = "building the layout with referrers";
    let mut builder = new_builder(&layout)?;
    let image = builder
        .image("linux", "amd64", &[layer("app")?])
        .context(doing)?;
    let signature_manifest = signature(&mut builder, &image, "signed")?;
    let sbom = builder
        .blob("application/spdx+json", b"{\"spdx\":1}")
        .context(doing)?;
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
        .context(doing)?;
    builder.add_ref(Some("app"), &image);
    // Referrers travel as unnamed index entries, as oras and cosign lay them out.
    builder.add_ref(None, &signature_manifest);
    builder.add_ref(None, &artifact);
    finish(&builder)?;

    let report = oci
        .import_layout(
            &layout,
            &ImportOptions {
                sref: Some("app".into()),
                ..Default::default()
            },
        )
        .context("importing app")?;
    ensure_eq!(report.referrers, 2, "referrers imported with app");
    let image_digest = digest(&image)?;
    let all = oci.referrers(&image_digest, None).context("referrers")?;
    ensure_eq!(all.len(), 2, "referrers of the image");
    let signatures = oci
        .referrers(&image_digest, Some(SIGNATURE_TYPE))
        .context("referrers of the signature type")?;
    ensure_eq!(signatures.len(), 1, "referrers of the signature type");
    ensure_eq!(
        signatures[0].digest(),
        signature_manifest.digest(),
        "the signature referrer"
    );
    let none = oci
        .referrers(&image_digest, Some("application/none"))
        .context("referrers of an unknown type")?;
    ensure!(none.is_empty(), "referrers of an unknown type: {none:?}");

    // A tagged artifact reaches its subject.
    let sig_layout = path_in(&dir, "sig");
    let mut sig_builder = new_builder(&sig_layout)?;
    sig_builder.add_ref(Some("sig"), &signature_manifest);
    finish(&sig_builder)?;
    // Copy the blobs the signature needs (its subject is optional; include it anyway).
    for (name, bytes) in blob_files(&layout)? {
        let target = sig_layout.join("blobs").join(name);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).context("copying blobs")?;
        }
        std::fs::write(&target, bytes).context("copying blobs")?;
    }
    import_default(&oci, &sig_layout)?;
    let check = oci.check("sig", false).context("checking sig")?;
    ensure!(check.is_complete(), "check is not complete: {check:?}");
    ensure_eq!(
        check.blobs_present,
        6,
        "signature, config, payload + image (3)"
    );
    Ok(())
}

pub fn subject_may_travel_without_its_image(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let oci = OciStore::new(&store);
    let dir = scratch()?;
    let layout = path_in(&dir, "layout");
    let mut builder = new_builder(&layout)?;
    let image = builder
        .image("linux", "amd64", &[layer("gone")?])
        .context("building the image")?;
    let signature_manifest = signature(&mut builder, &image, "lonely")?;
    builder.add_ref(Some("sig"), &signature_manifest);
    finish(&builder)?;
    // Remove the image manifest: the signature's subject is absent.
    let manifest_path = builder.blob_path(&digest(&image)?);
    std::fs::remove_file(&manifest_path).context("removing the image manifest")?;
    import_default(&oci, &layout)?;
    let check = oci.check("sig", false).context("checking sig")?;
    ensure!(check.is_complete(), "check is not complete: {check:?}");
    ensure_eq!(check.absent_optional.len(), 1, "absent subjects");
    let referrers = oci.referrers(&digest(&image)?, None).context("referrers")?;
    ensure_eq!(referrers.len(), 1, "referrers of the absent subject");
    Ok(())
}

/// DESIGN.md: "the mark is by digest, not by descriptor (a blob shared under two media types
/// is one blob)". An artifact carries an image manifest as a plain blob (`application/
/// octet-stream`), and a ref names the same manifest as an image. Whichever the walk meets
/// first, the image's config and layers are imported, exported, checked and kept by GC.
pub fn one_blob_under_two_media_types(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let oci = OciStore::new(&store);
    let dir = scratch()?;
    let layout = path_in(&dir, "layout");
    let doing = "building the layout";
    let mut builder = new_builder(&layout)?;
    let image = builder
        .image("linux", "amd64", &[layer("carried")?])
        .context(doing)?;
    let mut as_plain_blob = serde_json::to_value(&image).context(doing)?;
    as_plain_blob["mediaType"] = json!("application/octet-stream");
    let bundle = builder
        .json_blob(
            "application/vnd.oci.artifact.manifest.v1+json",
            &json!({
                "mediaType": "application/vnd.oci.artifact.manifest.v1+json",
                "artifactType": "application/vnd.example.bundle",
                "blobs": [as_plain_blob],
            }),
        )
        .context(doing)?;
    // Refs are walked in name order ("a-bundle" first) and index order.
    builder.add_ref(Some("a-bundle"), &bundle);
    builder.add_ref(Some("b-image"), &image);
    finish(&builder)?;

    let report = import_all(&oci, &layout)?;
    ensure_eq!(
        report.blobs_written,
        4,
        "bundle, image manifest, config, layer: {report:?}"
    );
    let check = oci.check("b-image", true).context("checking b-image")?;
    ensure!(check.is_complete(), "b-image after import: {check:?}");
    ensure_eq!(check.blobs_present, 3, "blobs b-image reaches");

    let gc = oci.gc(false).context("gc")?;
    ensure!(gc.swept.is_empty(), "gc swept what b-image reaches: {gc:?}");
    let check = oci.check("b-image", true).context("checking b-image")?;
    ensure!(check.is_complete(), "b-image after gc: {check:?}");

    let out = path_in(&dir, "out");
    let export = oci
        .export("b-image", None, &out, false)
        .context("exporting b-image")?;
    ensure_eq!(export.blobs, 3, "blobs exported");
    ensure_eq!(
        layout_digests(&out)?.len(),
        3,
        "blob files in the export of b-image"
    );
    Ok(())
}
