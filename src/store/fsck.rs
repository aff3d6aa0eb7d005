//! Consistency check: rehash every blob, compare content, index and dependants.

use serde::Serialize;

use super::base::Store;
use super::error::StoreResult;
use super::fsutil::hash_reader;
use super::gc::GcOptions;
use super::locks::{LockGuard, LockMode};
use super::progress::{Progress, ProgressRead, Totals, NO_PROGRESS};
use crate::traits::{BlobRecord, BlobStore, Digest, ExtraData, Index, KvStore, StorageError};
use crate::util::io_context::IoContext;

/// One problem `fsck` found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FsckProblem {
    /// The index lists a blob whose content is gone.
    MissingContent {
        /// The blob.
        digest: Digest,
    },
    /// The content does not hash to its digest.
    CorruptContent {
        /// The digest the blob is stored under.
        digest: Digest,
        /// The digest its content hashes to.
        actual: Digest,
    },
    /// The content's size differs from the index record.
    SizeMismatch {
        /// The blob.
        digest: Digest,
        /// The size the index records, in bytes.
        indexed: u64,
        /// The size of the stored content, in bytes.
        actual: u64,
    },
    /// Content without an index record (garbage).
    UnindexedContent {
        /// The digest the content is stored under.
        digest: Digest,
    },
    /// Extra data of a blob that is not indexed.
    OrphanExtraData {
        /// The blob the extra data belongs to.
        digest: Digest,
    },
    /// Key/value entries referencing a blob that is not indexed.
    DanglingReference {
        /// The digest the entries reference.
        digest: Digest,
    },
    /// An indexed blob that no holder keeps (no owner mark, no key/value entry): garbage left
    /// by a crash between a holder letting go and the delete; `gc` removes it.
    UnheldBlob {
        /// The blob.
        digest: Digest,
    },
}

/// What [`Store::fsck`] checked and found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FsckReport {
    /// Indexed blobs whose content was hashed.
    pub blobs_checked: u64,
    /// Bytes of content hashed.
    pub bytes_checked: u64,
    /// Every problem found, including those `repair` fixed.
    pub problems: Vec<FsckProblem>,
    /// Problems that `--repair` fixed.
    pub repaired: u64,
}

impl FsckReport {
    /// Whether no problem was found.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// How [`Store::fsck`] runs.
#[derive(Clone, Copy)]
pub struct FsckOptions<'p> {
    /// Repair what it finds (`oci-store fsck --repair`); off by default: only report.
    pub repair: bool,
    /// Where the blobs and bytes hashed are reported ([`NoProgress`](super::NoProgress) by
    /// default).
    pub progress: &'p dyn Progress,
}

impl Default for FsckOptions<'_> {
    fn default() -> Self {
        FsckOptions {
            repair: false,
            progress: &NO_PROGRESS,
        }
    }
}

impl FsckOptions<'_> {
    /// Check and repair, without progress.
    pub fn repairing() -> Self {
        FsckOptions {
            repair: true,
            ..FsckOptions::default()
        }
    }
}

