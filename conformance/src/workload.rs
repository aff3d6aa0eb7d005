//! A seeded, mixed workload over an overlapping set of blobs: writes, verified reads, deletes,
//! key/value entries that reference the blobs, compare-and-set counters, owner marks and GC.
//! Threads of one process (`base_store::threads_share_one_store`) and worker processes
//! (`conformance-worker`, `tests/multi_process.rs`) run it at once on one store; then
//! [`check_after_workload`] checks the store is consistent (DESIGN.md invariant 6).

use std::sync::OnceLock;

use oci_store::store::{Holder, StoreError, WriteOptions};
use oci_store::traits::{Algorithm, Digest, StorageError};
use oci_store::Store;
use serde::{Deserialize, Serialize};

use crate::check::TestResult;
use crate::content::{content, hash_reader, SeededRandom, MIB};
use crate::{ensure, ensure_eq, Context};

/// Compare-and-set counters: each successful increment is counted by whoever made it, and the
/// stored value must equal the sum at the end (no lost update).
pub const COUNTERS: usize = 2;
pub const COUNTER_TYPE: &str = "workload.counter";
pub const REF_TYPE: &str = "workload.ref";

pub struct WorkloadContent {
    pub bytes: Vec<u8>,
    pub digest: Digest,
    pub media_type: &'static str,
}

/// Twenty contents shared by every participant; with `large`, every fifth is over 1 MiB.
pub fn contents(large: bool) -> &'static [WorkloadContent] {
    static SMALL: OnceLock<Vec<WorkloadContent>> = OnceLock::new();
    static LARGE: OnceLock<Vec<WorkloadContent>> = OnceLock::new();
    let cell = if large { &LARGE } else { &SMALL };
    cell.get_or_init(|| {
        (0..20u64)
            .map(|n| {
                let size = if n % 5 == 0 {
                    if large {
                        MIB + 1000 * n as usize + 1
                    } else {
                        64 * 1024 + n as usize
                    }
                } else {
                    100 + 997 * n as usize
                };
                let bytes = content(900 + n, size);
                let algorithm = if n % 4 == 3 {
                    Algorithm::Sha512
                } else {
                    Algorithm::Sha256
                };
                WorkloadContent {
                    digest: Digest::of_bytes(algorithm, &bytes),
                    bytes,
                    media_type: ["application/octet-stream", crate::index::LAYER][n as usize % 2],
                }
            })
            .collect()
    })
}

/// What one participant did; the counter increments are checked against the store.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WorkloadStats {
    pub operations: u64,
    pub writes: u64,
    pub reads_verified: u64,
    pub deletes: u64,
    pub gcs: u64,
    pub counter_increments: Vec<u64>,
}

fn is_not_found(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::NotFound
        || error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<StorageError>())
            .is_some_and(|e| matches!(e, StorageError::BlobNotFound(_)))
}

/// Runs `iterations` random operations. Outcomes that concurrency makes legitimate (a blob
/// deleted by someone else, a lost compare-and-set race) are tolerated; anything else, and
/// any wrong content, is an error naming the operation.
pub fn run_workload(
    store: &Store,
    seed: u64,
    iterations: u64,
    contents: &[WorkloadContent],
) -> Result<WorkloadStats, String> {
    let mut random = SeededRandom::new(seed);
    let mut stats = WorkloadStats {
        counter_increments: vec![0; COUNTERS],
        ..WorkloadStats::default()
    };
    for iteration in 0..iterations {
        let item = &contents[random.below(contents.len() as u64) as usize];
        let choice = random.below(100);
        operation(store, item, choice, &mut random, &mut stats)
            .map_err(|e| format!("seed {seed}, iteration {iteration}, {}: {e}", item.digest))?;
        stats.operations += 1;
    }
    Ok(stats)
}

