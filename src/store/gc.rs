//! Base garbage collection: what no index record vouches for (DESIGN.md invariants 2 and 3),
//! and indexed blobs that no holder keeps ("Flavours share one store": nothing leaks).

use serde::Serialize;

use super::base::Store;
use super::delete::DELETE_BATCH;
use super::error::StoreResult;
use super::holder::Holder;
use super::locks::{LockGuard, LockMode};
use super::progress::{Progress, Totals, NO_PROGRESS};
use crate::traits::{
    BlobRecord, BlobStore, Digest, ExtraData, Index, KvStore, SortedDigests, StorageResult,
};

/// What [`Store::gc`] removed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GcReport {
    /// Content without an index record, removed.
    pub unindexed_blobs: Vec<Digest>,
    /// Bytes of that content.
    pub unindexed_bytes: u64,
    /// Staged writes of writers that are gone.
    pub dead_ingests: u64,
    /// Bytes of those staged writes.
    pub dead_ingest_bytes: u64,
    /// Blobs whose extra data outlived them (a crash mid-delete).
    pub orphan_extra_data: Vec<Digest>,
    /// Digests that key/value entries still referenced after the blob went.
    pub dangling_references: Vec<Digest>,
    /// Indexed blobs that no holder keeps (no owner mark, no key/value entry), deleted: what
    /// a crash between a holder letting go and the delete leaves.
    pub unheld_blobs: Vec<Digest>,
    /// Bytes of those blobs.
    pub unheld_bytes: u64,
}

impl GcReport {
    /// Bytes freed in all: unindexed content, dead staged writes and unheld blobs.
    pub fn freed_bytes(&self) -> u64 {
        self.unindexed_bytes + self.dead_ingest_bytes + self.unheld_bytes
    }
}

/// How [`Store::gc`] runs.
#[derive(Clone, Copy)]
pub struct GcOptions<'p> {
    /// Where its phase is reported ([`NoProgress`](super::NoProgress) by default).
    pub progress: &'p dyn Progress,
}

impl Default for GcOptions<'_> {
    fn default() -> Self {
        GcOptions {
            progress: &NO_PROGRESS,
        }
    }
}

impl Store {
    /// Finishes operations whose process died ([`Store::clear_dead_operations`]), then
    /// removes indexed blobs no holder keeps, content without an index record, dead ingest
    /// files, orphan extra data and key/value entries whose blob is gone. Each removal is decided under the blob's exclusive
    /// digest lock, which a committing writer also holds from content commit to index record:
    /// so content a live writer is committing is never taken for garbage.
    ///
    /// Its one phase goes to `options.progress` (a spinner: its work is not known beforehand).
    pub fn gc(&self, options: GcOptions<'_>) -> StoreResult<GcReport> {
        let progress = options.progress;
        progress.start("collecting", Totals::UNKNOWN);
        let report = self.collect_garbage();
        progress.finish();
        report
    }

    fn collect_garbage(&self) -> StoreResult<GcReport> {
        let mut report = GcReport::default();
        // First, so that what dead operations held and nothing else holds is collected now.
        self.clear_dead_operations()?;
        let (dead, dead_bytes) = self.blobs.remove_dead_ingests()?;
        report.dead_ingests = dead;
        report.dead_ingest_bytes = dead_bytes;
        crate::crash_point!("store.gc.after-dead-ingests");
        // One pass over the index pages, merged with sorted digest listings that page through
        // their backends (the `fs` one is sorted externally): the key/value references and
        // owner marks (unheld blobs and dangling references), the content and the extra data
        // (what has no record). What is held is a page of each, plus the digests found missing
        // from the index. Unheld blobs are deleted after the pass: they were indexed when
        // listed, so their content and extra data are not taken for unindexed ones.
        let [references, content, extra] = self.collect_unheld(&mut report)?;
        crate::crash_point!("store.gc.after-unheld");
        // Each removal counts only if something was there when its lock was held: the
        // listing may be older than a delete that finished meanwhile (a flavour's GC running
        // alongside deletes a blob's index record, then its dependants, then its content).
        let content = self.worth_locking(content, |digests| {
            digests.iter().map(|d| self.blobs.contains(d)).collect()
        })?;
        for digest in content {
            let removed = self.remove_if_unindexed(&digest, |store, d| {
                let Some(size) = store.blobs.size(d)? else {
                    return Ok(None);
                };
                Ok(store.blobs.delete(d)?.then_some(size))
            })?;
            if let Some(bytes) = removed.flatten() {
                report.unindexed_bytes += bytes;
                report.unindexed_blobs.push(digest);
            }
        }
        crate::crash_point!("store.gc.after-unindexed-content");
        let extra = self.worth_locking(extra, |digests| {
            let types = self.extra.types_many(digests)?;
            Ok(types.iter().map(|types| !types.is_empty()).collect())
        })?;
        for digest in extra {
            let removed =
                self.remove_if_unindexed(&digest, |store, d| Ok(store.extra.remove_all(d)?))?;
            if removed.unwrap_or(0) > 0 {
                report.orphan_extra_data.push(digest);
            }
        }
        crate::crash_point!("store.gc.after-orphan-extra");
        let references = self.worth_locking(references, |digests| {
            let entries = self.kv.referencing_many(digests)?;
            Ok(entries.iter().map(|keys| !keys.is_empty()).collect())
        })?;
        for digest in references {
            let removed = self
                .remove_if_unindexed(&digest, |store, d| Ok(store.kv.remove_referencing(d)?))?;
            if removed.unwrap_or(0) > 0 {
                report.dangling_references.push(digest);
            }
        }
        Ok(report)
    }

