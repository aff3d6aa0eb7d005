//! Judging operations on shared objects (touched by every thread): the shared blobs, the
//! shared refs, the shared appc versions, the compare-and-set counters. Their answers depend on
//! the interleaving, so the checker only rejects what no interleaving allows, using each
//! operation's interval: an object is *surely present* during an operation `R` when some
//! acknowledged creation `W` ended before `R` started and no removal attempt (acknowledged or
//! not) could have taken effect between them, that is, none ended after `W` started and
//! started before `R` ended. "Not found" while surely present is acknowledged data lost.

use std::collections::BTreeMap;

use super::event::{AppcImage, ErrorClass, Event, Observed, Op, Outcome};
use super::inputs::{REFERENCED_ITEMS, SHARED_ACIS, SHARED_REFS};
use super::verdict::Verdict;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SharedObject {
    Blob(usize),
    Ref(usize),
    Aci(usize),
}

/// What an operation does to a shared object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Creates,
    Removes,
    /// Reads it, so "not found" must be explained.
    Needs,
}

fn roles(op: &Op) -> Vec<(SharedObject, Role)> {
    match op {
        Op::SharedWrite { item } => vec![(SharedObject::Blob(*item), Role::Creates)],
        Op::SharedRead { item } => vec![(SharedObject::Blob(*item), Role::Needs)],
        Op::SharedDelete { item } | Op::SharedRelease { item } => {
            vec![(SharedObject::Blob(*item), Role::Removes)]
        }
        // The entry needs its blob (a missing one is refused); replacing or removing an entry
        // may delete the blob it referenced, if that was the last holder.
        Op::SharedKvPut { item, .. } => {
            let mut roles = referenced_removals();
            roles.push((SharedObject::Blob(*item), Role::Needs));
            roles
        }
        Op::SharedKvRemove { .. } => referenced_removals(),
        Op::SharedOciImport { name, .. } => vec![(SharedObject::Ref(*name), Role::Creates)],
        Op::SharedOciCheck { name } => vec![(SharedObject::Ref(*name), Role::Needs)],
        // Needs it too: "not found" must be explained by another removal.
        Op::SharedOciRemoveRef { name } => vec![
            (SharedObject::Ref(*name), Role::Removes),
            (SharedObject::Ref(*name), Role::Needs),
        ],
        Op::AppcImport {
            image: AppcImage::Shared(v),
        } => vec![(SharedObject::Aci(*v), Role::Creates)],
        Op::AppcRender {
            image: AppcImage::Shared(v),
        }
        | Op::AppcExport {
            image: AppcImage::Shared(v),
        } => vec![(SharedObject::Aci(*v), Role::Needs)],
        Op::AppcRemove {
            image: AppcImage::Shared(v),
        } => vec![
            (SharedObject::Aci(*v), Role::Removes),
            (SharedObject::Aci(*v), Role::Needs),
        ],
        Op::OciPrune => (0..SHARED_REFS)
            .map(|name| (SharedObject::Ref(name), Role::Removes))
            .collect(),
        Op::AppcGc => (0..SHARED_ACIS)
            .map(|v| (SharedObject::Aci(v), Role::Removes))
            .collect(),
        _ => Vec::new(),
    }
}

fn referenced_removals() -> Vec<(SharedObject, Role)> {
    REFERENCED_ITEMS
        .map(|item| (SharedObject::Blob(item), Role::Removes))
        .collect()
}

#[derive(Clone, Copy, Debug)]
struct Interval {
    start: u64,
    end: u64,
}

#[derive(Default)]
struct ObjectHistory {
    /// Acknowledged creations.
    created: Vec<Interval>,
    /// Every removal attempt.
    removals: Vec<Interval>,
}

impl ObjectHistory {
    /// The acknowledged creation that ended before `before` and started last.
    fn last_creation_before(&self, before: u64) -> Option<Interval> {
        self.created
            .iter()
            .filter(|w| w.end < before)
            .max_by_key(|w| w.start)
            .copied()
    }

