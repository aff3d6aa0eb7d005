//! OCI garbage collection.
//!
//! Under the flavour GC lock, exclusive (imports, tags and lease creation hold it shared, so
//! nothing in flight is swept):
//! 1. expired leases are removed (listed only, in a dry run);
//! 2. mark, by digest: everything reachable from every ref and every live lease, then the
//!    referrers of every marked manifest, repeated until nothing new is marked;
//! 3. sweep every blob owned by `oci` and not marked: its referrer-index entries go first
//!    (they reference it and would otherwise keep it), then the `oci` owner mark, then the
//!    blob itself if nothing else holds it (another flavour's mark, another key/value entry);
//! 4. the base store GC.
//!
//! The mark is by digest, not by descriptor: a blob reached under any media type is kept.

use std::collections::HashSet;

use serde::Serialize;

use super::descriptor::{digest_of, new_descriptor};
use super::error::OciResult;
use super::graph::{Child, Walker};
use super::lease::now_unix_ms;
use super::source::StoreSource;
use super::{OciStore, FLAVOUR, LEASE_DATA_TYPE, REFERRER_DATA_TYPE};
use crate::store::{GcReport, OWNER_MARK_PREFIX};
use crate::traits::{BlobStore, Digest, ExtraData, Index, KvStore};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SweptBlob {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    /// Whether the blob itself went (would go, in a dry run); `false` when another flavour or
    /// another key/value entry still holds it, and only the `oci` mark was dropped.
    pub deleted: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OciGcReport {
    pub dry_run: bool,
    /// Blobs kept because a ref, a live lease or a live referrer reaches them.
    pub marked: u64,
    /// Blobs the OCI flavour let go of (would let go of, in a dry run).
    pub swept: Vec<SweptBlob>,
    /// Bytes of the swept blobs that were (would be) deleted.
    pub freed_bytes: u64,
    /// Expired leases removed (would be removed, in a dry run).
    pub expired_leases: Vec<String>,
    pub referrer_entries_removed: u64,
    /// The base store GC that ran afterwards (not in a dry run).
    pub base: Option<GcReport>,
}

impl<B: BlobStore, I: Index, X: ExtraData, K: KvStore> OciStore<'_, B, I, X, K> {
    pub fn gc(&self, dry_run: bool) -> OciResult<OciGcReport> {
        let _gc_lock = self.gc_lock()?;
        if !dry_run {
            self.clear_stale_import_holds()?;
        }
        let mut report = OciGcReport {
            dry_run,
            ..OciGcReport::default()
        };
        let lease_roots = self.collect_leases(dry_run, &mut report)?;
        let marked = self.mark(lease_roots)?;
        report.marked = marked.len() as u64;

        for digest in self.store.owned_by(FLAVOUR)? {
            if marked.contains(&digest) {
                continue;
            }
            let Ok(record) = self.store.info(&digest) else {
                // Indexed no more: only the mark is left, which base GC treats as orphan data.
                if !dry_run {
                    self.store.unmark_owner(&digest, FLAVOUR)?;
                }
                continue;
            };
            let deleted = if dry_run {
                self.would_delete(&digest)?
            } else {
                report.referrer_entries_removed += self.remove_referrer_entries(&digest)?;
                self.store.unmark_owner(&digest, FLAVOUR)?;
                self.store.delete_if_unreferenced(&digest)?
            };
            if deleted {
                report.freed_bytes += record.size;
            }
            report.swept.push(SweptBlob {
                digest,
                size: record.size,
                media_type: record.media_type,
                deleted,
            });
        }
        if !dry_run {
            report.base = Some(self.store.gc()?);
        }
        Ok(report)
    }

    /// Removes (or, dry, lists) expired leases; returns the digests of live ones as roots.
    fn collect_leases(&self, dry_run: bool, report: &mut OciGcReport) -> OciResult<Vec<Digest>> {
        let now = now_unix_ms();
        let mut roots = Vec::new();
        for lease in self.lease_list()? {
            if lease.is_expired_at(now) {
                if !dry_run {
                    self.store.remove_data(LEASE_DATA_TYPE, &lease.id)?;
                }
                report.expired_leases.push(lease.id);
            } else {
                roots.extend(lease.digests);
            }
        }
        Ok(roots)
    }

    /// Every digest that refs, leases and live referrers reach (and that is present).
    fn mark(&self, lease_digests: Vec<Digest>) -> OciResult<HashSet<Digest>> {
        let mut roots: Vec<Child> = self
            .ref_descriptors()?
            .into_iter()
            .map(|(_, descriptor)| Child::required(descriptor))
            .collect();
        for digest in lease_digests {
            // A lease may name a blob not written yet; the store's record gives the media type
            // to descend by.
            if let Ok(record) = self.store.info(&digest) {
                roots.push(Child {
                    descriptor: new_descriptor(&record.media_type, &digest, record.size),
                    optional: true,
                });
            }
        }
        let mut source = StoreSource { store: self.store };
        let mut walker = Walker::new();
        // Documents whose referrers are roots already. By digest, not by position in
        // `reached`: a blob met as a leaf first becomes a document in place.
        let mut referrers_looked_up: HashSet<Digest> = HashSet::new();
        while !roots.is_empty() {
            walker.visit(std::mem::take(&mut roots), &mut source)?;
            // Referrers of what was newly reached become roots, until a fixpoint.
            for reached in walker.reached.iter().filter(|r| r.document.is_some()) {
                if !referrers_looked_up.insert(reached.digest.clone()) {
                    continue;
                }
                for referrer in self.referrers(&reached.digest, None)? {
                    // Validated here so a bad entry names itself; the walker skips what it
                    // has walked already.
                    digest_of(&referrer, "a referrer index entry")?;
                    roots.push(Child {
                        descriptor: referrer,
                        optional: true,
                    });
                }
            }
        }
        let mut marked: HashSet<Digest> = walker.reached.into_iter().map(|r| r.digest).collect();
        // Corrupt blobs a ref reaches are kept: deleting them is a decision for fsck, not GC.
        marked.extend(walker.corrupt.into_iter().map(|(digest, _)| digest));
        Ok(marked)
    }

    /// Referrer-index entries naming `digest`, as referrer or as subject.
    fn remove_referrer_entries(&self, digest: &Digest) -> OciResult<u64> {
        let mut removed = 0;
        for key in self.store.data_referencing(digest)? {
            if key.data_type == REFERRER_DATA_TYPE
                && self.store.remove_data(REFERRER_DATA_TYPE, &key.key)?
            {
                removed += 1;
            }
        }
        for (key, _) in self
            .store
            .list_data(REFERRER_DATA_TYPE, &format!("{digest}/"))?
        {
            if self.store.remove_data(REFERRER_DATA_TYPE, &key)? {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Whether sweeping `digest` would delete it: no other owner mark, and no key/value entry
    /// other than its own referrer-index entries.
    fn would_delete(&self, digest: &Digest) -> OciResult<bool> {
        let own_mark = format!("{OWNER_MARK_PREFIX}{FLAVOUR}");
        let other_owner = self
            .store
            .extra_types(digest)?
            .iter()
            .any(|t| t.starts_with(OWNER_MARK_PREFIX) && *t != own_mark);
        // Referrer keys are "<subject>/<referrer>": those ending in this digest go with it.
        let own_suffix = format!("/{digest}");
        let other_reference = self
            .store
            .data_referencing(digest)?
            .iter()
            .any(|key| key.data_type != REFERRER_DATA_TYPE || !key.key.ends_with(&own_suffix));
        Ok(!other_owner && !other_reference)
    }
}