fn operation(
    store: &Store,
    item: &WorkloadContent,
    choice: u64,
    random: &mut SeededRandom,
    stats: &mut WorkloadStats,
) -> TestResult {
    let digest = &item.digest;
    match choice {
        0..=29 => {
            let with_expectation = random.below(2) == 0 || digest.algorithm() == Algorithm::Sha512;
            let options = WriteOptions {
                media_type: Some(item.media_type.to_string()),
                expected_digest: with_expectation.then(|| digest.clone()),
                expected_size: with_expectation.then_some(item.bytes.len() as u64),
                ..WriteOptions::default()
            };
            let record = store.write_bytes(&item.bytes, &options).context("write")?;
            ensure_eq!(
                (&record.digest, record.size),
                (digest, item.bytes.len() as u64),
                "record returned by write"
            );
            stats.writes += 1;
        }
        30..=49 => match store.read(digest) {
            Ok(reader) => match hash_reader(reader, digest.algorithm()) {
                Ok(read) => {
                    ensure_eq!(
                        read,
                        (digest.clone(), item.bytes.len() as u64),
                        "content read"
                    );
                    stats.reads_verified += 1;
                }
                Err(error) if is_not_found(&error) => {}
                Err(error) => return Err(format!("reading: {error}")),
            },
            Err(StoreError::NotFound(_)) => {}
            Err(other) => return Err(format!("opening for read: {other}")),
        },
        50..=57 => {
            store.delete(digest).context("delete")?;
            stats.deletes += 1;
        }
        58..=69 => {
            let key = format!("r{}", random.below(8));
            match store.put_data(REF_TYPE, &key, digest.as_str().as_bytes(), Some(digest)) {
                Ok(_) | Err(StoreError::MissingBlob { .. }) => {}
                Err(other) => return Err(format!("put_data {key}: {other}")),
            }
        }
        70..=74 => {
            let key = format!("r{}", random.below(8));
            store.remove_data(REF_TYPE, &key).context("remove_data")?;
        }
        75..=84 => {
            // A few increments in a row, so that participants collide often enough for a
            // lost update to show.
            let counter = random.below(COUNTERS as u64) as usize;
            for _ in 0..3 {
                if increment_counter(store, counter)? {
                    stats.counter_increments[counter] += 1;
                }
            }
        }
        85..=89 => match store.mark_owner(digest, &Holder::flavour("workload")) {
            Ok(()) | Err(StoreError::MissingBlob { .. }) => {}
            Err(other) => return Err(format!("mark_owner: {other}")),
        },
        90..=92 => {
            store
                .unmark_owner(digest, &Holder::flavour("workload"))
                .context("unmark_owner")?;
        }
        93..=96 => {
            store
                .delete_if_unreferenced(digest)
                .context("delete_if_unreferenced")?;
        }
        _ => {
            store.gc(Default::default()).context("gc")?;
            stats.gcs += 1;
        }
    }
    Ok(())
}

/// One compare-and-set attempt; `false` when someone else won the race.
fn increment_counter(store: &Store, counter: usize) -> Result<bool, String> {
    let key = format!("c{counter}");
    let current = store.get_data(COUNTER_TYPE, &key).context("get counter")?;
    let (value, version) = match &current {
        Some(entry) => (parse_counter(&entry.value)?, Some(entry.version)),
        None => (0, None),
    };
    let next = (value + 1).to_string();
    // Give the others a chance to write in between: the race compare-and-set must settle.
    std::thread::yield_now();
    match store.compare_and_set_data(COUNTER_TYPE, &key, next.as_bytes(), None, version) {
        Ok(new_version) => {
            ensure_eq!(
                new_version,
                version.map_or(1, |v| v + 1),
                "version after CAS on {key}"
            );
            Ok(true)
        }
        Err(StoreError::Storage(StorageError::VersionConflict { .. })) => Ok(false),
        Err(other) => Err(format!("compare_and_set on {key}: {other}")),
    }
}

fn parse_counter(value: &[u8]) -> Result<u64, String> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| format!("counter value {value:?} is not a number"))
}

/// After every participant finished: the store is consistent ([`check_consistent`]) and the
/// compare-and-set counters add up to the increments the participants made.
pub fn check_after_workload(store: &Store, participants: &[WorkloadStats]) -> TestResult {
    check_consistent(store)?;
    for counter in 0..COUNTERS {
        let key = format!("c{counter}");
        let increments: u64 = participants
            .iter()
            .map(|p| p.counter_increments[counter])
            .sum();
        let stored = match store.get_data(COUNTER_TYPE, &key).context("get counter")? {
            Some(entry) => {
                ensure_eq!(entry.version, increments, "version of counter {key}");
                parse_counter(&entry.value)?
            }
            None => 0,
        };
        ensure_eq!(stored, increments, "counter {key}: successful increments");
    }
    Ok(())
}

/// fsck is clean, every indexed blob's content is present and rehashes to its digest, and GC
/// finds no garbage and leaves no staged write.
pub fn check_consistent(store: &Store) -> TestResult {
    let fsck = store.fsck(Default::default()).context("fsck")?;
    ensure!(fsck.is_clean(), "fsck found problems: {:?}", fsck.problems);
    for record in store.list(None).context("list")? {
        let reader = store
            .read(&record.digest)
            .context(format!("opening {}", record.digest))?;
        let read = hash_reader(reader, record.digest.algorithm())
            .context(format!("reading {}", record.digest))?;
        ensure_eq!(
            read,
            (record.digest.clone(), record.size),
            "rehash of indexed content"
        );
    }
    let gc = store.gc(Default::default()).context("gc")?;
    ensure!(
        gc.unindexed_blobs.is_empty()
            && gc.orphan_extra_data.is_empty()
            && gc.dangling_references.is_empty(),
        "garbage left once every participant finished: {gc:?}"
    );
    crate::base_store::no_ingest_leftovers(store)?;
    let fsck = store.fsck(Default::default()).context("fsck after gc")?;
    ensure!(
        fsck.is_clean(),
        "fsck after gc found problems: {:?}",
        fsck.problems
    );
    Ok(())
}