    /// One pass over the index's pages beside `listings` (each sorted by digest string, the
    /// index's key order): `on_record` gets each record with, per listing, whether it has
    /// its digest; returned are, per listing, the digests the index had no record for when
    /// its page was read.
    fn merge_with_index<const N: usize>(
        &self,
        listings: [SortedDigests<'_>; N],
        mut on_record: impl FnMut(&BlobRecord, [bool; N]) -> StoreResult<()>,
    ) -> StoreResult<[Vec<Digest>; N]> {
        let mut unindexed: [Vec<Digest>; N] = std::array::from_fn(|_| Vec::new());
        let mut cursors = listings.map(Iterator::peekable);
        for record in self.records() {
            let record = record?;
            let indexed = record.digest.as_str();
            let mut listed = [false; N];
            for ((cursor, missing), listed) in cursors
                .iter_mut()
                .zip(unindexed.iter_mut())
                .zip(listed.iter_mut())
            {
                // An error is taken too (it is not `<=`-comparable) and returned.
                while let Some(next) = cursor.next_if(|next| {
                    next.as_ref()
                        .map_or(true, |digest| digest.as_str() <= indexed)
                }) {
                    let digest = next?;
                    if digest.as_str() == indexed {
                        *listed = true;
                    } else {
                        missing.push(digest);
                    }
                }
            }
            on_record(&record, listed)?;
        }
        for (cursor, missing) in cursors.into_iter().zip(unindexed.iter_mut()) {
            for digest in cursor {
                missing.push(digest?);
            }
        }
        Ok(unindexed)
    }

    /// Deletes indexed blobs that no holder keeps: every write records a holder with its
    /// commit, so such a blob is one whose last holder let go without the delete that should
    /// have followed (a crash in between), or one written around the store's methods. The
    /// cheap check runs without the lock; the decision is made again under the blob's
    /// exclusive digest lock, which every writer and holder takes too.
    ///
    /// Returns, found in the same pass, the digests that had no index record when the index
    /// was read: those key/value entries referenced (candidate dangling references), those
    /// with content, and those with extra data.
    fn collect_unheld(&self, report: &mut GcReport) -> StoreResult<[Vec<Digest>; 3]> {
        // Collected first and deleted after: deleting while paging could skip records. A
        // digest a key/value entry referenced when the list was read is held: it is not a
        // candidate (if that entry went since, the next GC collects the blob).
        let referenced = self.kv.sorted_referenced_digests()?;
        // Marked blobs listed beside the index, not asked one by one (a mark added since the
        // listing is seen again under the digest lock below).
        let marked = self
            .extra
            .sorted_digests_with_type_prefix(Holder::MARK_PREFIX)?;
        let content = self.blobs.sorted_digests()?;
        let extra = self.extra.sorted_digests()?;
        let mut candidates = Vec::new();
        let [dangling, _, unindexed_content, unindexed_extra] = self.merge_with_index(
            [referenced, marked, content, extra],
            |record, [is_referenced, is_marked, _, _]| {
                if !is_referenced && !is_marked {
                    candidates.push(record.clone());
                }
                Ok(())
            },
        )?;
        // Decided again under the digest locks, in batches whose deletes share transactions.
        for batch in candidates.chunks(DELETE_BATCH) {
            let digests: Vec<Digest> = batch.iter().map(|record| record.digest.clone()).collect();
            let _locks = self.locks.lock_digests(&digests, LockMode::Exclusive)?;
            let mut unheld = Vec::new();
            for record in batch {
                let Some(current) = self.index.get(&record.digest)? else {
                    continue;
                };
                if !self.is_held_locked(&record.digest)? {
                    report.unheld_bytes += current.size;
                    report.unheld_blobs.push(record.digest.clone());
                    unheld.push(record.digest.clone());
                }
            }
            self.delete_many_locked(&unheld)?;
        }
        Ok([dangling, unindexed_content, unindexed_extra])
    }

    /// The candidates worth taking a lock for: those that still have no index record and
    /// still have what would be removed (by `present`), both read for all of them at once
    /// without locks. Most candidates of a listing are gone by the time it ends when a
    /// flavour's GC runs alongside, and passing one over is always safe: this GC only takes
    /// garbage, and the next one finds what it left.
    fn worth_locking(
        &self,
        candidates: Vec<Digest>,
        present: impl FnOnce(&[Digest]) -> StorageResult<Vec<bool>>,
    ) -> StoreResult<Vec<Digest>> {
        let records = self.index.get_many(&candidates)?;
        let unindexed: Vec<Digest> = candidates
            .into_iter()
            .zip(records)
            .filter_map(|(digest, record)| record.is_none().then_some(digest))
            .collect();
        let present = present(&unindexed)?;
        Ok(unindexed
            .into_iter()
            .zip(present)
            .filter_map(|(digest, present)| present.then_some(digest))
            .collect())
    }

    /// Runs `remove` if `digest` has no index record, checked under its exclusive lock.
    fn remove_if_unindexed<T>(
        &self,
        digest: &Digest,
        remove: impl FnOnce(&Self, &Digest) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        let _lock = LockGuard::acquire(&self.locks.digest_lock(digest), LockMode::Exclusive)?;
        if self.index.get(digest)?.is_some() {
            return Ok(None);
        }
        remove(self, digest).map(Some)
    }
}