    fn removal_between(&self, after: u64, before: u64, except: Option<(u64, u64)>) -> bool {
        self.removals
            .iter()
            .any(|d| d.end > after && d.start < before && Some((d.start, d.end)) != except)
    }

    fn surely_present_during(&self, op: &Event) -> bool {
        match self.last_creation_before(op.start_ns) {
            Some(w) => !self.removal_between(w.start, op.end_ns, Some((op.start_ns, op.end_ns))),
            None => false,
        }
    }

    fn surely_present_at_end(&self) -> bool {
        match self.last_creation_before(u64::MAX) {
            Some(w) => !self.removal_between(w.start, u64::MAX, None),
            None => false,
        }
    }
}

/// The shared objects' histories over every thread's log.
#[derive(Default)]
pub struct SharedHistory {
    objects: BTreeMap<SharedObject, ObjectHistory>,
    /// Successful increments of each counter.
    pub increments: BTreeMap<usize, u64>,
}

impl SharedHistory {
    pub fn new(events: &[Event]) -> Self {
        let mut history = SharedHistory::default();
        for event in events {
            let interval = Interval {
                start: event.start_ns,
                end: event.end_ns,
            };
            let acknowledged = matches!(event.outcome, Outcome::Done(_));
            for (object, role) in roles(&event.op) {
                let entry = history.objects.entry(object).or_default();
                match role {
                    Role::Creates if acknowledged => entry.created.push(interval),
                    Role::Removes => entry.removals.push(interval),
                    _ => {}
                }
            }
            if let (Op::CounterIncrement { counter }, true) = (&event.op, acknowledged) {
                *history.increments.entry(*counter).or_default() += 1;
            }
        }
        history
    }

    /// Whether `op` touches shared objects (and so is judged here).
    pub fn judges(op: &Op) -> bool {
        !roles(op).is_empty() || matches!(op, Op::CounterIncrement { .. })
    }

    pub fn judge(&self, event: &Event) -> Verdict {
        let (class, message) = match &event.outcome {
            Outcome::Done(Observed::Flag(false))
                if matches!(event.op, Op::SharedOciCheck { .. }) =>
            {
                return Verdict::Violation("a shared ref was found incomplete".to_string())
            }
            Outcome::Done(_) => return Verdict::Fine,
            Outcome::Failed { class, message } => (*class, message),
        };
        match class {
            ErrorClass::VersionConflict if matches!(event.op, Op::CounterIncrement { .. }) => {
                Verdict::Expected("compare-and-set race lost")
            }
            ErrorClass::LockTimeout => Verdict::Expected("gc lock wait timed out"),
            ErrorClass::NotFound => {
                let needed: Vec<SharedObject> = roles(&event.op)
                    .into_iter()
                    .filter(|(_, role)| *role == Role::Needs)
                    .map(|(object, _)| object)
                    .collect();
                let lost = needed.iter().find(|object| {
                    self.objects
                        .get(object)
                        .is_some_and(|history| history.surely_present_during(event))
                });
                match lost {
                    Some(object) => Verdict::Violation(format!(
                        "{object:?} not found although an acknowledged creation finished before \
                         and no removal could have come in between: {message}"
                    )),
                    None if needed.is_empty() => Verdict::Unexpected(message.clone()),
                    None => Verdict::Expected("shared object absent after a concurrent removal"),
                }
            }
            ErrorClass::WrongContent => Verdict::Violation(message.clone()),
            _ => Verdict::Unexpected(message.clone()),
        }
    }

    /// Shared objects that must exist once every worker finished.
    pub fn surely_present_at_end(&self) -> Vec<SharedObject> {
        self.objects
            .iter()
            .filter(|(_, history)| history.surely_present_at_end())
            .map(|(object, _)| *object)
            .collect()
    }
}
