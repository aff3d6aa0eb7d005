//! appc garbage collection by age. Under the flavour GC lock, exclusive (imports, removals,
//! exports and remote records hold it shared, so nothing in flight is collected):
//! 1. blobs the flavour holds without image info (an import or removal a crash cut short)
//!    are released;
//! 2. images used (or imported) within the grace period are kept, and so are the
//!    `keep_per_name` most recently used of each name;
//! 3. every image a kept image depends on (recursively) is kept;
//! 4. the rest go, least recently used first, each with its remote records and rendered
//!    trees; the blob itself goes unless another holder (the OCI flavour, a `blob put`)
//!    keeps it;
//! 5. directories dead renders left are removed; one that cannot be is reported in
//!    `leftovers_not_removed` and skipped, never failing the collection.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use super::error::{AppcError, AppcResult};
use super::info::ImageInfo;
use super::{AppcStore, HOLDER, REMOTE_DATA_TYPE};
use crate::store::retention::{self, Candidate, Inventory, RetentionPolicy};
use crate::stores::rootfs::LeftoverNotRemoved;
use crate::traits::{Digest, KvKey};
use crate::util::clock::now_unix_ms;

/// How [`AppcStore::gc`] chooses what to remove.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppcGcOptions {
    /// Images used within this many milliseconds are kept.
    pub grace_period_ms: i64,
    /// Keep at least this many of each name (the most recently used).
    pub keep_per_name: Option<usize>,
    /// Only report what would go.
    pub dry_run: bool,
    /// The time GC ages against; now when `None` (tests move it).
    pub now_ms: Option<i64>,
}

impl Default for AppcGcOptions {
    fn default() -> Self {
        AppcGcOptions {
            grace_period_ms: 24 * 3600 * 1000,
            keep_per_name: None,
            dry_run: false,
            now_ms: None,
        }
    }
}

/// An image the appc GC removed (would remove, in a dry run).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RemovedImage {
    /// The image ID (`sha512-...`).
    pub id: String,
    /// The image name.
    pub name: String,
    /// Its `version` label, if any.
    pub version: Option<String>,
    /// When it was last used (or imported, if never used), in milliseconds since the Unix epoch.
    pub last_used_ms: i64,
    /// The image's size in bytes.
    pub size: u64,
    /// Whether the blob went (would go); `false` when another holder keeps it.
    pub deleted: bool,
    /// ACI URLs of the remote cache records removed with it.
    pub remote_records: Vec<String>,
    /// Rendered trees of the image removed with it (0 in a dry run).
    pub rendered_trees: u64,
}

/// What [`AppcStore::gc`] did (or would do, in a dry run).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AppcGcReport {
    /// Whether this was a dry run: nothing was changed.
    pub dry_run: bool,
    /// Images kept: used within the grace period, among the `keep_per_name` newest, or a
    /// dependency of one of those.
    pub kept: u64,
    /// Kept only because a kept image depends on them.
    pub kept_as_dependency: Vec<String>,
    /// Images removed, least recently used first.
    pub removed: Vec<RemovedImage>,
    /// Blobs held without info (unfinished imports or removals) that were released.
    pub unfinished: Vec<String>,
    /// Bytes of the blobs deleted (would be, in a dry run; unfinished imports are counted only
    /// outside a dry run).
    pub freed_bytes: u64,
    /// Directories of dead renders that could not be removed (reported, skipped: the rest of
    /// the collection goes on).
    pub leftovers_not_removed: Vec<LeftoverNotRemoved>,
}

