//! OCI garbage collection.
//!
//! Under the flavour GC lock, exclusive (imports, tags and lease creation hold it shared, so
//! nothing in flight is swept; the wait for it is bounded, see `OciStore::gc_lock`):
//! 1. mark, by digest: everything reachable from every ref and every live lease, then the
//!    referrers of every marked manifest, repeated until nothing new is marked, following
//!    each document's links as recorded at its commit (`links`; a document without them is
//!    read). Nothing has changed yet, and the GC stops here with an error on any storage
//!    error other than "not found" and on any document a root reaches that must be read and
//!    cannot be (corrupt, malformed, or indexed with its content gone): its children are
//!    unknown, so nothing may be swept;
//! 2. expired leases are removed (listed only, in a dry run);
//! 3. sweep every blob owned by `oci` and not marked: its referrer-index entries go first
//!    (they reference it and would otherwise keep it), then the release drops the `oci`
//!    mark and deletes the blob if nothing else holds it (the base store's or another
//!    flavour's mark, another key/value entry), in one step under its digest lock;
//!    Released in batches (`Store::release_many`): few commits for many blobs;
//! 4. the base store GC (which also collects blobs no holder keeps), on another thread
//!    alongside step 3, and going on after the flavour GC lock is released.
//!
//! The mark is by digest, not by descriptor: a blob reached under any media type is kept.

use std::collections::HashSet;

use serde::Serialize;

use oci_spec::image::Descriptor;

