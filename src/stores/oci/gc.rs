//! OCI garbage collection.
//!
//! Under the flavour GC lock, exclusive (imports, tags and lease creation hold it shared, so
//! nothing in flight is swept; the wait for it is bounded, see `OciStore::gc_lock`):
//! 1. mark, by digest: everything reachable from every ref and every live lease, then the
//!    referrers of every marked manifest, repeated until nothing new is marked. Nothing has
//!    changed yet, and the GC stops here with an error on any storage error other than "not
//!    found" and on any document a root reaches that cannot be read (corrupt, malformed, or
//!    indexed with its content gone): its children are unknown, so nothing may be swept;
//! 2. expired leases are removed (listed only, in a dry run);
//! 3. sweep every blob owned by `oci` and not marked: its referrer-index entries go first
//!    (they reference it and would otherwise keep it), then the release drops the `oci`
//!    mark and deletes the blob if nothing else holds it (the base store's or another
//!    flavour's mark, another key/value entry), in one step under its digest lock;
//!    Released in batches (`Store::release_many`): few commits for many blobs;
//! 4. after the flavour GC lock is released, the base store GC (which also collects blobs no
//!    holder keeps).
//!
//! The mark is by digest, not by descriptor: a blob reached under any media type is kept.

use std::collections::HashSet;

use serde::Serialize;

use oci_spec::image::Descriptor;

use super::descriptor::{digest_of, media_type_of, new_descriptor};
use super::error::{OciError, OciResult};
use super::graph::{Child, DocumentKind, Walker};
use super::lease::Lease;
use super::source::{IndexSnapshot, IndexedStoreSource};
use super::{
    OciStore, HOLDER, IMPORT_DATA_TYPE, IMPORT_HOLDER_KIND, LEASE_DATA_TYPE, REFERRER_DATA_TYPE,
};
use crate::store::{GcReport, Release, StoreError, Totals};
use crate::traits::{Digest, KvKey};
use crate::util::clock::now_unix_ms;

/// A blob the OCI GC let go of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SweptBlob {
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Its media type.
    pub media_type: String,
    /// Whether the blob itself went (would go, in a dry run); `false` when another flavour or
    /// another key/value entry still holds it, and only the `oci` mark was dropped.
    pub deleted: bool,
}

/// What [`OciStore::gc`] did (or would do, in a dry run).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OciGcReport {
    /// Whether this was a dry run: nothing was changed.
    pub dry_run: bool,
    /// Blobs kept because a ref, a live lease or a live referrer reaches them.
    pub marked: u64,
    /// Blobs the OCI flavour let go of (would let go of, in a dry run).
    pub swept: Vec<SweptBlob>,
    /// Bytes of the swept blobs that were (would be) deleted.
    pub freed_bytes: u64,
    /// Expired leases removed (would be removed, in a dry run).
    pub expired_leases: Vec<String>,
    /// Referrer entries removed with the blobs they recorded (not counted in a dry run).
    pub referrer_entries_removed: u64,
    /// The base store GC that ran afterwards (not in a dry run).
    pub base: Option<GcReport>,
    /// Operations (imports, pulls) whose process died, and what finishing them freed (would
    /// free, in a dry run): the blobs only they held.
    pub stale_operations: Vec<crate::store::StaleOperation>,
}

impl OciGcReport {
    /// Bytes freed (would be freed) by the OCI sweep and by finishing dead operations; the
    /// base GC's are in [`OciGcReport::base`].
    pub fn flavour_freed_bytes(&self) -> u64 {
        self.freed_bytes + self.stale_freed_bytes()
    }

    /// Bytes finishing dead operations freed (would free).
    pub fn stale_freed_bytes(&self) -> u64 {
        self.stale_operations.iter().map(|op| op.freed_bytes).sum()
    }

    /// Blobs deleted (that would be deleted) by the sweep and by finishing dead operations.
    pub fn deleted_blobs(&self) -> u64 {
        self.swept.iter().filter(|blob| blob.deleted).count() as u64
            + self
                .stale_operations
                .iter()
                .map(|op| op.freed_blobs)
                .sum::<u64>()
    }
}

impl OciGcReport {
    fn sweep(&mut self, digest: Digest, size: u64, media_type: String, deleted: bool) {
        if deleted {
            self.freed_bytes += size;
        }
        self.swept.push(SweptBlob {
            digest,
            size,
            media_type,
            deleted,
        });
    }
}

