//! Focused races the torture run found, each repeated until it shows or its time is up.
//!
//! [`replaced_entries_let_go_of_their_blobs`] (and [`removed_entries_let_go_of_their_blobs`],
//! with a removal in the race too): threads point one key/value entry at blobs of
//! their own, each then letting go of its `blob put` hold, so every blob's last holder is the
//! entry. Whichever write lands last wins; every blob it replaced has no holder left and must
//! be gone (DESIGN.md: "a blob is deleted only when no holder and no key/value reference is
//! left, decided under the blob's exclusive digest lock in one step"), not left indexed with
//! no holder for a later GC, which `fsck` would report as damage on a store no crash touched.

use std::time::{Duration, Instant};

use oci_store::store::{Holder, WriteOptions};
use oci_store::Store;

use crate::check::TestResult;
use crate::Context;

const RACE_TYPE: &str = "torture.race";

pub fn replaced_entries_let_go_of_their_blobs(
    store: &Store,
    threads: usize,
    time: Duration,
) -> TestResult {
    race_on_one_entry(store, threads, time, false)
}

/// [`replaced_entries_let_go_of_their_blobs`] with one more thread that removes the entry
/// (which, each round, starts without a blob): a removal that finds no blob must not remove
/// an entry that meanwhile came to reference one, and leave that blob with no holder.
pub fn removed_entries_let_go_of_their_blobs(
    store: &Store,
    threads: usize,
    time: Duration,
) -> TestResult {
    race_on_one_entry(store, threads, time, true)
}

fn race_on_one_entry(
    store: &Store,
    threads: usize,
    time: Duration,
    with_remover: bool,
) -> TestResult {
    let started = Instant::now();
    let mut round = 0u64;
    while started.elapsed() < time {
        round += 1;
        let mut digests = Vec::new();
        for thread in 0..threads {
            let bytes = format!("race round {round}, blob of thread {thread}");
            let record = store
                .write_bytes(bytes.as_bytes(), &WriteOptions::default())
                .context("writing a blob")?;
            digests.push(record.digest);
        }
        if with_remover {
            store
                .put_data(RACE_TYPE, "key", b"no blob", None)
                .context("resetting the entry")?;
        }
        let results: Vec<TestResult> = std::thread::scope(|scope| {
            let remover = with_remover.then(|| {
                scope.spawn(move || -> TestResult {
                    store
                        .remove_data(RACE_TYPE, "key")
                        .context("removing the entry")?;
                    Ok(())
                })
            });
            let handles: Vec<_> = digests
                .iter()
                .map(|digest| {
                    scope.spawn(move || -> TestResult {
                        store
                            .put_data(RACE_TYPE, "key", digest.as_str().as_bytes(), Some(digest))
                            .context(format!("pointing the entry at {digest}"))?;
                        store
                            .release(digest, &Holder::BASE)
                            .context(format!("releasing the blob put of {digest}"))?;
                        Ok(())
                    })
                })
                .collect();
            handles
                .into_iter()
                .chain(remover)
                .map(|h| h.join().unwrap_or_else(|_| Err("a thread panicked".into())))
                .collect()
        });
        results.into_iter().collect::<TestResult>()?;
        let entry = store
            .get_data(RACE_TYPE, "key")
            .context("reading the entry")?;
        if entry.is_none() && !with_remover {
            return Err(format!("round {round}: the entry is gone"));
        }
        for digest in &digests {
            let kept = entry.as_ref().and_then(|e| e.blob.as_ref()) == Some(digest);
            let present = store.contains(digest).context("looking the blob up")?;
            if present != kept {
                let holders = store.holders(digest).context("reading holders")?;
                return Err(format!(
                    "round {round}: {digest} is {} although the entry {} it (holders: {holders:?}; entry: {entry:?})",
                    if present { "still indexed" } else { "gone" },
                    if kept {
                        "references"
                    } else {
                        "no longer references"
                    }
                ));
            }
        }
    }
    Ok(())
}
