//! Pruning refs by retention policy (the engine is `store::retention`): the OCI flavour
//! supplies its refs with what each reaches and when each was last used, and executes the plan
//! through its GC.
//!
//! 1. Plan, holding the GC lock shared (nothing is removed meanwhile, imports go on): every
//!    ref walked with the referrers of what it reaches, live leases walked as roots that stay.
//! 2. Execute, holding the GC lock exclusively (no import, tag or lease is in flight): each
//!    victim is checked again (still a ref, naming the same manifest, not pinned, not used
//!    since the plan), the ones that pass are removed in one key/value transaction, then the
//!    GC's mark and sweep runs under the same lock hold, with the base GC alongside.
//!
//! A crash between the steps leaves refs removed or not as a whole and their blobs for the
//! next GC: never a ref whose blobs are gone.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use oci_spec::image::Descriptor;

use super::descriptor::digest_of;
use super::error::{OciError, OciResult};
use super::gc::OciGcReport;
use super::graph::{Child, Walker};
use super::source::{IndexSnapshot, IndexedStoreSource};
use super::{OciStore, HOLDER, REFERRER_DATA_TYPE, REF_DATA_TYPE};
use crate::store::retention::{plan, Candidate, FsSpace, Inventory, Plan, RetentionPolicy};
use crate::store::StoreError;
use crate::traits::{Digest, KvKey, KvOp};
use crate::util::clock::now_unix_ms;

/// How [`OciStore::prune`] runs.
#[derive(Clone, Debug, Default)]
pub struct PruneOptions {
    /// The policies.
    pub policy: RetentionPolicy,
    /// Only plan: nothing is removed.
    pub dry_run: bool,
    /// The time ages are judged against; now when `None` (tests move it).
    pub now_ms: Option<i64>,
    /// The file system's space; read from the store's when `None` (tests make disks up).
    pub fs: Option<FsSpace>,
}

/// A victim the execution left alone: something changed since the plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SparedRef {
    /// The ref.
    pub name: String,
    /// What changed.
    pub why: String,
}

/// What [`OciStore::prune`] did (or would do, in a dry run).
#[derive(Clone, Debug, Serialize)]
pub struct OciPruneReport {
    /// Whether this was a dry run: nothing was changed.
    pub dry_run: bool,
    /// The plan: victims least recently used first, each with its reasons and the bytes it
    /// frees.
    pub plan: Plan,
    /// Refs removed (none in a dry run).
    pub removed: Vec<String>,
    /// Victims spared because they changed after the plan.
    pub spared: Vec<SparedRef>,
    /// The GC that collected what the removed refs reached (none in a dry run).
    pub gc: Option<OciGcReport>,
}

impl OciPruneReport {
    /// Bytes the prune deleted (the plan's estimate in a dry run).
    pub fn freed_bytes(&self) -> u64 {
        match &self.gc {
            Some(gc) => {
                gc.freed_bytes
                    + gc.base
                        .as_ref()
                        .map_or(0, crate::store::GcReport::freed_bytes)
            }
            None => self.plan.freed_bytes,
        }
    }
}