impl AppcStore<'_> {
    /// Removes images unused for longer than the grace period (keeping the `keep_per_name` most
    /// recently used of each name and every dependency of a kept image), with their remote records
    /// and rendered trees, and releases the blobs of unfinished imports or removals. Holds the
    /// flavour GC lock exclusively, so imports, removals and exports wait for it.
    pub fn gc(&self, options: &AppcGcOptions) -> AppcResult<AppcGcReport> {
        let _gc_lock = self.gc_lock()?;
        let now = options.now_ms.unwrap_or_else(now_unix_ms);
        let mut report = AppcGcReport {
            dry_run: options.dry_run,
            ..AppcGcReport::default()
        };
        if !options.dry_run {
            // Imports that crashed: their holds go (or pass to `appc`, had they committed).
            self.store.clear_dead_operations()?;
        }
        for digest in self.store.owned_by(&HOLDER)? {
            if self.read_info(&digest)?.is_none() {
                if !options.dry_run {
                    let removed = self.remove_image(&digest)?;
                    if removed.deleted {
                        report.freed_bytes += removed.size;
                    }
                }
                report.unfinished.push(digest.dashed());
            }
        }

        crate::crash_point!("appc.gc.after-unfinished");
        let infos = self.all_infos()?;
        let (doomed, kept, as_dependency) = self.plan_by_age(&infos, options, now)?;
        report.kept = kept;
        report.kept_as_dependency = as_dependency;
        for info in doomed {
            let digest = info.digest()?;
            let removed = if options.dry_run {
                RemovedImage {
                    id: info.id.clone(),
                    name: info.name.clone(),
                    version: info.version().map(str::to_string),
                    last_used_ms: info.last_activity_ms(),
                    size: info.size,
                    deleted: self.only_appc_holds(&digest)?,
                    remote_records: self.remotes_of(&digest)?,
                    rendered_trees: 0,
                }
            } else {
                let done = self.remove_image(&digest)?;
                RemovedImage {
                    id: done.id,
                    name: info.name.clone(),
                    version: info.version().map(str::to_string),
                    last_used_ms: info.last_activity_ms(),
                    size: done.size,
                    deleted: done.deleted,
                    remote_records: done.remote_records,
                    rendered_trees: done.rendered_trees,
                }
            };
            if removed.deleted {
                report.freed_bytes += removed.size;
            }
            report.removed.push(removed);
        }
        if !options.dry_run {
            report.leftovers_not_removed = self.trees()?.remove_dead_leftovers()?.not_removed;
        }
        Ok(report)
    }

    /// What goes, through the store's retention engine (as `oci-store prune` plans): images
    /// unused for longer than the grace period, beyond the `keep_per_name` most recently used
    /// of their name, least recently used first. An image a surviving image depends on
    /// (recursively) stays: it is protected and the plan made again, until no survivor needs a
    /// victim. Returns the victims, how many images stay, and those kept only as dependencies.
    fn plan_by_age<'i>(
        &self,
        infos: &'i [ImageInfo],
        options: &AppcGcOptions,
        now: i64,
    ) -> AppcResult<(Vec<&'i ImageInfo>, u64, Vec<String>)> {
        let policy = RetentionPolicy {
            unused_for: Some(std::time::Duration::from_millis(
                options.grace_period_ms.max(0).unsigned_abs(),
            )),
            keep_last: options.keep_per_name,
            ..RetentionPolicy::default()
        };
        let mut inventory = Inventory {
            candidates: infos
                .iter()
                .map(|info| {
                    Ok(Candidate {
                        name: info.id.clone(),
                        group: info.name.clone(),
                        target: info.digest()?,
                        last_used_ms: info.last_activity_ms(),
                        pinned: false,
                        blobs: vec![(info.digest()?, info.size)],
                    })
                })
                .collect::<AppcResult<_>>()?,
            ..Inventory::default()
        };
        let mut as_dependency = Vec::new();
        loop {
            let plan = retention::plan(&policy, &inventory, now, |_| Ok::<_, AppcError>(false))?;
            let victims: HashSet<&str> = plan.victims.iter().map(|v| v.name.as_str()).collect();
            let mut needed: HashSet<String> = HashSet::new();
            for candidate in inventory
                .candidates
                .iter()
                .filter(|c| !victims.contains(c.name.as_str()))
            {
                needed.extend(self.dependency_closure(&candidate.target)?.resolved);
            }
            let rescued: Vec<String> = victims
                .iter()
                .filter(|id| needed.contains(**id))
                .map(|id| (*id).to_string())
                .collect();
            if rescued.is_empty() {
                let by_id: BTreeMap<&str, &ImageInfo> =
                    infos.iter().map(|info| (info.id.as_str(), info)).collect();
                let doomed = plan
                    .victims
                    .iter()
                    .filter_map(|victim| by_id.get(victim.name.as_str()).copied())
                    .collect();
                let kept = (infos.len() - plan.victims.len()) as u64;
                as_dependency.sort();
                return Ok((doomed, kept, as_dependency));
            }
            for candidate in &mut inventory.candidates {
                if rescued.contains(&candidate.name) {
                    candidate.pinned = true;
                }
            }
            as_dependency.extend(rescued);
        }
    }

    /// Whether removing the image would delete its blob: its remote records go first (see
    /// `remove_image`), so only another holder's mark or another entry keeps it.
    fn only_appc_holds(&self, digest: &Digest) -> AppcResult<bool> {
        let goes_first = |key: &KvKey| key.data_type == REMOTE_DATA_TYPE;
        Ok(self
            .store
            .would_delete_on_release(digest, &HOLDER, goes_first)?)
    }
}
