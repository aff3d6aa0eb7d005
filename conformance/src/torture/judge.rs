//! Judging every logged answer of a run: own objects through each thread's [`OwnModel`],
//! shared objects through the [`SharedHistory`], maintenance (GCs, fsck) by what they may
//! report while others work.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

use super::event::{ErrorClass, Event, Observed, Op, Outcome};
use super::own_model::OwnModel;
use super::report::Report;
use super::shared_history::SharedHistory;
use super::verdict::Verdict;
use crate::Context;

/// Every event of every thread, each thread's in order.
pub fn read_logs(dir: &Path) -> Result<Vec<Event>, String> {
    let mut events = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .context(format!("listing {}", dir.display()))?
        .flatten()
        .map(|entry| entry.path())
        .collect();
    paths.sort();
    for path in paths {
        let file = std::fs::File::open(&path).context(format!("opening {}", path.display()))?;
        for (number, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.context(format!("reading {}", path.display()))?;
            // A worker killed mid-write leaves a partial last line.
            match serde_json::from_str::<Event>(&line) {
                Ok(event) => events.push(event),
                Err(error) => {
                    return Err(format!(
                        "{}:{}: not an event ({error}): {line}",
                        path.display(),
                        number + 1
                    ))
                }
            }
        }
    }
    Ok(events)
}

/// Fsck problems that may be seen while others work: content renamed in before its record,
/// a cascade between its steps. Every other problem is re-checked under the blob's lock by
/// fsck itself, so seeing one is a violation.
const IN_FLIGHT_PROBLEMS: &[&str] = &[
    "unindexed_content",
    "orphan_extra_data",
    "dangling_reference",
];

fn judge_maintenance(event: &Event) -> Verdict {
    match &event.outcome {
        Outcome::Done(Observed::Problems(problems)) => {
            let damage: Vec<&String> = problems
                .iter()
                .filter(|p| !IN_FLIGHT_PROBLEMS.iter().any(|kind| p.starts_with(kind)))
                .collect();
            if !damage.is_empty() {
                Verdict::Violation(format!("fsck found damage: {damage:?}"))
            } else if problems.is_empty() {
                Verdict::Fine
            } else {
                Verdict::Expected("fsck saw work in flight (unindexed content, orphans)")
            }
        }
        Outcome::Done(_) => Verdict::Fine,
        Outcome::Failed {
            class: ErrorClass::LockTimeout,
            ..
        } => Verdict::Expected("gc lock wait timed out"),
        Outcome::Failed { message, .. } => Verdict::Unexpected(message.clone()),
    }
}

/// Judges every event into `report`; returns each thread's model at its end, and the shared
/// history, for the checks of the final state.
pub fn judge_events(
    events: &[Event],
    report: &mut Report,
) -> (BTreeMap<String, OwnModel>, SharedHistory) {
    let history = SharedHistory::new(events);
    let mut models: BTreeMap<String, OwnModel> = BTreeMap::new();
    let mut timelines: BTreeMap<String, Vec<Protection>> = BTreeMap::new();
    for event in events {
        let model = models.entry(event.thread.clone()).or_default();
        let verdict = if SharedHistory::judges(&event.op) {
            // The model still follows (it ignores shared objects).
            model.judge(&event.op, &event.outcome);
            history.judge(event)
        } else if matches!(event.op, Op::OciGc | Op::BaseGc | Op::Fsck { .. }) {
            judge_maintenance(event)
        } else {
            model.judge(&event.op, &event.outcome)
        };
        timelines
            .entry(event.thread.clone())
            .or_default()
            .push(Protection {
                from_ns: event.end_ns,
                image: model.own_image.clone(),
                layer: model.own_layer.0.clone(),
                whole: model.own_image_must_be_whole(),
            });
        if !event.op.is_begin() {
            report.record(event.op.name(), &event.thread, event.latency_ns(), verdict);
        }
    }
    judge_sweeps(events, &models, &timelines, report);
    (models, history)
}

/// A thread's own image as it stood after one of its operations, until its next one began.
struct Protection {
    from_ns: u64,
    image: String,
    layer: String,
    whole: bool,
}

/// Nothing a ref or a live lease reaches is swept: an OCI GC that let go of a thread's own
/// image or layer while that thread's refs or lease protected it from before the GC began to
/// after it ended is a violation; so is an appc GC removing an own image (each has a name of
/// its own, and the newest of each name is kept).
fn judge_sweeps(
    events: &[Event],
    models: &BTreeMap<String, OwnModel>,
    timelines: &BTreeMap<String, Vec<Protection>>,
    report: &mut Report,
) {
    let starts: BTreeMap<(&str, u64), u64> = events
        .iter()
        .map(|e| ((e.thread.as_str(), e.seq), e.start_ns))
        .collect();
    for event in events {
        let Outcome::Done(Observed::Swept(swept)) = &event.outcome else {
            continue;
        };
        match event.op {
            // A prune collects through the same GC: the same protection holds.
            Op::OciGc | Op::OciPrune => {
                for (thread, timeline) in timelines {
                    // The thread's state when the GC began, and when its next operation began.
                    let position = timeline.partition_point(|s| s.from_ns < event.start_ns);
                    let Some(state) = position.checked_sub(1).map(|p| &timeline[p]) else {
                        continue;
                    };
                    let until = starts
                        .get(&(thread.as_str(), position as u64))
                        .copied()
                        .unwrap_or(u64::MAX);
                    if !(state.whole && event.end_ns < until) {
                        continue;
                    }
                    for digest in [&state.image, &state.layer] {
                        if swept.contains(digest) {
                            report.violations.push(format!(
                                "{} oci.gc: swept {digest} of {thread}'s own image, which its \
                                 ref or lease protected all through the GC",
                                event.thread
                            ));
                        }
                    }
                }
            }
            Op::AppcGc => {
                for (thread, model) in models {
                    for id in &model.own_acis {
                        if swept.contains(id) {
                            report.violations.push(format!(
                                "{} appc.gc: removed {id}, an own image of {thread} (the only \
                                 image of its name, so always the newest)",
                                event.thread
                            ));
                        }
                    }
                }
            }
            _ => {}
        }
    }
}
