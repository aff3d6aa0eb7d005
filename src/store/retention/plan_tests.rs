//! The planner on inventories made up here: time and disks are values.

use std::convert::Infallible;
use std::time::Duration;

use super::*;
use crate::store::retention::{FreeSpace, Watermarks};

const DAY: i64 = 24 * 3600 * 1000;
const NOW: i64 = 100 * DAY;

fn digest(name: &str) -> Digest {
    Digest::of_bytes(crate::traits::Algorithm::Sha256, name.as_bytes())
}

/// A name `repo:tag` last used `days_ago`, reaching its own blob of `size` bytes and the
/// `shared` blobs (a megabyte each).
fn candidate(name: &str, days_ago: i64, size: u64, shared: &[&str]) -> Candidate {
    let mut blobs = vec![(digest(name), size)];
    blobs.extend(shared.iter().map(|layer| (digest(layer), 1 << 20)));
    Candidate {
        name: name.to_string(),
        group: name.split(':').next().unwrap().to_string(),
        target: digest(name),
        last_used_ms: NOW - days_ago * DAY,
        pinned: false,
        blobs,
    }
}

fn inventory(candidates: Vec<Candidate>) -> Inventory {
    let store_bytes = candidates
        .iter()
        .flat_map(|c| c.blobs.iter().cloned())
        .collect::<HashMap<_, _>>()
        .values()
        .sum();
    Inventory {
        candidates,
        store_bytes,
        ..Inventory::default()
    }
}

fn run(policy: &RetentionPolicy, inventory: &Inventory) -> Plan {
    plan(policy, inventory, NOW, |_| Ok::<_, Infallible>(false)).unwrap()
}

fn names(plan: &Plan) -> Vec<&str> {
    plan.victims.iter().map(|v| v.name.as_str()).collect()
}

#[test]
fn until_takes_what_is_unused_for_longer_least_recently_used_first() {
    let inventory = inventory(vec![
        candidate("a:1", 3, 10, &[]),
        candidate("b:1", 40, 10, &[]),
        candidate("c:1", 10, 10, &[]),
        candidate("d:1", 7, 10, &[]),
    ]);
    let policy = RetentionPolicy {
        unused_for: Some(Duration::from_secs(7 * 24 * 3600)),
        ..RetentionPolicy::default()
    };
    let plan = run(&policy, &inventory);
    // d:1 is exactly seven days unused: not longer.
    assert_eq!(names(&plan), ["b:1", "c:1"]);
    assert_eq!(plan.protected.used_within_until, 2);
    assert_eq!(
        plan.victims[0].reasons,
        [Reason::Until {
            unused_ms: 40 * DAY,
            until_ms: 7 * DAY
        }]
    );
    assert_eq!(plan.freed_bytes, 20);
    assert!(plan.goal_met);
}

#[test]
fn keep_last_counts_per_repository() {
    let inventory = inventory(vec![
        candidate("app:1", 9, 1, &[]),
        candidate("app:2", 5, 1, &[]),
        candidate("app:3", 1, 1, &[]),
        candidate("web:1", 30, 1, &[]),
        candidate("web:2", 20, 1, &[]),
        candidate("solo:1", 50, 1, &[]),
    ]);
    let policy = RetentionPolicy {
        keep_last: Some(1),
        ..RetentionPolicy::default()
    };
    let plan = run(&policy, &inventory);
    assert_eq!(names(&plan), ["web:1", "app:1", "app:2"]);
    assert_eq!(plan.protected.kept_last, 3);
    assert_eq!(
        plan.victims[0].reasons,
        [Reason::KeepLast {
            keep: 1,
            repository: "web".to_string()
        }]
    );
}

#[test]
fn a_budget_takes_the_least_recently_used_until_it_is_met() {
    let inventory = inventory(vec![
        candidate("a:1", 1, 100, &[]),
        candidate("b:1", 4, 100, &[]),
        candidate("c:1", 3, 100, &[]),
        candidate("d:1", 2, 100, &[]),
    ]);
    let policy = RetentionPolicy {
        max_size: Some(250),
        ..RetentionPolicy::default()
    };
    let plan = run(&policy, &inventory);
    assert_eq!(plan.needed_bytes, Some(150));
    assert_eq!(names(&plan), ["b:1", "c:1"]);
    assert_eq!(plan.protected.goal_met_before, 2);
    assert!(plan.goal_met);
    assert_eq!(
        plan.victims[1].reasons,
        [Reason::MaxSize { max_bytes: 250 }]
    );

    // Under budget: nothing goes, whatever the ages.
    let policy = RetentionPolicy {
        max_size: Some(400),
        unused_for: Some(Duration::ZERO),
        ..RetentionPolicy::default()
    };
    assert!(run(&policy, &inventory).victims.is_empty());
}