impl OciStore<'_> {
    /// Removes the refs `options.policy` selects, least recently used first, and collects what
    /// they alone reached. Pinned refs, refs used since the plan and what leases and running
    /// imports hold always stay. Fails with [`OciError::Invalid`] when no policy removes
    /// anything.
    pub fn prune(&self, options: &PruneOptions) -> OciResult<OciPruneReport> {
        let plan = self.prune_plan(options)?;
        if options.dry_run {
            return Ok(OciPruneReport {
                dry_run: true,
                plan,
                removed: Vec::new(),
                spared: Vec::new(),
                gc: None,
            });
        }
        self.prune_execute(plan)
    }

    /// The plan of a prune, changing nothing: what [`OciStore::prune`] with `dry_run` reports.
    pub fn prune_plan(&self, options: &PruneOptions) -> OciResult<Plan> {
        if !options.policy.removes_anything() {
            return Err(OciError::Invalid(
                "prune needs a policy: give --until, --keep-last, --max-size, --min-free or \
                 watermarks (flags or [prune] in the config file)"
                    .to_string(),
            ));
        }
        let now_ms = options.now_ms.unwrap_or_else(now_unix_ms);
        let _gc_lock = self.mutation_lock()?;
        let inventory = self.prune_inventory(options.fs)?;
        plan(&options.policy, &inventory, now_ms, |digest| {
            self.held_elsewhere(digest)
        })
    }

    /// Whether a blob that only victims reach stays anyway: another holder's mark or another
    /// key/value entry keeps it. The refs naming it are victims (no survivor reaches it), so
    /// their entries go first, and so do its referrer entries (as the GC removes them).
    fn held_elsewhere(&self, digest: &Digest) -> OciResult<bool> {
        let own_suffix = format!("/{digest}");
        let goes_first = |key: &KvKey| {
            key.data_type == REF_DATA_TYPE
                || (key.data_type == REFERRER_DATA_TYPE && key.key.ends_with(&own_suffix))
        };
        Ok(!self
            .store
            .would_delete_on_release(digest, &HOLDER, goes_first)?)
    }

    /// Executes `plan`: removes its victims that did not change since it was made (still the
    /// same target, not pinned, not used since) and collects what they alone reached.
    pub fn prune_execute(&self, plan: Plan) -> OciResult<OciPruneReport> {
        let mut report = OciPruneReport {
            dry_run: false,
            plan,
            removed: Vec::new(),
            spared: Vec::new(),
            gc: None,
        };
        let gc = self.collect_with_base_gc(|| {
            self.remove_victims(&mut report)?;
            crate::crash_point!("oci.prune.after-remove");
            Ok(())
        })?;
        report.gc = Some(gc);
        Ok(report)
    }

    /// Every ref as a retention candidate, and what live leases keep.
    fn prune_inventory(&self, fs: Option<FsSpace>) -> OciResult<Inventory> {
        let referrers = self.referrers_by_subject()?;
        let index = IndexSnapshot::read(self.store)?;
        let last_used = self.store.names_last_used(&HOLDER)?;
        let pinned = self.store.pinned(&HOLDER)?;
        let refs = self.ref_descriptors()?;
        // The walks read and parse every ref's documents: split over the cores, in order.
        let workers = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(4);
        let chunk = refs.len().div_ceil(workers).max(1);
        let walked: Vec<OciResult<Vec<Candidate>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = refs
                .chunks(chunk)
                .map(|part| {
                    let (index, referrers, last_used, pinned) =
                        (&index, &referrers, &last_used, &pinned);
                    scope.spawn(move || {
                        let mut source = IndexedStoreSource::new(self.store, index);
                        part.iter()
                            .map(|(name, descriptor)| {
                                let target = digest_of(descriptor, &format!("ref {name}"))?;
                                let last_used_ms = match last_used.get(name) {
                                    Some(at) => *at,
                                    None => self.stored_at(&target)?,
                                };
                                let blobs = self.reach(
                                    vec![Child::required(descriptor.clone())],
                                    referrers,
                                    &mut source,
                                )?;
                                Ok(Candidate {
                                    group: repository_of(name).to_string(),
                                    pinned: pinned.contains(name),
                                    name: name.clone(),
                                    target,
                                    last_used_ms,
                                    blobs,
                                })
                            })
                            .collect()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| {
                    handle
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        });
        let mut candidates = Vec::with_capacity(refs.len());
        for part in walked {
            candidates.extend(part?);
        }
        let mut source = IndexedStoreSource::new(self.store, &index);
        let now = now_unix_ms();
        let mut lease_roots = Vec::new();
        for lease in self.lease_list()? {
            if lease.is_expired_at(now) {
                continue;
            }
            for digest in &lease.digests {
                match self.store.info(digest) {
                    Ok(record) => lease_roots.push(Child {
                        descriptor: super::descriptor::new_descriptor(
                            &record.media_type,
                            digest,
                            record.size,
                        ),
                        optional: true,
                    }),
                    Err(StoreError::NotFound(_)) => {}
                    Err(error) => return Err(error.into()),
                }
            }
        }
        let kept = self
            .reach(lease_roots, &referrers, &mut source)?
            .into_iter()
            .map(|(digest, _)| digest)
            .collect();
        Ok(Inventory {
            candidates,
            kept,
            store_bytes: self.store.total_bytes()?,
            fs: match fs {
                Some(fs) => Some(fs),
                None => Some(FsSpace::of(self.store.dir())?),
            },
        })
    }

    /// Every blob `roots` reach, with the referrers of every document reached (as the GC marks
    /// them), and their sizes.
    fn reach(
        &self,
        roots: Vec<Child>,
        referrers: &HashMap<Digest, Vec<Descriptor>>,
        source: &mut IndexedStoreSource<'_>,
    ) -> OciResult<Vec<(Digest, u64)>> {
        let mut walker = Walker::new();
        let mut looked_up: HashSet<Digest> = HashSet::new();
        let mut roots = roots;
        while !roots.is_empty() {
            walker.visit(std::mem::take(&mut roots), source)?;
            for reached in walker.reached.iter().filter(|r| r.is_document()) {
                if !looked_up.insert(reached.digest.clone()) {
                    continue;
                }
                for referrer in referrers.get(&reached.digest).into_iter().flatten() {
                    roots.push(Child {
                        descriptor: referrer.clone(),
                        optional: true,
                    });
                }
            }
        }
        Ok(walker
            .reached
            .into_iter()
            .map(|reached| (reached.digest, reached.descriptor.size()))
            .collect())
    }

    /// When `digest` was last used, else stored: the age of a ref no use was recorded for.
    fn stored_at(&self, digest: &Digest) -> OciResult<i64> {
        if let Some(at) = self.store.blob_last_used(digest)? {
            return Ok(at);
        }
        match self.store.info(digest) {
            Ok(record) => Ok(record.created_unix_ms),
            // A ref whose manifest is gone: as old as can be (check reports the damage).
            Err(StoreError::NotFound(_)) => Ok(0),
            Err(error) => Err(error.into()),
        }
    }

    /// Under the exclusive GC lock: checks each victim again and removes the ones that did not
    /// change since the plan, in one transaction.
    fn remove_victims(&self, report: &mut OciPruneReport) -> OciResult<()> {
        let mut doomed = Vec::new();
        for victim in &report.plan.victims {
            let spare = |why: &str| SparedRef {
                name: victim.name.clone(),
                why: why.to_string(),
            };
            let descriptor = match self.get_ref(&victim.name) {
                Ok(descriptor) => descriptor,
                Err(OciError::RefNotFound(_)) => {
                    report.spared.push(spare("removed since the plan"));
                    continue;
                }
                Err(error) => return Err(error),
            };
            if digest_of(&descriptor, &format!("ref {}", victim.name))? != victim.target {
                report.spared.push(spare("tagged again since the plan"));
            } else if self.store.is_pinned(&HOLDER, &victim.name)? {
                report.spared.push(spare("pinned since the plan"));
            } else if self
                .store
                .name_last_used(&HOLDER, &victim.name)?
                .is_some_and(|at| at > victim.last_used_ms)
            {
                report.spared.push(spare("used since the plan"));
            } else {
                doomed.push(victim.name.clone());
            }
        }
        // The refs, their last-use records and pins in one transaction: nothing of a
        // victim is left behind by a crash or a failed write.
        let mut ops = Vec::new();
        for name in &doomed {
            ops.push(KvOp::Remove {
                data_type: REF_DATA_TYPE.to_string(),
                key: name.clone(),
            });
            ops.extend(self.store.name_records_removal(&HOLDER, name));
        }
        crate::crash_point!("oci.prune.before-remove");
        self.store.write_data_batch(&ops)?;
        report.removed = doomed;
        Ok(())
    }

    /// Pins the ref `name`: no prune removes it until [`OciStore::unpin`]; `rm` still does.
    pub fn pin(&self, name: &str) -> OciResult<()> {
        let _gc_lock = self.mutation_lock()?;
        self.get_ref(name)?;
        Ok(self.store.pin(&HOLDER, name)?)
    }

    /// Unpins the ref `name`; whether it was pinned.
    pub fn unpin(&self, name: &str) -> OciResult<bool> {
        Ok(self.store.unpin(&HOLDER, name)?)
    }

    /// Every pinned ref.
    pub fn pinned(&self) -> OciResult<Vec<String>> {
        let mut names: Vec<String> = self.store.pinned(&HOLDER)?.into_iter().collect();
        names.sort();
        Ok(names)
    }
}

/// The repository of a ref, what `--keep-last` counts in: the name without its `@digest` and
/// without a `:tag` after its last `/`.
fn repository_of(name: &str) -> &str {
    let name = name
        .split_once('@')
        .map_or(name, |(repository, _)| repository);
    let last_slash = name.rfind('/').map_or(0, |at| at + 1);
    match name[last_slash..].rfind(':') {
        Some(colon) => &name[..last_slash + colon],
        None => name,
    }
}

#[cfg(test)]
mod tests {
    use super::repository_of;

    #[test]
    fn repositories_drop_tags_and_digests_only() {
        assert_eq!(
            repository_of("docker.io/library/alpine:3.20"),
            "docker.io/library/alpine"
        );
        assert_eq!(repository_of("localhost:5000/app:1"), "localhost:5000/app");
        assert_eq!(repository_of("localhost:5000/app"), "localhost:5000/app");
        assert_eq!(repository_of("app@sha256:abc"), "app");
        assert_eq!(repository_of("small"), "small");
        assert_eq!(repository_of("small:1"), "small");
    }
}