use super::descriptor::{digest_of, media_type_of, new_descriptor};
use super::error::{OciError, OciResult};
use super::graph::{Child, DocumentKind, Walker};
use super::lease::Lease;
use super::links::{missing_records, LINKS_DATA_TYPE};
use super::source::{IndexSnapshot, IndexedStoreSource};
use super::{
    OciStore, HOLDER, IMPORT_DATA_TYPE, IMPORT_HOLDER_KIND, LEASE_DATA_TYPE, REFERRER_DATA_TYPE,
};
use crate::store::{GcReport, Release, StoreError, Totals};
use crate::traits::{Digest, ExtraOp, KvKey, KvOp, KvOpOutcome};
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
        if dry_run {
            let _gc_lock = self.gc_lock()?;
            return self.collect_holding_gc_lock(true);
        }
        self.collect_with_base_gc(|| Ok(()))
    }

    /// Steps 1-3 under the flavour GC lock, after `first` (run under the same lock hold), with
    /// step 4, the base store's GC, running alongside on another core once the dead
    /// operations are cleared (so the flavour's report counts what they held). The base GC
    /// needs no flavour's roots: it only takes what no holder keeps (no owner mark, no entry)
    /// and what has no index record, each decided again under the blob's exclusive digest
    /// lock, as it does beside any other process; an import in flight holds everything it
    /// touches under its operation's mark (`owner.oci-op.<id>`). The flavour GC lock is let
    /// go as soon as the sweep is done, so imports need not wait for the base GC.
    pub(super) fn collect_with_base_gc(
        &self,
        first: impl FnOnce() -> OciResult<()>,
    ) -> OciResult<OciGcReport> {
        std::thread::scope(|scope| {
            let gc_lock = self.gc_lock()?;
            first()?;
            let stale_operations = self.clear_stale_operations()?;
            // Once the mark is done (it has both cores until then).
            let mut base = None;
            let flavour = self.mark_and_sweep(false, stale_operations, || {
                crate::crash_point!("oci.gc.before-base-gc");
                // Its own progress is not shown: the flavour's sweep has the line until it
                // ends; then "collecting" stands for what is left of the base GC.
                base = Some(scope.spawn(|| self.store.gc(crate::store::GcOptions::default())));
            });
            drop(gc_lock);
            // What is left is the base GC's: its phase, shown while it ends.
            self.progress.start("collecting", Totals::UNKNOWN);
            let base = base.map(|base| {
                base.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            });
            self.progress.finish();
            // The flavour's failure first: the base GC did not begin if the mark failed.
            let mut report = flavour?;
            report.base = base.transpose()?;
            Ok(report)
        })
    }

    /// Steps 1-3, for a caller that holds the flavour GC lock exclusively (the GC itself, and
    /// a prune that removed its victims under the same lock).
    pub(super) fn collect_holding_gc_lock(&self, dry_run: bool) -> OciResult<OciGcReport> {
        let stale_operations = if dry_run {
            self.store.dead_operations()?
        } else {
            self.clear_stale_operations()?
        };
        self.mark_and_sweep(dry_run, stale_operations, || {})
    }

    /// What crashed operations held (of any flavour: each is judged by its own liveness
    /// lock), and what crashed imports of versions before operations held: those ran under
    /// the GC lock, shared, so every one recorded now is stale. Cleared, with what clearing
    /// them freed. (A dry run counts what finishing them would free instead, so it says what
    /// a real GC frees.)
    fn clear_stale_operations(&self) -> OciResult<Vec<crate::store::StaleOperation>> {
        let cleared = self.store.clear_dead_operations_reporting()?;
        self.store
            .clear_legacy_operations(IMPORT_DATA_TYPE, IMPORT_HOLDER_KIND)?;
        crate::crash_point!("oci.gc.after-stale-imports");
        Ok(cleared)
    }

    /// Steps 1-3 after the stale operations: mark, expired leases, sweep.
    fn mark_and_sweep(
        &self,
        dry_run: bool,
        stale_operations: Vec<crate::store::StaleOperation>,
        marked_all: impl FnOnce(),
    ) -> OciResult<OciGcReport> {
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
        // The index read once: the mark looks up every blob every ref reaches, the sweep what
        // it lets go of.
        let index = IndexSnapshot::read(self.store)?;
        // What the flavour owns, listed on another core meanwhile (nothing of the flavour
        // changes under the exclusive GC lock).
        let (marked, owned) = std::thread::scope(|scope| {
            let owned = scope.spawn(|| self.store.owned_by(&HOLDER));
            let marked = self.mark(&live, &index);
            let owned = owned
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (marked, owned)
        });
        let Marked {
            digests: marked,
            unrecorded_links,
        } = marked?;
        let owned = owned?;
        marked_all();
        self.progress.finish();
        report.marked = marked.len() as u64;
        if !dry_run && !unrecorded_links.is_empty() {
            self.record_links(unrecorded_links)?;
        }

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
        self.progress
            .start("sweeping", Totals::items(owned.len() as u64));
        for digest in owned {
            self.progress.item_done();
            if marked.contains(&digest) {
                continue;
            }
            // The mark's snapshot of the index answers for what it saw (nothing of the flavour
            // changes under the exclusive GC lock); anything else is asked again.
            let record = match index.record(&digest) {
                Some((size, media_type)) => Some((size, media_type.to_string())),
                None => match self.store.info(&digest) {
                    Ok(record) => Some((record.size, record.media_type)),
                    // Indexed no more: only the mark is left (orphan data), which release drops.
                    Err(StoreError::NotFound(_)) => None,
                    Err(error) => return Err(error.into()),
                },
            };
            match record {
                Some((size, media_type)) if dry_run => {
                    let deleted = self.would_delete(&digest, &expired_ids)?;
                    report.sweep(digest, size, media_type, deleted);
                }
                record => to_release.push((digest, record)),
            }
        }
        self.progress.finish();
        // Only the victims are needed from here on.
        crate::util::background_drop::drop_in_background((index, marked));
        if dry_run {
            return Ok(report);
        }
        // The referrer entries first, in one batch: they reference the blobs and would keep
        // them.
        let swept: HashSet<&Digest> = to_release.iter().map(|(digest, _)| digest).collect();
        report.referrer_entries_removed = self.remove_referrer_entries(&swept)?;
        // Drop the marks and delete what nothing else holds: each blob decided under its
        // digest lock, the deletes batched.
        let digests: Vec<Digest> = to_release.iter().map(|(d, _)| d.clone()).collect();
        crate::crash_point!("oci.gc.before-release");
        let outcomes = self.store.release_many(&digests, &HOLDER)?;
        crate::crash_point!("oci.gc.after-release");
        for ((digest, record), outcome) in to_release.into_iter().zip(outcomes) {
            if let Some((size, media_type)) = record {
                let deleted = outcome == Release::Deleted;
                report.sweep(digest, size, media_type, deleted);
            }
        }
        Ok(report)
    }

    /// Every digest that refs, live leases and live referrers reach (and that is present).
    /// Fails, before anything is swept, on any error other than "not found" and on any
    /// document a root reaches that cannot be read: its children would be unknown.
    fn mark(&self, live_leases: &[Lease], index: &IndexSnapshot) -> OciResult<Marked> {
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
        let mut source = IndexedStoreSource::new(self.store, index);
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
            for reached in walker.reached.iter().filter(|r| r.is_document()) {
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
        Ok(Marked {
            unrecorded_links: missing_records(&walker.reached),
            digests: walker.reached.into_iter().map(|r| r.digest).collect(),
        })
    }

    /// Records the links of documents the mark had to read (a store from before links were
    /// recorded at commit), so the next walk need not: derived data, written under the GC
    /// lock like the sweep.
    fn record_links(&self, records: Vec<ExtraOp>) -> OciResult<()> {
        let mut values: std::collections::HashMap<Digest, Vec<u8>> = records
            .into_iter()
            .filter_map(|op| match op {
                ExtraOp::Set { digest, value, .. } => Some((digest, value)),
                _ => None,
            })
            .collect();
        let digests: Vec<Digest> = values.keys().cloned().collect();
        self.store
            .update_extra_many(&digests, LINKS_DATA_TYPE, |digest, current| {
                current.is_none().then(|| values.remove(digest)).flatten()
            })?;
        Ok(())
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

    /// Removes the referrer-index entries naming any of `swept`, as referrer or as subject
    /// (keys are `<subject>/<referrer>`, and each entry references its referrer), in one
    /// batch. Returns how many went.
    fn remove_referrer_entries(&self, swept: &HashSet<&Digest>) -> OciResult<u64> {
        if swept.is_empty() {
            return Ok(0);
        }
        let names_swept = |text: &str| {
            Digest::parse(text)
                .ok()
                .is_some_and(|digest| swept.contains(&digest))
        };
        let removals: Vec<KvOp> = self
            .store
            .list_data(REFERRER_DATA_TYPE, "")?
            .into_iter()
            .filter(|(key, entry)| {
                let (subject, referrer) = key.split_once('/').unwrap_or((key, ""));
                names_swept(subject)
                    || names_swept(referrer)
                    || entry.blob.as_ref().is_some_and(|blob| swept.contains(blob))
            })
            .map(|(key, _)| KvOp::Remove {
                data_type: REFERRER_DATA_TYPE.to_string(),
                key,
            })
            .collect();
        let outcomes = self.store.write_data_batch(&removals)?;
        Ok(outcomes
            .iter()
            .filter(|outcome| matches!(outcome, KvOpOutcome::Removed(true)))
            .count() as u64)
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

/// What the mark found: every digest to keep, and the links of the documents it had to read.
struct Marked {
    digests: foldhash::HashSet<Digest>,
    unrecorded_links: Vec<ExtraOp>,
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
