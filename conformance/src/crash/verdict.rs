//! The checks every trial makes after its worker ended, whatever the work: `fsck` finds only
//! what a crash may leave (garbage `fsck --repair` removes, never damage), and after the
//! repair the store is clean.

use oci_store::store::FsckProblem;
use oci_store::Store;

use crate::check::TestResult;
use crate::{ensure, Context};

/// Whether a crash may leave this: content without record, data of a blob that is not
/// indexed, an indexed blob nobody holds. Missing, corrupt or mis-sized content would mean an
/// index record was written before its content was whole: never.
pub fn is_repairable_garbage(problem: &FsckProblem) -> bool {
    matches!(
        problem,
        FsckProblem::UnindexedContent { .. }
            | FsckProblem::OrphanExtraData { .. }
            | FsckProblem::DanglingReference { .. }
            | FsckProblem::UnheldBlob { .. }
    )
}

/// `fsck` reports only repairable garbage; `fsck --repair` then leaves nothing for `fsck`.
/// Returns what the first `fsck` reported.
pub fn fsck_repairs_to_clean(store: &Store) -> Result<Vec<FsckProblem>, String> {
    let report = store
        .fsck(Default::default())
        .context("fsck after the worker ended")?;
    let damage: Vec<&FsckProblem> = report
        .problems
        .iter()
        .filter(|problem| !is_repairable_garbage(problem))
        .collect();
    ensure!(
        damage.is_empty(),
        "fsck found damage, not only garbage: {damage:?} (all: {:?})",
        report.problems
    );
    store
        .fsck(oci_store::store::FsckOptions::repairing())
        .context("fsck --repair")?;
    let after = store
        .fsck(Default::default())
        .context("fsck after fsck --repair")?;
    ensure!(
        after.is_clean(),
        "fsck --repair left problems: {:?}",
        after.problems
    );
    Ok(report.problems)
}

/// Every indexed blob is readable and hashes to its digest (fsck checks it too; this says
/// which blob a work's own check was looking at).
pub fn blob_is_whole(store: &Store, digest: &oci_store::Digest, bytes: &[u8]) -> TestResult {
    let stored = store
        .read_to_vec(digest, bytes.len() as u64 + 1)
        .context(format!("reading {digest}"))?;
    ensure!(
        stored == bytes,
        "{digest}: read {} bytes that differ from the {} written",
        stored.len(),
        bytes.len()
    );
    Ok(())
}