impl Store {
    /// Rehashes every indexed blob and cross-checks content, index, extra data and key/value
    /// references, and that every indexed blob has a holder. With `repair`: a blob whose content
    /// is missing or corrupt is deleted with its dependants (it cannot be trusted), so is a blob
    /// that nothing holds, a record whose size disagrees with content that hashes
    /// to its digest is corrected, unindexed content and orphans are removed.
    ///
    /// The blobs and bytes hashed go to `options.progress`.
    pub fn fsck(&self, options: FsckOptions<'_>) -> StoreResult<FsckReport> {
        let FsckOptions { repair, progress } = options;
        let mut report = FsckReport::default();
        progress.start("checking", {
            let totals = self.index.totals()?;
            Totals::items_and_bytes(totals.records, totals.bytes)
        });
        let lock_mode = if repair {
            LockMode::Exclusive
        } else {
            LockMode::Shared
        };
        for record in self.records() {
            let record = record?;
            // Hashed without the digest lock, so no writer or deleter of that stripe waits for
            // a whole blob to be read. Committed content never changes (its name is its hash),
            // so content that hashes right needs no second look; a problem is checked again
            // under the lock, where a delete or commit in flight has finished.
            // A read error here may only mean the blob was deleted while it was read (chunked
            // backends lose the chunks): it is looked at again under the lock too.
            let hashed = self.rehash_reporting(&record.digest, progress);
            progress.item_done();
            let looks_healthy = match hashed {
                Ok(hashed) => {
                    self.content_problem(&record, &hashed).is_none()
                        && self.is_held_locked(&record.digest)?
                }
                Err(_) => false,
            };
            if looks_healthy {
                report.blobs_checked += 1;
                report.bytes_checked += record.size;
                continue;
            }
            let _lock = LockGuard::acquire(&self.locks.digest_lock(&record.digest), lock_mode)?;
            // Deleted since the page was read: nothing to check.
            let Some(record) = self.index.get(&record.digest)? else {
                continue;
            };
            let problem = match self.content_problem(&record, &self.rehash(&record.digest)?) {
                Some(problem) => Some(problem),
                None => {
                    report.blobs_checked += 1;
                    report.bytes_checked += record.size;
                    if self.is_held_locked(&record.digest)? {
                        None
                    } else {
                        Some(FsckProblem::UnheldBlob {
                            digest: record.digest.clone(),
                        })
                    }
                }
            };
            if let Some(problem) = problem {
                if repair {
                    match &problem {
                        // The content hashes to its digest, so it is the blob: only the
                        // record is wrong. Correct it rather than drop a good blob and the
                        // refs and data attached to it.
                        FsckProblem::SizeMismatch { actual, .. } => {
                            self.index.upsert(&BlobRecord {
                                size: *actual,
                                ..record.clone()
                            })?;
                        }
                        _ => {
                            self.delete_locked(&record.digest)?;
                        }
                    }
                    report.repaired += 1;
                }
                report.problems.push(problem);
            }
        }

        progress.finish();
        let unindexed = |d: &Digest| -> StoreResult<bool> { Ok(self.index.get(d)?.is_none()) };
        // Listed a page at a time (the `fs` one sorted externally): nothing here holds a
        // store's worth of digests.
        for digest in self.blobs.sorted_digests()? {
            let digest = digest?;
            if unindexed(&digest)? {
                report
                    .problems
                    .push(FsckProblem::UnindexedContent { digest });
            }
        }
        for digest in self.extra.sorted_digests()? {
            let digest = digest?;
            if unindexed(&digest)? {
                report
                    .problems
                    .push(FsckProblem::OrphanExtraData { digest });
            }
        }
        for digest in self.kv.sorted_referenced_digests()? {
            let digest = digest?;
            if unindexed(&digest)? {
                report
                    .problems
                    .push(FsckProblem::DanglingReference { digest });
            }
        }
        if repair {
            // The base GC removes exactly the unindexed content and orphans listed above, each
            // re-checked under its lock.
            let gc = self.gc(GcOptions { progress })?;
            report.repaired += (gc.unindexed_blobs.len()
                + gc.unheld_blobs.len()
                + gc.orphan_extra_data.len()
                + gc.dangling_references.len()) as u64;
        }
        Ok(report)
    }

    /// What is wrong with a record's content, given its hash (`None`: absent).
    fn content_problem(
        &self,
        record: &BlobRecord,
        hashed: &Option<(Digest, u64)>,
    ) -> Option<FsckProblem> {
        match hashed {
            None => Some(FsckProblem::MissingContent {
                digest: record.digest.clone(),
            }),
            Some((actual, _)) if *actual != record.digest => Some(FsckProblem::CorruptContent {
                digest: record.digest.clone(),
                actual: actual.clone(),
            }),
            Some((_, size)) if *size != record.size => Some(FsckProblem::SizeMismatch {
                digest: record.digest.clone(),
                indexed: record.size,
                actual: *size,
            }),
            Some(_) => None,
        }
    }

    /// Hashes stored content: its actual digest (in the algorithm of `digest`) and size, or
    /// `None` if the content is absent.
    pub fn rehash(&self, digest: &Digest) -> StoreResult<Option<(Digest, u64)>> {
        self.rehash_reporting(digest, &NO_PROGRESS)
    }

    fn rehash_reporting(
        &self,
        digest: &Digest,
        progress: &dyn Progress,
    ) -> StoreResult<Option<(Digest, u64)>> {
        let reader = match self.blobs.open(digest) {
            Ok(reader) => reader,
            Err(StorageError::BlobNotFound(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        hash_reader(digest.algorithm(), &mut ProgressRead::new(reader, progress))
            .map(Some)
            .map_err(|e| {
                super::StoreError::from(IoContext::new("reading blob", digest.to_string(), e))
            })
    }
}
