//! Committing many blobs in one locked step: what makes an import of thousands of blobs cost a
//! few transactions and directory syncs instead of several per blob.
//!
//! The write protocol is the one of DESIGN.md invariant 1, applied to a batch:
//! 1. [`Store::stage`] streams each blob into the blob store's staging, hashing as it goes,
//!    checks it against what was expected and makes it durable there (`finish`). No lock is
//!    held, so stagings run in parallel (threads, processes).
//! 2. [`Store::commit_staged`] takes the exclusive digest locks of the whole batch in stripe
//!    order, writes every holder mark in one extra-data batch (mark before record, as for one
//!    blob), renames the content of the blobs not already stored into place, syncs the blob
//!    directories once, then writes every index record in one `upsert_many`, and lets go.
//!
//! A crash or error part-way leaves what a crash in a single write leaves: orphan marks and
//! unindexed content, which base GC removes, and no indexed blob without its content.
//! [`Store::writer`] commits through the same step with a batch of one.

use std::collections::HashSet;
use std::io::Read;

use super::base::Store;
use super::blobs::WriteOptions;
use super::error::StoreResult;
use super::holder::Holder;
use super::locks::LockMode;
use crate::traits::{BlobRecord, BlobStore, BlobWriter, Digest, ExtraData, ExtraOp, Index};
use crate::util::clock::now_unix_ms;

/// A blob streamed into staging, verified and durable there, not visible yet: dropping it
/// discards it; [`Store::commit_staged`] makes it part of the store.
pub struct StagedBlob<'s> {
    writer: Box<dyn BlobWriter + 's>,
    digest: Digest,
    size: u64,
    media_type: String,
}

impl<'s> StagedBlob<'s> {
    /// `writer` has been finished (durable in staging) with this digest and size.
    pub(super) fn finished(
        writer: Box<dyn BlobWriter + 's>,
        digest: Digest,
        size: u64,
        media_type: String,
    ) -> Self {
        StagedBlob {
            writer,
            digest,
            size,
            media_type,
        }
    }

    /// The digest the staged content hashed to.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }
}

impl Store {
    /// Streams `content` into staging, verified against `options` (digest, size) and durable
    /// there; nothing is visible until [`Store::commit_staged`]. Holds no lock, so several
    /// stagings may run at once, from threads or processes.
    pub fn stage(&self, content: impl Read, options: &WriteOptions) -> StoreResult<StagedBlob<'_>> {
        self.writer(options)?.stage_from(content)
    }

    /// Makes staged blobs part of the store, each held by `holder` (its owner mark), in one
    /// step under the exclusive digest locks of all of them: marks in one extra-data batch,
    /// content of blobs not already stored renamed into place, the blob directories synced
    /// once, then every new index record in one batch. A blob already stored and indexed is
    /// not committed again (content addressing makes the copies equal); it gets the mark all
    /// the same, since deduplication never makes a write invisible to its holder. Returns the
    /// records in the order of `staged`.
    pub fn commit_staged(
        &self,
        staged: Vec<StagedBlob<'_>>,
        holder: &Holder,
    ) -> StoreResult<Vec<BlobRecord>> {
        if staged.is_empty() {
            return Ok(Vec::new());
        }
        // Content first, and outside the locks: one sync for the batch where the blob store
        // can (each commit would otherwise sync its own content).
        if staged.iter().filter(|s| s.writer.needs_sync()).count() > 1 {
            self.blobs.sync_staged()?;
        }
        let digests: Vec<Digest> = staged.iter().map(|s| s.digest.clone()).collect();
        let _locks = self.locks.lock_digests(&digests, LockMode::Exclusive)?;
        crate::crash_point!("store.commit.before-marks");
        // The marks go first: until its record exists a mark is orphan extra data, which base
        // GC removes with the unindexed content if we crash before the record; from the moment
        // the record exists it keeps the blob from every GC.
        let mark = holder.mark();
        let marks: Vec<ExtraOp> = digests
            .iter()
            .map(|digest| ExtraOp::Set {
                digest: digest.clone(),
                data_type: mark.clone(),
                value: Vec::new(),
            })
            .collect();
        self.extra.write_batch(&marks)?;
        crate::crash_point!("store.commit.before-content");
        let mut records = Vec::with_capacity(staged.len());
        let mut new_records = Vec::new();
        let mut committed = HashSet::new();
        for blob in staged {
            if !committed.contains(&blob.digest) {
                if let Some(existing) = self.index.get(&blob.digest)? {
                    if self.blobs.contains(&blob.digest)? {
                        records.push(existing);
                        continue;
                    }
                }
            }
            let (digest, size) = blob.writer.commit_unsynced()?;
            let record = BlobRecord {
                digest,
                size,
                media_type: blob.media_type,
                created_unix_ms: now_unix_ms(),
            };
            if committed.insert(record.digest.clone()) {
                new_records.push(record.clone());
            }
            records.push(record);
        }
        if !new_records.is_empty() {
            let new_digests: Vec<Digest> = new_records.iter().map(|r| r.digest.clone()).collect();
            crate::crash_point!("store.commit.before-sync");
            self.blobs.sync_committed(&new_digests)?;
            crate::crash_point!("store.commit.before-index");
            self.index.upsert_many(&new_records)?;
            crate::crash_point!("store.commit.after-index");
        }
        Ok(records)
    }

    /// Marks every blob of `wanted` that is indexed and present (and of the expected size, when
    /// one is given) as held by `holder`, in one step under their exclusive digest locks and
    /// one extra-data batch. Returns, for each, its record when it was marked, `None` when it
    /// is not (or no longer) there, or of another size, for the caller to write it.
    pub fn claim_existing_many(
        &self,
        wanted: &[(Digest, Option<u64>)],
        holder: &Holder,
    ) -> StoreResult<Vec<Option<BlobRecord>>> {
        let digests: Vec<Digest> = wanted.iter().map(|(d, _)| d.clone()).collect();
        let _locks = self.locks.lock_digests(&digests, LockMode::Exclusive)?;
        let mark = holder.mark();
        let mut found = Vec::with_capacity(wanted.len());
        let mut marks = Vec::new();
        for (digest, expected_size) in wanted {
            let record = match self.existing(digest)? {
                Some(record) if expected_size.is_none_or(|size| size == record.size) => record,
                _ => {
                    found.push(None);
                    continue;
                }
            };
            marks.push(ExtraOp::Set {
                digest: digest.clone(),
                data_type: mark.clone(),
                value: Vec::new(),
            });
            found.push(Some(record));
        }
        self.extra.write_batch(&marks)?;
        Ok(found)
    }
}
