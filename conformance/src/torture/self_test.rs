//! The checker is not blind: logs that show lost data, a wrong answer or an incomplete ref are
//! judged violations, and the legitimate outcomes of concurrency are not.

use super::event::{ErrorClass, Event, Observed, Op, Outcome};
use super::judge::judge_events;
use super::report::Report;

fn event(thread: &str, seq: u64, start: u64, end: u64, op: Op, outcome: Outcome) -> Event {
    Event {
        thread: thread.to_string(),
        seq,
        start_ns: start,
        end_ns: end,
        op,
        outcome,
    }
}

fn begin(thread: &str) -> Event {
    event(
        thread,
        0,
        0,
        1,
        Op::Begin {
            own_image: "sha256:aa".to_string(),
            own_acis: vec!["sha512-a".to_string(), "sha512-b".to_string()],
            own_layer: "sha256:bb".to_string(),
            own_layer_size: 10,
        },
        Outcome::Done(Observed::Nothing),
    )
}

fn done(observed: Observed) -> Outcome {
    Outcome::Done(observed)
}

fn not_found() -> Outcome {
    Outcome::failed(ErrorClass::NotFound, "not found")
}

fn judge(events: &[Event]) -> Report {
    let mut report = Report::default();
    judge_events(events, &mut report);
    report
}

#[test]
fn a_shared_blob_not_found_after_its_write_with_no_removal_is_lost() {
    let report = judge(&[
        begin("p0t0"),
        begin("p1t0"),
        event(
            "p0t0",
            1,
            10,
            20,
            Op::SharedWrite { item: 3 },
            done(Observed::Nothing),
        ),
        event("p1t0", 1, 30, 40, Op::SharedRead { item: 3 }, not_found()),
    ]);
    assert_eq!(report.violations.len(), 1, "{}", report.render());
}

#[test]
fn a_shared_blob_not_found_after_a_concurrent_delete_is_expected() {
    let report = judge(&[
        begin("p0t0"),
        begin("p1t0"),
        event(
            "p0t0",
            1,
            10,
            20,
            Op::SharedWrite { item: 3 },
            done(Observed::Nothing),
        ),
        // Started before the read ended: may have taken effect first.
        event(
            "p0t0",
            2,
            35,
            50,
            Op::SharedDelete { item: 3 },
            done(Observed::Flag(true)),
        ),
        event("p1t0", 1, 30, 40, Op::SharedRead { item: 3 }, not_found()),
    ]);
    assert!(report.violations.is_empty(), "{}", report.render());
    assert_eq!(report.expected.values().sum::<u64>(), 1);
}

#[test]
fn a_delete_before_the_last_write_does_not_explain_not_found() {
    let report = judge(&[
        begin("p0t0"),
        begin("p1t0"),
        event(
            "p0t0",
            1,
            5,
            8,
            Op::SharedDelete { item: 1 },
            done(Observed::Flag(true)),
        ),
        event(
            "p0t0",
            2,
            10,
            20,
            Op::SharedWrite { item: 1 },
            done(Observed::Nothing),
        ),
        event("p1t0", 1, 30, 40, Op::SharedRead { item: 1 }, not_found()),
    ]);
    assert_eq!(report.violations.len(), 1, "{}", report.render());
}

#[test]
fn an_own_blob_read_must_match_the_model() {
    let lost = judge(&[
        begin("p0t0"),
        event(
            "p0t0",
            1,
            10,
            20,
            Op::OwnWrite { slot: 2 },
            done(Observed::Nothing),
        ),
        event("p0t0", 2, 30, 40, Op::OwnRead { slot: 2 }, not_found()),
    ]);
    assert_eq!(lost.violations.len(), 1, "{}", lost.render());
    let resurrected = judge(&[
        begin("p0t0"),
        event(
            "p0t0",
            1,
            10,
            20,
            Op::OwnWrite { slot: 2 },
            done(Observed::Nothing),
        ),
        event(
            "p0t0",
            2,
            30,
            40,
            Op::OwnDelete { slot: 2 },
            done(Observed::Flag(true)),
        ),
        event(
            "p0t0",
            3,
            50,
            60,
            Op::OwnRead { slot: 2 },
            done(Observed::Flag(true)),
        ),
    ]);
    assert_eq!(resurrected.violations.len(), 1, "{}", resurrected.render());
}

