//! `check` on a damaged store: it names what is missing or corrupt instead of failing.

use oci_store::stores::oci::{OciError, OciStore};
use oci_store::{Digest, Store};

use super::support::*;
use crate::base_store::{corrupt_blob_file, StoreFixture};
use crate::check::TestResult;
use crate::{ensure, ensure_eq, Context};

/// A layer whose content is gone from the blob store (index record left, as a crash or a
/// damaged disk leaves it) and, where the backend keeps blob files, a layer whose content is
/// corrupt: `check --verify` reports both by digest, and the ref is not complete.
pub fn check_verify_names_damaged_blobs(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let oci = OciStore::new(&store);
    let dir = scratch()?;
    let layout = path_in(&dir, "layout");
    let image = simple_image(&layout, "damaged")?;
    import_default(&oci, &layout)?;
    let missing = layer_digest_in(&layout, &image, 0)?;
    let corrupt = layer_digest_in(&layout, &image, 1)?;
    let healthy = oci.check("damaged", true).context("checking")?;
    ensure!(healthy.is_complete(), "before the damage: {healthy:?}");

    store
        .blob_store()
        .delete(&missing)
        .context("deleting a layer's content")?;
    let corrupted = corrupt_blob_file(store.dir(), &corrupt)?;

    let report = oci
        .check("damaged", true)
        .context("check --verify must report damage, not fail")?;
    ensure!(
        !report.is_complete(),
        "a damaged ref is complete: {report:?}"
    );
    let missing_digests: Vec<_> = report.missing.iter().map(|m| &m.digest).collect();
    ensure_eq!(missing_digests, vec![&missing], "missing blobs: {report:?}");
    ensure_eq!(
        report.blobs_present,
        healthy.blobs_present - 1,
        "blobs present: {report:?}"
    );
    if corrupted {
        let corrupt_digests: Vec<_> = report.corrupt.iter().map(|(d, _)| d).collect();
        ensure_eq!(corrupt_digests, vec![&corrupt], "corrupt blobs: {report:?}");
    }
    Ok(())
}

/// What a damaged store does to a blob's content.
#[derive(Clone, Copy, Debug)]
enum Damage {
    /// One byte flipped: same size, wrong digest (blob backends that keep files only).
    FlipByte,
    /// Cut short: a tar member must not be padded to its header's size (files only).
    Truncate,
    /// Content gone, index record left (every backend).
    ContentGone,
}

/// Cuts a blob file of the store to half its size; `false` where the blob backend keeps no
/// files (its content cannot be damaged from outside).
fn truncate_blob_file(dir: &std::path::Path, digest: &Digest) -> Result<bool, String> {
    let Some(relative) = crate::content::files_under(dir)
        .into_iter()
        .find(|path| path.file_name().is_some_and(|name| name == digest.hex()))
    else {
        return Ok(false);
    };
    let path = dir.join(relative);
    let bytes = std::fs::read(&path).context(format!("reading {}", path.display()))?;
    let mut permissions = std::fs::metadata(&path).context("metadata")?.permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    permissions.set_readonly(false);
    std::fs::set_permissions(&path, permissions).context("making the blob file writable")?;
    std::fs::write(&path, &bytes[..bytes.len() / 2])
        .context(format!("truncating {}", path.display()))?;
    Ok(true)
}

fn damage(store: &Store, digest: &Digest, how: Damage) -> Result<bool, String> {
    match how {
        Damage::FlipByte => corrupt_blob_file(store.dir(), digest),
        Damage::Truncate => truncate_blob_file(store.dir(), digest),
        Damage::ContentGone => {
            store
                .blob_store()
                .delete(digest)
                .context("deleting a blob's content")?;
            Ok(true)
        }
    }
}

/// Entries of `dir` whose names say they are temp files.
fn temp_files_in(dir: &std::path::Path) -> Result<Vec<String>, String> {
    let mut temps = Vec::new();
    if !dir.exists() {
        return Ok(temps);
    }
    for entry in std::fs::read_dir(dir).context(format!("listing {}", dir.display()))? {
        let name = entry
            .context(format!("listing {}", dir.display()))?
            .file_name()
            .to_string_lossy()
            .into_owned();
        if name.starts_with(".tmp") {
            temps.push(name);
        }
    }
    Ok(temps)
}