impl OciStore<'_> {
    /// Collects the OCI flavour's garbage: removes expired leases, lets go of every blob no ref,
    /// live lease or live referrer reaches, then runs the base store's GC. With `dry_run`, only
    /// reports what it would do. Fails with [`OciError::GcLockTimeout`] when mutations keep the
    /// GC lock too long, and with [`OciError::GcUnreadableDocument`], sweeping nothing, when a
    /// reached document cannot be read.
    pub fn gc(&self, dry_run: bool) -> OciResult<OciGcReport> {
        let mut report = self.gc_under_lock(dry_run)?;
        // After the flavour GC lock is released: the base GC needs no flavour's roots. It only
        // takes what no holder keeps (no owner mark, no entry) and what has no index record,
        // each decided again under the blob's exclusive digest lock, and an import in flight
        // holds everything it touches under its operation's mark (`owner.oci-op.<id>`). So
        // imports need not queue behind it.
        if !dry_run {
            self.base_gc_after(&mut report)?;
        }
        Ok(report)
    }

    /// Step 4: the base store's GC, once the flavour GC lock is released.
    pub(super) fn base_gc_after(&self, report: &mut OciGcReport) -> OciResult<()> {
        crate::crash_point!("oci.gc.before-base-gc");
        report.base = Some(self.store.gc(crate::store::GcOptions {
            progress: self.progress,
        })?);
        Ok(())
    }

    /// Steps 1-3, under the flavour GC lock.
    fn gc_under_lock(&self, dry_run: bool) -> OciResult<OciGcReport> {
        let _gc_lock = self.gc_lock()?;
        self.collect_holding_gc_lock(dry_run)
    }

    /// Steps 1-3, for a caller that holds the flavour GC lock exclusively (the GC itself, and
    /// a prune that removed its victims under the same lock).
    pub(super) fn collect_holding_gc_lock(&self, dry_run: bool) -> OciResult<OciGcReport> {
        // What crashed operations held (of any flavour: each is judged by its own liveness
        // lock), and what crashed imports of versions before operations held: those ran under
        // this lock, shared, so every one recorded now is stale. A dry run counts what
        // finishing them would free, so it says what a real GC frees.
        let stale_operations = if dry_run {
            self.store.dead_operations()?
        } else {
            let cleared = self.store.clear_dead_operations_reporting()?;
            self.store
                .clear_legacy_operations(IMPORT_DATA_TYPE, IMPORT_HOLDER_KIND)?;
            crate::crash_point!("oci.gc.after-stale-imports");
            cleared
        };
        let mut report = OciGcReport {
            dry_run,
            stale_operations,
            ..OciGcReport::default()
        };
        // Mark first and change nothing until it is complete: an error or an unreadable
        // document anywhere stops the GC with nothing swept.
        let now = now_unix_ms();
        let (expired, live): (Vec<Lease>, Vec<Lease>) = self
            .lease_list()?
            .into_iter()
            .partition(|lease| lease.is_expired_at(now));
        self.progress.start("marking", Totals::UNKNOWN);
        let marked = self.mark(&live)?;
        self.progress.finish();
        report.marked = marked.len() as u64;

        // Expired leases go before the sweep: an upload lease references its blob, and must not
        // make a dry run say the blob stays.
        let expired_ids: HashSet<String> = expired.iter().map(|lease| lease.id.clone()).collect();
        for lease in expired {
            if !dry_run {
                self.store.remove_data(LEASE_DATA_TYPE, &lease.id)?;
            }
            report.expired_leases.push(lease.id);
        }
        crate::crash_point!("oci.gc.after-leases");
        let mut to_release = Vec::new();
        let owned = self.store.owned_by(&HOLDER)?;
        self.progress
            .start("sweeping", Totals::items(owned.len() as u64));
        for digest in owned {
            self.progress.item_done();
            if marked.contains(&digest) {
                continue;
            }
            let record = match self.store.info(&digest) {
                Ok(record) => record,
                // Indexed no more: only the mark is left (orphan data), which release drops.
                Err(StoreError::NotFound(_)) => {
                    to_release.push((digest, None));
                    continue;
                }
                Err(error) => return Err(error.into()),
            };
            if dry_run {
                let deleted = self.would_delete(&digest, &expired_ids)?;
                report.sweep(digest, record.size, record.media_type, deleted);
            } else {
                // The referrer entries first: they reference the blob and would keep it.
                report.referrer_entries_removed += self.remove_referrer_entries(&digest)?;
                to_release.push((digest, Some(record)));
            }
        }
        self.progress.finish();
        if dry_run {
            return Ok(report);
        }
        // Drop the marks and delete what nothing else holds: each blob decided under its
        // digest lock, the deletes batched.
        let digests: Vec<Digest> = to_release.iter().map(|(d, _)| d.clone()).collect();
        crate::crash_point!("oci.gc.before-release");
        let outcomes = self.store.release_many(&digests, &HOLDER)?;
        crate::crash_point!("oci.gc.after-release");
        for ((digest, record), outcome) in to_release.into_iter().zip(outcomes) {
            if let Some(record) = record {
                let deleted = outcome == Release::Deleted;
                report.sweep(digest, record.size, record.media_type, deleted);
            }
        }
        Ok(report)
    }

    /// Every digest that refs, live leases and live referrers reach (and that is present).
    /// Fails, before anything is swept, on any error other than "not found" and on any
    /// document a root reaches that cannot be read: its children would be unknown.
    fn mark(&self, live_leases: &[Lease]) -> OciResult<HashSet<Digest>> {
        let mut roots: Vec<Root> = self
            .ref_descriptors()?
            .into_iter()
            .map(|(name, descriptor)| Root {
                origin: format!("ref {name}"),
                ref_name: Some(name),
                child: Child::required(descriptor),
            })
            .collect();
        for lease in live_leases {
            for digest in &lease.digests {
                // A lease may name a blob not written yet; the store's record gives the media
                // type to descend by. Only "not found" means absent.
                let record = match self.store.info(digest) {
                    Ok(record) => record,
                    Err(StoreError::NotFound(_)) => continue,
                    Err(error) => return Err(error.into()),
                };
                roots.push(Root {
                    origin: format!("lease {}", lease.id),
                    ref_name: None,
                    child: Child {
                        descriptor: new_descriptor(&record.media_type, digest, record.size),
                        optional: true,
                    },
                });
            }
        }
        // The index read once: the mark looks up every blob every ref reaches.
        let index = IndexSnapshot::read(self.store)?;
        let mut source = IndexedStoreSource::new(self.store, &index);
        let mut walker = Walker::new();
        // Documents whose referrers are roots already. By digest, not by position in
        // `reached`: a blob met as a leaf first becomes a document in place.
        let mut referrers_looked_up: HashSet<Digest> = HashSet::new();
        // Read once: nothing writes referrer entries while the GC lock is held exclusively.
        let referrers = self.referrers_by_subject()?;
        while !roots.is_empty() {
            // One root at a time, so an unreadable document is reported with what led to it.
            for root in std::mem::take(&mut roots) {
                let (corrupt_before, missing_before) = (walker.corrupt.len(), walker.missing.len());
                walker
                    .visit(vec![root.child.clone()], &mut source)
                    .map_err(|error| root.unreadable_on_error(error))?;
                self.progress.item_done();
                if let Some((digest, reason)) = walker.corrupt.get(corrupt_before) {
                    return Err(root.unreadable(format!("blob {digest}"), reason.clone()));
                }
                for (digest, descriptor) in &walker.missing[missing_before..] {
                    self.refuse_missing_document(&root, digest, descriptor)?;
                }
            }
            // Referrers of what was newly reached become roots, until a fixpoint.
            for reached in walker.reached.iter().filter(|r| r.document.is_some()) {
                if !referrers_looked_up.insert(reached.digest.clone()) {
                    continue;
                }
                for referrer in referrers
                    .get(&reached.digest)
                    .into_iter()
                    .flatten()
                    .cloned()
                {
                    // Validated here so a bad entry names itself; the walker skips what it
                    // has walked already.
                    digest_of(&referrer, "a referrer index entry")?;
                    roots.push(Root {
                        origin: format!("a referrer of {}", reached.digest),
                        ref_name: None,
                        child: Child {
                            descriptor: referrer,
                            optional: true,
                        },
                    });
                }
            }
        }
        Ok(walker.reached.into_iter().map(|r| r.digest).collect())
    }

    /// A required document the walk found absent: fine if it is not in the store (nothing can
    /// be known about it, and nothing of it is there to keep), but indexed with its content
    /// gone it is damage, whose children must not be swept.
    fn refuse_missing_document(
        &self,
        root: &Root,
        digest: &Digest,
        descriptor: &Descriptor,
    ) -> OciResult<()> {
        let media_type = media_type_of(descriptor);
        if DocumentKind::of(&media_type).is_document() && self.store.contains(digest)? {
            return Err(root.unreadable(
                format!("{media_type} {digest}"),
                "it is indexed but its content is missing".to_string(),
            ));
        }
        Ok(())
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

    /// Whether sweeping `digest` would delete it: its own referrer-index entries and the
    /// `expired` leases go first (see the sweep), so only another holder's mark or another
    /// entry keeps it.
    pub(super) fn would_delete(
        &self,
        digest: &Digest,
        expired: &HashSet<String>,
    ) -> OciResult<bool> {
        // Referrer keys are "<subject>/<referrer>": those ending in this digest go with it.
        let own_suffix = format!("/{digest}");
        let goes_first = |key: &KvKey| {
            (key.data_type == REFERRER_DATA_TYPE && key.key.ends_with(&own_suffix))
                || (key.data_type == LEASE_DATA_TYPE && expired.contains(&key.key))
        };
        Ok(self
            .store
            .would_delete_on_release(digest, &HOLDER, goes_first)?)
    }
}

/// A GC root with what it came from, for errors.
struct Root {
    origin: String,
    ref_name: Option<String>,
    child: Child,
}

impl Root {
    fn unreadable(&self, document: String, reason: String) -> OciError {
        OciError::GcUnreadableDocument {
            document,
            root: self.origin.clone(),
            ref_name: self.ref_name.clone(),
            reason,
        }
    }

    /// Errors about the content of a document (malformed, oversize, a bad descriptor in it)
    /// name the document and the root; storage errors stop the GC as they are.
    fn unreadable_on_error(&self, error: OciError) -> OciError {
        match error {
            OciError::InvalidDocument { context, reason } => self.unreadable(context, reason),
            OciError::DocumentTooLarge { .. } | OciError::InvalidDigest { .. } => {
                let reason = error.to_string();
                self.unreadable("a document".to_string(), reason)
            }
            other => other,
        }
    }
}