#[test]
fn removing_the_last_entry_that_holds_a_released_blob_deletes_it() {
    // Written (base hold), referenced by k0, released by the base: held by k0 only. Removing
    // k0 lets go of the last holder, so the blob must be gone.
    let report = judge(&[
        begin("p0t0"),
        event(
            "p0t0",
            1,
            1,
            2,
            Op::OwnWrite { slot: 1 },
            done(Observed::Nothing),
        ),
        event(
            "p0t0",
            2,
            3,
            4,
            Op::KvPut {
                key: 0,
                value: "v".into(),
                blob: Some(1),
            },
            done(Observed::Version(1)),
        ),
        event(
            "p0t0",
            3,
            5,
            6,
            Op::OwnRelease { slot: 1 },
            done(Observed::Flag(false)),
        ),
        event(
            "p0t0",
            4,
            7,
            8,
            Op::OwnRead { slot: 1 },
            done(Observed::Flag(true)),
        ),
        event(
            "p0t0",
            5,
            9,
            10,
            Op::KvRemove { key: 0 },
            done(Observed::Flag(true)),
        ),
        event(
            "p0t0",
            6,
            11,
            12,
            Op::OwnRead { slot: 1 },
            done(Observed::Flag(true)),
        ),
    ]);
    assert_eq!(report.violations.len(), 1, "{}", report.render());
    assert!(
        report.violations[0].contains("blob.read.own"),
        "{}",
        report.render()
    );
}

#[test]
fn an_incomplete_shared_ref_and_fsck_damage_are_violations() {
    let report = judge(&[
        begin("p0t0"),
        event(
            "p0t0",
            1,
            1,
            2,
            Op::Fsck { repair: false },
            done(Observed::Problems(vec!["missing_content sha256:aa".into()])),
        ),
        event(
            "p0t0",
            2,
            3,
            4,
            Op::Fsck { repair: false },
            done(Observed::Problems(vec![
                "unindexed_content sha256:bb".into()
            ])),
        ),
        event(
            "p0t0",
            3,
            5,
            6,
            Op::SharedOciCheck { name: 0 },
            Outcome::failed(ErrorClass::Other, "ref shared-r0 is not complete"),
        ),
    ]);
    assert_eq!(report.violations.len(), 1, "{}", report.render());
    assert_eq!(report.unexpected_count(), 1, "{}", report.render());
    assert!(!report.is_clean());
}

#[test]
fn quantiles_are_nearest_rank() {
    let mut report = Report::default();
    for latency in 1..=100u64 {
        report.record(
            "x",
            "p0t0",
            latency * 1_000_000,
            super::verdict::Verdict::Fine,
        );
    }
    let stats = &report.ops["x"];
    assert_eq!(stats.quantile_ms(0.5), 50.0);
    assert_eq!(stats.quantile_ms(0.99), 99.0);
    assert_eq!(stats.quantile_ms(1.0), 100.0);
}

#[test]
fn an_oci_gc_sweeping_a_protected_image_is_a_violation() {
    use super::event::LayoutChoice;
    let import = event(
        "p0t0",
        1,
        1,
        2,
        Op::OciImport {
            layout: LayoutChoice::Own,
            name: 0,
        },
        done(Observed::Text("sha256:aa".into())),
    );
    let gc = |start, end| {
        event(
            "p1t0",
            1,
            start,
            end,
            Op::OciGc,
            done(Observed::Swept(vec!["sha256:aa".into()])),
        )
    };
    let later = event(
        "p0t0",
        2,
        10,
        11,
        Op::OciRemoveRef { name: 0 },
        done(Observed::Nothing),
    );
    let swept = judge(&[
        begin("p0t0"),
        begin("p1t0"),
        import.clone(),
        gc(5, 6),
        later.clone(),
    ]);
    assert_eq!(swept.violations.len(), 1, "{}", swept.render());
    // A GC that ran on past the removal of the ref may have swept after it.
    let after_removal = judge(&[begin("p0t0"), begin("p1t0"), import, gc(5, 12), later]);
    assert!(
        after_removal.violations.is_empty(),
        "{}",
        after_removal.render()
    );
}