#[test]
fn shared_layers_are_freed_only_with_the_last_name_reaching_them() {
    let inventory = inventory(vec![
        candidate("a:1", 3, 10, &["base"]),
        candidate("b:1", 2, 10, &["base"]),
        candidate("c:1", 1, 10, &["base"]),
    ]);
    let policy = RetentionPolicy {
        max_size: Some(15),
        ..RetentionPolicy::default()
    };
    let plan = run(&policy, &inventory);
    let mb = 1 << 20;
    // a:1 and b:1 free only their own 10 bytes: base stays with c:1 until c:1 goes too.
    assert_eq!(names(&plan), ["a:1", "b:1", "c:1"]);
    assert_eq!(plan.victims[0].frees_bytes, 10);
    assert_eq!(plan.victims[0].shared_bytes, mb);
    assert_eq!(plan.victims[2].frees_bytes, 10 + mb);
    assert_eq!(plan.victims[2].frees_blobs, 2);
    assert_eq!(plan.freed_bytes, 30 + mb);
}

#[test]
fn kept_blobs_and_other_holders_stay() {
    let mut inventory = inventory(vec![candidate("a:1", 3, 10, &["leased", "appc"])]);
    inventory.kept.insert(digest("leased"));
    let policy = RetentionPolicy {
        unused_for: Some(Duration::ZERO),
        ..RetentionPolicy::default()
    };
    let mut asked = Vec::new();
    let plan = plan(&policy, &inventory, NOW, |d: &Digest| {
        asked.push(d.clone());
        Ok::<_, Infallible>(*d == digest("appc"))
    })
    .unwrap();
    assert_eq!(plan.victims[0].frees_bytes, 10);
    assert_eq!(plan.victims[0].shared_bytes, 2 << 20);
    // The leased blob is not asked about: it stays anyway.
    assert!(!asked.contains(&digest("leased")));
}

#[test]
fn pins_filters_and_recent_uses_protect() {
    let mut pinned = candidate("pinned:1", 90, 1, &[]);
    pinned.pinned = true;
    let inventory = inventory(vec![
        pinned,
        candidate("quay.io/x:1", 80, 1, &[]),
        candidate("docker.io/x:1", 70, 1, &[]),
        Candidate {
            last_used_ms: NOW - 1000,
            ..candidate("docker.io/y:1", 0, 1, &[])
        },
    ]);
    let policy = RetentionPolicy {
        unused_for: Some(Duration::ZERO),
        filters: vec!["docker.io/*".to_string(), "pinned*".to_string()],
        recent: Duration::from_secs(300),
        ..RetentionPolicy::default()
    };
    let plan = run(&policy, &inventory);
    assert_eq!(names(&plan), ["docker.io/x:1"]);
    assert_eq!(
        plan.protected,
        Protected {
            pinned: 1,
            filtered_out: 1,
            recently_used: 1,
            ..Protected::default()
        }
    );
}

#[test]
fn watermarks_start_above_high_and_stop_at_low() {
    let candidates: Vec<Candidate> = (0..10)
        .map(|i| candidate(&format!("img:{i}"), 10 - i, 100, &[]))
        .collect();
    let policy = RetentionPolicy {
        watermarks: Some(Watermarks {
            high_percent: 85.0,
            low_percent: 80.0,
        }),
        ..RetentionPolicy::default()
    };
    let mut inventory = inventory(candidates);
    // 84% used: below high, nothing starts.
    inventory.fs = Some(FsSpace {
        total_bytes: 10_000,
        available_bytes: 1_600,
    });
    assert!(run(&policy, &inventory).victims.is_empty());
    // 86% used: down to 80% (600 bytes), the six least recently used.
    inventory.fs = Some(FsSpace {
        total_bytes: 10_000,
        available_bytes: 1_400,
    });
    let plan = run(&policy, &inventory);
    assert_eq!(plan.needed_bytes, Some(600));
    assert_eq!(
        names(&plan),
        ["img:0", "img:1", "img:2", "img:3", "img:4", "img:5"]
    );

    // min-free as a percentage asks the same of the same disk.
    let policy = RetentionPolicy {
        min_free: Some(FreeSpace::Percent(20.0)),
        ..RetentionPolicy::default()
    };
    assert_eq!(run(&policy, &inventory).needed_bytes, Some(600));
}

#[test]
fn a_goal_out_of_reach_is_reported_unmet() {
    let mut pinned = candidate("big:1", 9, 1000, &[]);
    pinned.pinned = true;
    let inventory = inventory(vec![pinned, candidate("small:1", 9, 10, &[])]);
    let policy = RetentionPolicy {
        max_size: Some(100),
        ..RetentionPolicy::default()
    };
    let plan = run(&policy, &inventory);
    assert_eq!(names(&plan), ["small:1"]);
    assert!(!plan.goal_met);
}
