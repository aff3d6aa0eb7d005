//! The base-store suite: `Store` over one backend per role, run for every combination
//! (DESIGN.md invariants 1-5 and the thread half of 6; the process half is
//! `tests/multi_process.rs`).

mod batches;
mod concurrency;
mod delete;
mod equality;
mod fsck_locks;
mod holders;
mod maintenance;
mod resolve;
mod write;

use std::io::Read;
use std::path::Path;

use oci_store::store::{StoreResult, WriteOptions};
use oci_store::traits::{BlobRecord, Digest, Expected, SortedDigests};
use oci_store::Store;

use crate::check::TestResult;
use crate::content::{files_under, sorted};
use crate::fixture::{Fixture, SuiteTest};
use crate::{ensure, Context};

pub use batches::*;
pub use concurrency::*;
pub use delete::*;
pub use equality::*;
pub use fsck_locks::*;
pub use holders::*;
pub use maintenance::*;
pub use resolve::*;
pub use write::*;

pub type StoreFixture = Fixture<Store>;
pub type StoreTest = fn(&StoreFixture) -> TestResult;

pub fn tests() -> Vec<SuiteTest<Store>> {
    crate::suite_list![StoreTest;
        write_info_read,
        write_existing_returns_its_record,
        write_refusals_change_nothing,
        store_limits_work_everywhere,
        resolve_forms,
        resolve_ambiguous_lists_candidates,
        resolve_many_candidates_are_capped,
        resolve_refusals,
        delete_cascades,
        attach_to_missing_blob_is_refused,
        delete_if_unreferenced,
        owned_writes_are_marked_with_their_commit,
        base_writes_record_the_base_holder,
        removing_the_last_holding_entry_deletes_the_blob,
        base_gc_collects_blobs_no_holder_keeps,
        held_reads_stay_whole_while_the_blob_is_released,
        release_many_decides_each_blob_like_release,
        remove_data_many_is_all_or_nothing,
        gc_removes_garbage_only,
        gc_spares_live_writers,
        gc_dry_run_counts_the_dead_writes_gc_removes,
        fsck_clean_on_healthy_store,
        fsck_hashes_outside_digest_locks,
        fsck_detects_and_repairs,
        results_match_reference_model,
        reopen_keeps_everything,
        threads_share_one_store,
        open_beside_a_long_lived_creator,
    ]
}

/// Runs the whole suite against a store opener, e.g.
/// `|dir| open_store(dir, &BackendChoice::default().metadata("sqlite"))`.
pub fn run_all(
    open: impl Fn(&Path) -> StoreResult<Store> + Clone + Send + Sync + 'static,
) -> TestResult {
    crate::run_suite(tests(), open)
}

pub fn write_bytes(
    store: &Store,
    bytes: &[u8],
    media_type: Option<&str>,
) -> Result<BlobRecord, String> {
    let options = WriteOptions {
        media_type: media_type.map(str::to_string),
        ..WriteOptions::default()
    };
    store
        .write_bytes(bytes, &options)
        .context(format!("writing {} bytes", bytes.len()))
}

/// Writes with an expected digest, which is how a sha512 blob is written.
pub fn write_expecting(
    store: &Store,
    bytes: &[u8],
    digest: &Digest,
    media_type: Option<&str>,
) -> Result<BlobRecord, String> {
    let options = WriteOptions {
        media_type: media_type.map(str::to_string),
        expected_digest: Some(digest.clone()),
        expected_size: Some(bytes.len() as u64),
        ..WriteOptions::default()
    };
    store
        .write_bytes(bytes, &options)
        .context(format!("writing {digest}"))
}

pub fn read_bytes(store: &Store, digest: &Digest) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    store
        .read(digest)
        .context(format!("opening {digest}"))?
        .read_to_end(&mut bytes)
        .context(format!("reading {digest}"))?;
    Ok(bytes)
}

/// Puts content in the blob store without indexing it: what a crash between content commit
/// and index record leaves, i.e. garbage.
pub fn plant_unindexed(store: &Store, bytes: &[u8]) -> Result<Digest, String> {
    crate::blob_store::commit_bytes(&**store.blob_store(), bytes, Expected::default())
}

/// What a refused write must leave unchanged.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub records: Vec<BlobRecord>,
    pub blobs: Vec<Digest>,
    pub extra: Vec<Digest>,
    pub referenced: Vec<Digest>,
}

pub fn snapshot(store: &Store) -> Result<Snapshot, String> {
    Ok(Snapshot {
        records: store.list(None).context("listing")?,
        blobs: sorted(
            &store
                .blob_store()
                .sorted_digests()
                .and_then(SortedDigests::into_vec)
                .context("blob digests")?,
        ),
        extra: store
            .extra_data()
            .sorted_digests()
            .and_then(SortedDigests::into_vec)
            .context("extra data digests")?,
        referenced: store
            .kv_store()
            .sorted_referenced_digests()
            .and_then(SortedDigests::into_vec)
            .context("referenced digests")?,
    })
}

/// Files in the store directory, without the lock files (digest locks are created on first
/// use) and SQLite side files, which come and go with transactions.
pub fn store_files(dir: &Path) -> std::collections::BTreeSet<std::path::PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|path| {
            let text = path.to_string_lossy();
            !path.starts_with("locks")
                && !text.ends_with(".lock")
                && !text.ends_with("-wal")
                && !text.ends_with("-shm")
                && !text.ends_with("-journal")
        })
        .collect()
}

/// No staged write is left once GC ran: GC's own `remove_dead_ingests` found everything, and
/// if the store has an `ingest/` directory (the suggested layout) it is empty.
pub fn no_ingest_leftovers(store: &Store) -> TestResult {
    store.gc(Default::default()).context("gc")?;
    let again = store
        .blob_store()
        .remove_dead_ingests()
        .context("remove_dead_ingests after gc")?;
    ensure!(again == (0, 0), "dead ingests remained after gc: {again:?}");
    let ingest = store.dir().join("ingest");
    let leftovers = files_under(&ingest);
    ensure!(
        leftovers.is_empty(),
        "files left in {} after gc: {leftovers:?}",
        ingest.display()
    );
    Ok(())
}
