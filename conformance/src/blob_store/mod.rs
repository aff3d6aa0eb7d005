//! The `BlobStore` suite: streaming writes that verify and commit atomically, reads with
//! seek, delete, listing, the cleanup of abandoned writes (DESIGN.md invariants 1, 2, 4) and
//! the take-over of killed resumable writes.
//!
//! Each test opens the backend with [`BlobFixture::open`] in a fresh directory.

mod lifecycle;
mod resume;
mod round_trip;
mod verification;

use std::path::Path;
use std::sync::Arc;

use oci_store::traits::{BlobStore, Digest, Expected, SortedDigests, StorageError, StorageResult};

use crate::check::TestResult;
use crate::content::{files_under, write_in_chunks};
use crate::fixture::{Fixture, SuiteTest};
use crate::{ensure, ensure_eq, Context};

pub use lifecycle::*;
pub use resume::*;
pub use round_trip::*;
pub use verification::*;

pub type BlobFixture = Fixture<Arc<dyn BlobStore>>;
pub type BlobTest = fn(&BlobFixture) -> TestResult;

/// Every test of the suite, by name.
pub fn tests() -> Vec<SuiteTest<Arc<dyn BlobStore>>> {
    let mut tests = round_trip::cases();
    tests.extend(crate::suite_list![BlobTest;
        digest_mismatch_stores_nothing,
        size_mismatch_short_stores_nothing,
        size_mismatch_long_stores_nothing,
        write_after_finish_is_refused,
        aborted_writes_do_not_accumulate,
        dedupe,
        concurrent_writers,
        delete,
        delete_many_removes_exactly_those_given,
        open_missing_is_not_found,
        seek_within_blob,
        digests_lists_every_blob,
        dropped_writer_leaves_nothing,
        remove_dead_ingests_keeps_live_writers,
        read_across_delete_is_whole_or_error,
        reopen_sees_committed_content,
        killed_resumable_writer_is_taken_over,
        finished_uncommitted_write_is_taken_over_whole,
        corrupt_partial_ends_in_a_digest_mismatch_that_stores_nothing,
        resumable_writers_never_take_over_a_live_write,
        killed_resumable_write_is_garbage_until_taken_over,
        dead_ingest_usage_is_what_removal_removes,
    ]);
    tests
}

/// Runs the whole suite against a backend opener (the same function a backend registers).
pub fn run_all(
    open: impl Fn(&Path) -> StorageResult<Arc<dyn BlobStore>> + Clone + Send + Sync + 'static,
) -> TestResult {
    crate::run_suite(tests(), open)
}

/// Writes `bytes` through a writer in irregular chunks, finishes and commits, checking that
/// `finish` and `commit` agree with the content.
pub fn commit_bytes(
    store: &dyn BlobStore,
    bytes: &[u8],
    expected: Expected,
) -> Result<Digest, String> {
    let algorithm = expected.algorithm();
    let digest = Digest::of_bytes(algorithm, bytes);
    let mut writer = store.writer(expected).context("opening a writer")?;
    write_in_chunks(&mut writer, bytes).context(format!("writing {digest}"))?;
    ensure_eq!(
        writer.written(),
        bytes.len() as u64,
        "written() of {digest}"
    );
    let finished = writer.finish().context(format!("finishing {digest}"))?;
    ensure_eq!(finished, (digest.clone(), bytes.len() as u64), "finish()");
    let committed = writer.commit().context(format!("committing {digest}"))?;
    ensure_eq!(committed, (digest.clone(), bytes.len() as u64), "commit()");
    Ok(digest)
}

/// The storage error an `io::Error` from `BlobWriter::write` carries, if any: backends report
/// an exceeded expected size that way, and the base store unwraps it.
pub fn carried_storage_error(error: &std::io::Error) -> Option<&StorageError> {
    error.get_ref()?.downcast_ref::<StorageError>()
}

/// Checks that a failed or abandoned write left nothing behind: the stored digests are as
/// before, and once dead ingests are removed no new file remains in the backend's directory.
pub fn nothing_left(
    fixture: &BlobFixture,
    store: &dyn BlobStore,
    digests_before: &[Digest],
    files_before: &std::collections::BTreeSet<std::path::PathBuf>,
    absent: &[&Digest],
) -> TestResult {
    for digest in absent {
        ensure_eq!(
            store.size(digest).context(format!("size of {digest}"))?,
            None,
            "{digest} became visible"
        );
    }
    let mut digests = store
        .sorted_digests()
        .and_then(SortedDigests::into_vec)
        .context("listing digests")?;
    digests.sort();
    ensure_eq!(digests, digests_before.to_vec(), "stored digests changed");
    store
        .remove_dead_ingests()
        .context("removing dead ingests")?;
    let again = store
        .remove_dead_ingests()
        .context("removing dead ingests a second time")?;
    ensure_eq!(
        again,
        (0, 0),
        "a second remove_dead_ingests still found work"
    );
    let leftovers: Vec<_> = files_under(fixture.dir())
        .difference(files_before)
        .filter(|path| !is_database_side_file(path))
        .cloned()
        .collect();
    ensure!(
        leftovers.is_empty(),
        "files left behind after remove_dead_ingests: {leftovers:?}"
    );
    Ok(())
}

/// SQLite's write-ahead log, shared memory and rollback journal come and go with
/// transactions; they are not leftovers of a write.
fn is_database_side_file(path: &Path) -> bool {
    let name = path.to_string_lossy();
    name.ends_with("-wal") || name.ends_with("-shm") || name.ends_with("-journal")
}

/// The state a failure test compares against: a store holding one blob (so every backend
/// has created its files), with its digests and files.
pub struct Baseline {
    pub digests: Vec<Digest>,
    pub files: std::collections::BTreeSet<std::path::PathBuf>,
}

pub fn baseline(fixture: &BlobFixture, store: &dyn BlobStore) -> Result<Baseline, String> {
    commit_bytes(store, b"baseline blob", Expected::default())?;
    store
        .remove_dead_ingests()
        .context("removing dead ingests")?;
    let mut digests = store
        .sorted_digests()
        .and_then(SortedDigests::into_vec)
        .context("listing digests")?;
    digests.sort();
    Ok(Baseline {
        digests,
        files: files_under(fixture.dir()),
    })
}
