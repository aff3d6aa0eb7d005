//! What imports hold while they run (DESIGN.md, "An import is all or nothing"): the holds a
//! crashed import left are let go by the next OCI GC, and archives are read within limits.

use oci_store::store::{Holder, WriteOptions, OPERATION_DATA_TYPE};
use oci_store::stores::oci::{
    self, import_holder, ImportOptions, OciError, OciStore, IMPORT_DATA_TYPE,
};
use oci_store::traits::Algorithm;
use oci_store::Digest;

use super::support::*;
use crate::base_store::StoreFixture;
use crate::check::TestResult;
use crate::{ensure, ensure_eq, fail, Context};

/// A crashed import leaves its entry (a `store.operation` entry, or an `oci.import` one from
/// versions before operations) and its holds: a blob only it held, a blob it had already
/// marked `owner.oci` (it crashed while committing) that no ref reaches, and a blob an image
/// imported since shares. A dry-run GC changes nothing; the next GC lets go of all three holds
/// and removes the entry: the first two blobs go, the shared one stays.
pub fn gc_clears_holds_of_crashed_imports(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let oci = OciStore::new(&store);
    let dir = scratch()?;
    let layout = path_in(&dir, "layout");
    let shared = layer("shared")?;
    let mut builder = new_builder(&layout)?;
    let image = builder
        .image("linux", "amd64", std::slice::from_ref(&shared))
        .context("building the image")?;
    builder.add_ref(Some("kept"), &image);
    finish(&builder)?;

    let id = "12345-crashed-0";
    // An import of this version (a base-store operation whose liveness lock nobody holds), and
    // one of the versions before operations.
    let crashed = [
        (
            OPERATION_DATA_TYPE,
            oci::HOLDER.operation(id).name().to_string(),
            oci::HOLDER.operation(id),
        ),
        (IMPORT_DATA_TYPE, id.to_string(), import_holder(id)),
    ];
    for (data_type, key, holder) in crashed {
        store
            .put_data(data_type, &key, b"{}", None)
            .context("recording the crashed import")?;
        let write = |bytes: &[u8]| -> Result<Digest, String> {
            let options = WriteOptions {
                expected_digest: Some(Digest::of_bytes(Algorithm::Sha256, bytes)),
                ..WriteOptions::default()
            };
            let record = store
                .write(
                    bytes,
                    &WriteOptions {
                        holder: Some(holder.clone()),
                        ..options.clone()
                    },
                )
                .context("writing under the import's hold")?;
            Ok(record.digest)
        };
        let only_held = write(b"only the crashed import held this")?;
        let half_committed = write(b"marked oci, reached by no ref")?;
        store
            .mark_owner(&half_committed, &Holder::flavour("oci"))
            .context("marking oci")?;
        let shared_digest = write(&shared)?;
        import_default(&oci, &layout)?;

        let before = store.dump().context("dump")?;
        oci.gc(true).context("dry-run gc")?;
        ensure_eq!(
            store.dump().context("dump")?,
            before,
            "a dry-run gc changed the store"
        );

        oci.gc(false).context("gc")?;
        let now = stored(&store)?;
        ensure!(
            !now.contains(&only_held),
            "a blob only a crashed import held is left"
        );
        ensure!(
            !now.contains(&half_committed),
            "an unreachable blob a crashed import marked oci is left"
        );
        ensure!(now.contains(&shared_digest), "the shared layer went");
        ensure!(
            store.owned_by(&holder).context("owned_by")?.is_empty(),
            "the crashed import still holds blobs"
        );
        ensure_eq!(
            store.list_data(data_type, "").context("list")?.len(),
            0,
            "import entries left ({data_type})"
        );
        let check = oci.check("kept", true).context("checking kept")?;
        ensure!(check.is_complete(), "kept after gc: {check:?}");
        let fsck = store.fsck(Default::default()).context("fsck")?;
        ensure!(fsck.is_clean(), "fsck: {fsck:?}");
    }
    Ok(())
}

/// An archive with more entries, or more bytes, than the import allows is refused with an
/// error that names the limit and how to raise it, and the store is unchanged; with the
/// defaults the same archive imports.
pub fn archive_limits_are_enforced(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let oci = OciStore::new(&store);
    let dir = scratch()?;
    let layout = path_in(&dir, "layout");
    simple_image(&layout, "limited")?;
    let archive = path_in(&dir, "limited.tar.gz");
    tar_layout(&layout, &archive, true)?;
    let before = store.dump().context("dump")?;
    for (options, flag) in [
        (
            ImportOptions {
                max_archive_entries: 3,
                ..ImportOptions::default()
            },
            "--max-archive-entries",
        ),
        (
            ImportOptions {
                max_archive_bytes: 100,
                ..ImportOptions::default()
            },
            "--max-archive-bytes",
        ),
    ] {
        match oci.import_layout(&archive, &options) {
            Err(error @ OciError::ArchiveLimit { .. }) => ensure!(
                error.to_string().contains(flag),
                "the error does not say how to raise the limit: {error}"
            ),
            other => fail!("an archive over a limit ({flag}): {other:?}"),
        }
        ensure_eq!(
            store.dump().context("dump")?,
            before,
            "the store after an archive over a limit ({flag})"
        );
    }
    import_default(&oci, &archive)?;
    ensure_eq!(ref_names(&oci)?, vec!["limited"], "refs");
    Ok(())
}

/// An archive is validated to the image-spec like a directory: an image config that is not
/// JSON is refused from the tar and from the gzip exactly as from the directory, naming the
/// config, and the store is unchanged.
pub fn archives_are_validated_like_directories(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let oci = OciStore::new(&store);
    let dir = scratch()?;
    let layout = path_in(&dir, "layout");
    let mut builder = new_builder(&layout)?;
    let doing = "building the invalid image";
    let config = builder
        .blob("application/vnd.oci.image.config.v1+json", b"not json")
        .context(doing)?;
    let layer_bytes = layer("valid layer")?;
    let layer = builder
        .blob("application/vnd.oci.image.layer.v1.tar+gzip", &layer_bytes)
        .context(doing)?;
    let manifest = builder
        .json_blob(
            "application/vnd.oci.image.manifest.v1+json",
            &serde_json::json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": config,
                "layers": [layer],
            }),
        )
        .context(doing)?;
    builder.add_ref(Some("invalid"), &manifest);
    finish(&builder)?;
    let plain = path_in(&dir, "invalid.tar");
    tar_layout(&layout, &plain, false)?;
    let gzip = path_in(&dir, "invalid.tar.gz");
    tar_layout(&layout, &gzip, true)?;

    let before = store.dump().context("dump")?;
    let from_directory = match oci.import_layout(&layout, &ImportOptions::default()) {
        Err(error) => error.to_string(),
        Ok(report) => fail!("a config that is not JSON was accepted: {report:?}"),
    };
    let config_digest = digest_string(&config);
    ensure!(
        from_directory.contains(&config_digest),
        "the error does not name the config: {from_directory}"
    );
    for archive in [&plain, &gzip] {
        match oci.import_layout(archive, &ImportOptions::default()) {
            Err(error) => ensure!(
                error.to_string().contains(&config_digest),
                "from {}: the error does not name the config: {error}",
                archive.display()
            ),
            Ok(report) => fail!(
                "from {}: a config that is not JSON was accepted: {report:?}",
                archive.display()
            ),
        }
        ensure_eq!(
            store.dump().context("dump")?,
            before,
            "the store after refusing {}",
            archive.display()
        );
    }
    Ok(())
}
