//! `check` on a damaged store: it names what is missing or corrupt instead of failing.

use oci_store::stores::oci::OciStore;

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
