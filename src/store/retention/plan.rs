//! Planning a prune: which names go, in which order, why, and what each frees. Pure: the
//! flavour gathers the [`Inventory`], the clock and the file system's space come in as values,
//! so tests move time and disks freely.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use super::policy::{percent_of, RetentionPolicy};
use super::space::FsSpace;
use crate::traits::Digest;

/// One name a policy could remove: a ref of the OCI flavour, an image of the appc flavour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The name (`docker.io/library/alpine:3.20`).
    pub name: String,
    /// Its repository, the group `keep_last` counts in (`docker.io/library/alpine`).
    pub group: String,
    /// What it names now: execution checks it still does.
    pub target: Digest,
    /// When it was last used (Unix ms); a name never recorded counts from when what it names
    /// was stored.
    pub last_used_ms: i64,
    /// Pinned: no policy removes it.
    pub pinned: bool,
    /// Every blob it reaches, with its size.
    pub blobs: Vec<(Digest, u64)>,
}

/// What a flavour supplies to plan with.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    /// Every name of the flavour.
    pub candidates: Vec<Candidate>,
    /// Blobs other roots reach (live leases, running operations): they stay whatever goes.
    pub kept: HashSet<Digest>,
    /// Bytes of every blob in the store, for `max_size`.
    pub store_bytes: u64,
    /// The store's file system, for `min_free` and the watermarks.
    pub fs: Option<FsSpace>,
}

/// Why a victim goes. Several may hold at once.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "policy", rename_all = "snake_case")]
pub enum Reason {
    /// Unused for `unused_ms`, longer than `until_ms` allows.
    Until {
        /// How long it has been unused.
        unused_ms: i64,
        /// The policy's limit.
        until_ms: i64,
    },
    /// Older than the `keep` most recently used of its repository.
    KeepLast {
        /// How many of each repository stay.
        keep: usize,
        /// The repository.
        repository: String,
    },
    /// The store is over its size budget.
    MaxSize {
        /// The budget in bytes.
        max_bytes: u64,
    },
    /// The file system has less free than asked for.
    MinFree {
        /// The bytes asked for.
        min_free_bytes: u64,
    },
    /// The file system's use is above the high watermark.
    Watermark {
        /// Start above this percentage used.
        high_percent: f64,
        /// Stop at this percentage used.
        low_percent: f64,
    },
}

/// A name the plan removes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Victim {
    /// The name.
    pub name: String,
    /// What it named when planned.
    pub target: Digest,
    /// When it was last used (Unix ms).
    pub last_used_ms: i64,
    /// Why it goes.
    pub reasons: Vec<Reason>,
    /// Bytes removing it frees, with the victims before it: blobs nothing else keeps.
    pub frees_bytes: u64,
    /// Blobs removing it frees.
    pub frees_blobs: u64,
    /// Bytes it reaches that stay: another name, a lease or another holder keeps them.
    pub shared_bytes: u64,
}

/// How many names stayed, by the first protection that held.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Protected {
    /// Pinned.
    pub pinned: u64,
    /// Not matched by any `--filter`.
    pub filtered_out: u64,
    /// Used within the last-use interval.
    pub recently_used: u64,
    /// Among the `keep_last` most recently used of their repository.
    pub kept_last: u64,
    /// Used within `--until`.
    pub used_within_until: u64,
    /// Could have gone, but the size goal was met before their turn.
    pub goal_met_before: u64,
}

/// A prune's plan.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Plan {
    /// The time the plan judged ages against (Unix ms).
    pub now_ms: i64,
    /// What goes, least recently used first.
    pub victims: Vec<Victim>,
    /// What stays, and why.
    pub protected: Protected,
    /// Bytes of every blob in the store when planned.
    pub store_bytes: u64,
    /// The store's file system when planned.
    pub fs: Option<FsSpace>,
    /// Bytes the size goal asked to free (none without a size goal).
    pub needed_bytes: Option<u64>,
    /// Bytes the victims free.
    pub freed_bytes: u64,
    /// Whether the size goal is met once the victims are gone (always, without one).
    pub goal_met: bool,
}

