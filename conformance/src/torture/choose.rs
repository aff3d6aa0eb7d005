//! Which operation a worker thread runs next: a weighted random pick, with arguments taken from
//! the thread's own model where that makes the operation meaningful (the version a
//! compare-and-set expects, the lease to remove).

use super::event::{AppcImage, LayoutChoice, Op};
use super::inputs::{
    COUNTERS, OWN_ACIS, OWN_KEYS, OWN_REFS, OWN_SLOTS, REFERENCED_ITEMS, SHARED_ACIS, SHARED_ITEMS,
    SHARED_KEYS, SHARED_LAYOUTS, SHARED_REFS,
};
use super::own_model::OwnModel;
use crate::content::SeededRandom;

type Pick = fn(&mut SeededRandom, &OwnModel) -> Op;

fn below(random: &mut SeededRandom, bound: usize) -> usize {
    random.below(bound as u64) as usize
}

fn shared_item(random: &mut SeededRandom) -> usize {
    // Twelve of the workload's twenty contents: often the same blob at once.
    below(random, SHARED_ITEMS.end)
}

/// The shared blobs shared key/value entries reference.
fn referenced_item(random: &mut SeededRandom) -> usize {
    REFERENCED_ITEMS.start + below(random, REFERENCED_ITEMS.len())
}

/// Weight (per mille) and how to build each operation.
const TABLE: &[(u32, Pick)] = &[
    (80, |r, _| Op::SharedWrite {
        item: shared_item(r),
    }),
    (80, |r, _| Op::SharedRead {
        item: shared_item(r),
    }),
    (20, |r, _| Op::SharedDelete {
        item: shared_item(r),
    }),
    (20, |r, _| Op::SharedRelease {
        item: shared_item(r),
    }),
    (45, |r, _| Op::CounterIncrement {
        counter: below(r, COUNTERS),
    }),
    (55, |r, _| Op::OwnWrite {
        slot: below(r, OWN_SLOTS),
    }),
    (45, |r, _| Op::OwnRead {
        slot: below(r, OWN_SLOTS),
    }),
    (20, |r, _| Op::OwnRelease {
        slot: below(r, OWN_SLOTS),
    }),
    (15, |r, _| Op::OwnDelete {
        slot: below(r, OWN_SLOTS),
    }),
    (45, |r, _| Op::KvPut {
        key: below(r, OWN_KEYS),
        value: format!("v{}", r.below(1000)),
        blob: (r.below(3) > 0).then(|| below(r, OWN_SLOTS)),
    }),
    (40, |r, model| {
        let key = below(r, OWN_KEYS);
        let current = model.entries.get(&key).map(|e| e.version);
        // One in five with a stale version, to see the conflict.
        let expected = if r.below(5) == 0 {
            current.map_or(Some(7), |v| v.checked_sub(1).filter(|v| *v > 0))
        } else {
            current
        };
        Op::KvCompareAndSet {
            key,
            value: format!("c{}", r.below(1000)),
            expected,
        }
    }),
    (20, |r, _| Op::KvRemove {
        key: below(r, OWN_KEYS),
    }),
    (40, |r, _| Op::KvGet {
        key: below(r, OWN_KEYS),
    }),
    (25, |r, _| Op::SharedKvPut {
        key: below(r, SHARED_KEYS),
        item: referenced_item(r),
    }),
    (10, |r, _| Op::SharedKvRemove {
        key: below(r, SHARED_KEYS),
    }),
    (12, |r, _| Op::AciBlobPut {
        image: below(r, OWN_ACIS),
    }),
    (8, |r, _| Op::AciBlobRelease {
        image: below(r, OWN_ACIS),
    }),
    (10, |_, _| Op::LayerBlobPut),
    (8, |_, _| Op::LayerBlobRelease),
    (12, |_, _| Op::LayerBlobRead),
    (30, |r, _| Op::ExtraSet {
        slot: below(r, OWN_SLOTS),
        value: format!("note {}", r.below(1000)),
    }),
    (30, |r, _| Op::ExtraGet {
        slot: below(r, OWN_SLOTS),
    }),
    (40, |r, _| Op::OciImport {
        layout: if r.below(2) == 0 {
            LayoutChoice::Own
        } else {
            LayoutChoice::Shared(below(r, SHARED_LAYOUTS))
        },
        name: below(r, OWN_REFS),
    }),
    (20, |r, _| Op::OciTag {
        from: below(r, OWN_REFS),
        to: below(r, OWN_REFS),
    }),
    (20, |r, _| Op::OciTagDigest {
        to: below(r, OWN_REFS),
    }),
    (30, |r, _| Op::OciRemoveRef {
        name: below(r, OWN_REFS),
    }),
    (30, |r, _| Op::OciCheck {
        name: below(r, OWN_REFS),
    }),
    (20, |r, _| Op::OciExport {
        name: below(r, OWN_REFS),
    }),
    (10, |r, _| Op::OciUnpack {
        name: below(r, OWN_REFS),
    }),
    (20, |_, model| match &model.lease {
        Some(id) => Op::LeaseRemove { id: id.clone() },
        None => Op::LeaseCreate,
    }),
    (20, |r, _| Op::SharedOciImport {
        layout: below(r, SHARED_LAYOUTS),
        name: below(r, SHARED_REFS),
    }),
    (10, |r, _| Op::SharedOciRemoveRef {
        name: below(r, SHARED_REFS),
    }),
    (15, |r, _| Op::SharedOciCheck {
        name: below(r, SHARED_REFS),
    }),
    (12, |_, _| Op::OciGc),
    (10, |_, _| Op::OciPrune),
    (30, |r, _| Op::AppcImport { image: image(r) }),
    (15, |r, _| Op::AppcRemove { image: image(r) }),
    (20, |r, _| Op::AppcRender { image: image(r) }),
    (10, |r, _| Op::AppcExport { image: image(r) }),
    (8, |_, _| Op::AppcGc),
    (10, |_, _| Op::BaseGc),
    (5, |_, _| Op::Fsck { repair: false }),
    (3, |_, _| Op::Fsck { repair: true }),
];

fn image(random: &mut SeededRandom) -> AppcImage {
    if random.below(3) == 0 {
        AppcImage::Shared(below(random, SHARED_ACIS))
    } else {
        AppcImage::Own(below(random, OWN_ACIS))
    }
}

pub fn next_op(random: &mut SeededRandom, model: &OwnModel) -> Op {
    let total: u32 = TABLE.iter().map(|(weight, _)| weight).sum();
    let mut pick = random.below(u64::from(total)) as u32;
    for (weight, build) in TABLE {
        if pick < *weight {
            return build(random, model);
        }
        pick -= weight;
    }
    unreachable!("the pick is below the total weight")
}