fn ensure_names_damage(
    result: Result<oci_store::stores::oci::ExportReport, OciError>,
    digest: &Digest,
    reference: &str,
    what: &str,
) -> TestResult {
    let error = match result {
        Ok(report) => return Err(format!("{what}: exported a damaged blob: {report:?}")),
        Err(error) => error.to_string(),
    };
    ensure!(
        error.contains(&digest.to_string()),
        "{what}: the error does not name {digest}: {error}"
    );
    ensure!(
        error.contains(reference),
        "{what}: the error does not name ref {reference}: {error}"
    );
    ensure!(
        error.contains("fsck --repair"),
        "{what}: the error does not point at fsck --repair: {error}"
    );
    Ok(())
}

/// Export verifies what it copies (DESIGN.md invariant 8): a ref one of whose blobs is
/// damaged in the store — a layer with a flipped byte, a truncated layer, a layer whose content
/// is gone, a corrupt manifest — is not exported. Into a new directory: no `index.json`; into
/// an existing layout: its `index.json` unchanged; as an archive: no file, or the old archive
/// unchanged; no temp file left anywhere. The error names the blob, the ref and
/// `fsck --repair`. Byte damage needs blob files: where the blob backend keeps none, only the
/// "content gone" case runs.
pub fn export_refuses_damaged_blobs(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let oci = OciStore::new(&store);
    let dir = scratch()?;
    let layout = path_in(&dir, "layout");
    let cases = [
        ("flip", Damage::FlipByte, false),
        ("truncate", Damage::Truncate, false),
        ("gone", Damage::ContentGone, false),
        ("manifest", Damage::FlipByte, true),
    ];
    let mut names: Vec<&str> = cases.iter().map(|(name, _, _)| *name).collect();
    names.push("healthy");
    let images = layout_with_refs(&layout, &names)?;
    import_all(&oci, &layout)?;

    // Exports of the healthy ref that the failed ones must leave as they are.
    let existing = path_in(&dir, "existing");
    oci.export("healthy", None, &existing, false)
        .context("exporting the healthy ref")?;
    let existing_index = std::fs::read(existing.join("index.json")).context("index.json")?;
    let existing_archive = path_in(&dir, "existing.tar");
    oci.export("healthy", None, &existing_archive, true)
        .context("archiving the healthy ref")?;
    let existing_archive_bytes = std::fs::read(&existing_archive).context("the archive")?;

    for ((name, how, manifest), image) in cases.iter().zip(&images) {
        let target = match manifest {
            true => digest(image)?,
            // Layer 1 is the image's own (layer 0 is shared by every image).
            false => layer_digest_in(&layout, image, 1)?,
        };
        if !damage(&store, &target, *how)? {
            continue;
        }
        let fresh = path_in(&dir, &format!("fresh-{name}"));
        ensure_names_damage(
            oci.export(name, None, &fresh, false),
            &target,
            name,
            &format!("{name}: export to a new directory"),
        )?;
        ensure!(
            !fresh.join("index.json").exists(),
            "{name}: a new layout got an index.json naming a damaged blob"
        );
        ensure_names_damage(
            oci.export(name, None, &existing, false),
            &target,
            name,
            &format!("{name}: export into an existing layout"),
        )?;
        let index_after = std::fs::read(existing.join("index.json")).context("index.json")?;
        ensure!(
            index_after == existing_index,
            "{name}: the existing layout's index.json changed:\n{}",
            String::from_utf8_lossy(&index_after)
        );
        let archive = path_in(&dir, &format!("{name}.tar"));
        ensure_names_damage(
            oci.export(name, None, &archive, true),
            &target,
            name,
            &format!("{name}: export as a new archive"),
        )?;
        ensure!(
            !archive.exists(),
            "{name}: an archive of a damaged blob was written"
        );
        ensure_names_damage(
            oci.export(name, None, &existing_archive, true),
            &target,
            name,
            &format!("{name}: export over an existing archive"),
        )?;
        ensure!(
            std::fs::read(&existing_archive).context("the archive")? == existing_archive_bytes,
            "{name}: the existing archive changed"
        );
        for place in [
            dir.path().to_path_buf(),
            existing.clone(),
            existing.join("blobs").join("sha256"),
            fresh.join("blobs").join("sha256"),
        ] {
            let temps = temp_files_in(&place)?;
            ensure!(
                temps.is_empty(),
                "{name}: temp files left in {}: {temps:?}",
                place.display()
            );
        }
    }
    Ok(())
}