/// Plans a prune of `inventory` under `policy` at `now_ms`. `held_elsewhere` says whether a
/// blob no name or root of the flavour keeps is still held by someone else (another flavour,
/// `blob put`): it is asked only about blobs the victims would otherwise free.
pub fn plan<E>(
    policy: &RetentionPolicy,
    inventory: &Inventory,
    now_ms: i64,
    mut held_elsewhere: impl FnMut(&Digest) -> Result<bool, E>,
) -> Result<Plan, E> {
    let mut protected = Protected::default();
    let kept_last = kept_last(policy, &inventory.candidates);
    let recent_ms = duration_ms(policy.recent);
    let until_ms = policy.unused_for.map(duration_ms);
    let mut eligible: Vec<&Candidate> = Vec::new();
    for candidate in &inventory.candidates {
        let unused_ms = now_ms.saturating_sub(candidate.last_used_ms);
        let counter = if candidate.pinned {
            &mut protected.pinned
        } else if !policy.selects(&candidate.name) {
            &mut protected.filtered_out
        } else if unused_ms < recent_ms {
            &mut protected.recently_used
        } else if kept_last.contains(candidate.name.as_str()) {
            &mut protected.kept_last
        } else if until_ms.is_some_and(|until| unused_ms <= until) {
            &mut protected.used_within_until
        } else {
            eligible.push(candidate);
            continue;
        };
        *counter += 1;
    }
    eligible.sort_by(|a, b| (a.last_used_ms, &a.name).cmp(&(b.last_used_ms, &b.name)));

    let needed_bytes = needed_bytes(policy, inventory);
    let mut reaching: HashMap<&Digest, u32> = HashMap::new();
    for candidate in &inventory.candidates {
        for (digest, _) in unique_blobs(candidate) {
            *reaching.entry(digest).or_default() += 1;
        }
    }
    let mut victims = Vec::new();
    let mut freed_bytes = 0u64;
    if policy.removes_anything() {
        for (position, candidate) in eligible.iter().enumerate() {
            if needed_bytes.is_some_and(|needed| freed_bytes >= needed) {
                protected.goal_met_before = (eligible.len() - position) as u64;
                break;
            }
            let mut victim = Victim {
                name: candidate.name.clone(),
                target: candidate.target.clone(),
                last_used_ms: candidate.last_used_ms,
                reasons: reasons(policy, inventory, candidate, now_ms),
                frees_bytes: 0,
                frees_blobs: 0,
                shared_bytes: 0,
            };
            for (digest, size) in unique_blobs(candidate) {
                let count = reaching.get_mut(digest).expect("counted above");
                *count -= 1;
                if *count == 0 && !inventory.kept.contains(digest) && !held_elsewhere(digest)? {
                    victim.frees_bytes += size;
                    victim.frees_blobs += 1;
                } else {
                    victim.shared_bytes += size;
                }
            }
            freed_bytes += victim.frees_bytes;
            victims.push(victim);
        }
    } else {
        protected.goal_met_before = eligible.len() as u64;
    }
    Ok(Plan {
        now_ms,
        victims,
        protected,
        store_bytes: inventory.store_bytes,
        fs: inventory.fs,
        needed_bytes,
        freed_bytes,
        goal_met: needed_bytes.is_none_or(|needed| freed_bytes >= needed),
    })
}

/// The names among the `keep_last` most recently used of their group (ties by name).
fn kept_last<'a>(policy: &RetentionPolicy, candidates: &'a [Candidate]) -> HashSet<&'a str> {
    let Some(keep) = policy.keep_last else {
        return HashSet::new();
    };
    let mut groups: BTreeMap<&str, Vec<&Candidate>> = BTreeMap::new();
    for candidate in candidates {
        groups.entry(&candidate.group).or_default().push(candidate);
    }
    groups
        .into_values()
        .flat_map(|mut group| {
            group.sort_by(|a, b| (b.last_used_ms, &a.name).cmp(&(a.last_used_ms, &b.name)));
            group.into_iter().take(keep).map(|c| c.name.as_str())
        })
        .collect()
}

/// Bytes the size goals ask to free: the most any one of them asks.
fn needed_bytes(policy: &RetentionPolicy, inventory: &Inventory) -> Option<u64> {
    if !policy.has_size_goal() {
        return None;
    }
    let mut needed = 0u64;
    if let Some(max) = policy.max_size {
        needed = needed.max(inventory.store_bytes.saturating_sub(max));
    }
    if let Some(fs) = inventory.fs {
        if let Some(min_free) = policy.min_free {
            needed = needed.max(
                min_free
                    .bytes_of(fs.total_bytes)
                    .saturating_sub(fs.available_bytes),
            );
        }
        if let Some(marks) = policy.watermarks {
            let used = fs.used_bytes();
            if used > percent_of(marks.high_percent, fs.total_bytes) {
                needed =
                    needed.max(used.saturating_sub(percent_of(marks.low_percent, fs.total_bytes)));
            }
        }
    }
    Some(needed)
}

/// Why `candidate` goes, given it is eligible: every policy that says so.
fn reasons(
    policy: &RetentionPolicy,
    inventory: &Inventory,
    candidate: &Candidate,
    now_ms: i64,
) -> Vec<Reason> {
    let mut reasons = Vec::new();
    if let Some(until) = policy.unused_for {
        reasons.push(Reason::Until {
            unused_ms: now_ms.saturating_sub(candidate.last_used_ms),
            until_ms: duration_ms(until),
        });
    }
    if let Some(keep) = policy.keep_last {
        reasons.push(Reason::KeepLast {
            keep,
            repository: candidate.group.clone(),
        });
    }
    if let Some(max_bytes) = policy.max_size {
        if inventory.store_bytes > max_bytes {
            reasons.push(Reason::MaxSize { max_bytes });
        }
    }
    if let Some(fs) = inventory.fs {
        if let Some(min_free) = policy.min_free {
            let min_free_bytes = min_free.bytes_of(fs.total_bytes);
            if fs.available_bytes < min_free_bytes {
                reasons.push(Reason::MinFree { min_free_bytes });
            }
        }
        if let Some(marks) = policy.watermarks {
            if fs.used_bytes() > percent_of(marks.high_percent, fs.total_bytes) {
                reasons.push(Reason::Watermark {
                    high_percent: marks.high_percent,
                    low_percent: marks.low_percent,
                });
            }
        }
    }
    reasons
}

/// A candidate's blobs, each once.
fn unique_blobs(candidate: &Candidate) -> impl Iterator<Item = (&Digest, u64)> {
    let mut seen = HashSet::new();
    candidate
        .blobs
        .iter()
        .filter(move |(digest, _)| seen.insert(digest))
        .map(|(digest, size)| (digest, *size))
}

fn duration_ms(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
