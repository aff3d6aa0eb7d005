//! Retention policies on the OCI flavour, through the library: the clock and the disk are
//! injected (`PruneOptions::now_ms`, `PruneOptions::fs`) and last uses are written as the store
//! records them, so no test sleeps. Least recently used first, keep-last per repository,
//! budgets and watermarks, pins, leases, shared layers, and victims that change between the
//! plan and its execution.

use std::path::Path;
use std::time::Duration;

use oci_store::oci::{OciPruneReport, PruneOptions};
use oci_store::retention::{FsSpace, Reason, RetentionPolicy, Watermarks};
use oci_store::store::{open_store, BackendChoice, Store};
use oci_store::stores::oci::layout_builder::LayoutBuilder;
use oci_store::stores::oci::{ImportOptions, OciError, OciStore};
use oci_store::traits::Digest;

const DAY_MS: i64 = 24 * 3600 * 1000;
const DAY: Duration = Duration::from_secs(24 * 3600);

/// A store holding images `(ref, layer bytes)`, each with its own layer and one base layer
/// they all share.
struct Fixture {
    _temp: tempfile::TempDir,
    store: Store,
    /// The "now" of the test, when the fixture was made: records are set relative to it.
    now: i64,
}

impl Fixture {
    fn new(images: &[(&str, usize)]) -> Fixture {
        let temp = tempfile::tempdir().unwrap();
        let store = open_store(&temp.path().join("store"), &BackendChoice::default()).unwrap();
        let layout = temp.path().join("layout");
        let mut builder = LayoutBuilder::new(&layout).unwrap();
        let base = LayoutBuilder::layer_tar_gz(&[("etc/base", b"shared")]).unwrap();
        for (name, size) in images {
            // Random bytes: a gzip member that does not shrink, so sizes are what they say.
            let own: Vec<u8> = (0..*size).map(|_| rand_byte()).collect();
            let image = builder
                .image("linux", "amd64", &[base.clone(), own])
                .unwrap();
            builder.add_ref(Some(name), &image);
        }
        builder.finish().unwrap();
        import_all(&store, &layout);
        Fixture {
            _temp: temp,
            store,
            now: oci_store_now(),
        }
    }

    fn oci(&self) -> OciStore<'_> {
        OciStore::new(&self.store)
    }

    /// Records that `name` was last used `days` before the test's now, as `record_use` writes it.
    fn used_days_ago(&self, name: &str, days: i64) {
        let at = self.now - days * DAY_MS;
        self.store
            .put_data(
                "store.last-used",
                &format!("oci/{name}"),
                at.to_string().as_bytes(),
                None,
            )
            .unwrap();
    }

    fn refs(&self) -> Vec<String> {
        self.oci()
            .ref_descriptors()
            .unwrap()
            .into_iter()
            .map(|(name, _)| name)
            .collect()
    }

    fn prune(&self, policy: RetentionPolicy) -> OciPruneReport {
        self.oci()
            .prune(&PruneOptions {
                policy,
                now_ms: Some(self.now),
                ..PruneOptions::default()
            })
            .unwrap()
    }

    /// Every remaining ref is complete and verifies.
    fn assert_refs_whole(&self) {
        for name in self.refs() {
            let report = match self.oci().check(&name, true) {
                Ok(report) => report,
                // Removed since it was listed (a prune or rm racing): nothing broken.
                Err(OciError::RefNotFound(_)) => continue,
                Err(error) => panic!("checking {name}: {error}"),
            };
            assert!(
                report.missing.is_empty() && report.corrupt.is_empty(),
                "{name} is broken: {report:?}"
            );
        }
    }

    fn layer_of(&self, name: &str) -> Digest {
        let descriptor = self.oci().get_ref(name).unwrap();
        let mut manifest = Vec::new();
        std::io::Read::read_to_end(
            &mut self
                .store
                .read(&Digest::parse(descriptor.digest().as_ref()).unwrap())
                .unwrap(),
            &mut manifest,
        )
        .unwrap();
        let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
        Digest::parse(manifest["layers"][1]["digest"].as_str().unwrap()).unwrap()
    }
}

fn oci_store_now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn rand_byte() -> u8 {
    use std::cell::Cell;
    thread_local!(static STATE: Cell<u64> = const { Cell::new(0x9e37_79b9_7f4a_7c15) });
    STATE.with(|state| {
        let mut x = state.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.set(x);
        (x >> 32) as u8
    })
}

fn import_all(store: &Store, layout: &Path) {
    OciStore::new(store)
        .import_layout(
            layout,
            &ImportOptions {
                all: true,
                ..ImportOptions::default()
            },
        )
        .unwrap();
}

fn until(days: u64) -> RetentionPolicy {
    RetentionPolicy {
        unused_for: Some(DAY * u32::try_from(days).unwrap()),
        ..RetentionPolicy::default()
    }
}

#[test]
fn until_removes_the_long_unused_and_frees_only_their_own_layers() {
    let fixture = Fixture::new(&[
        ("app:1", 1000),
        ("app:2", 1000),
        ("web:1", 1000),
        ("db:1", 1000),
    ]);
    fixture.used_days_ago("app:1", 40);
    fixture.used_days_ago("app:2", 3);
    fixture.used_days_ago("web:1", 10);
    fixture.used_days_ago("db:1", 1);
    let gone_layers = [fixture.layer_of("app:1"), fixture.layer_of("web:1")];
    let kept_layer = fixture.layer_of("app:2");

    let report = fixture.prune(until(7));

    let victims: Vec<&str> = report
        .plan
        .victims
        .iter()
        .map(|v| v.name.as_str())
        .collect();
    assert_eq!(victims, ["app:1", "web:1"], "least recently used first");
    assert_eq!(report.removed, ["app:1", "web:1"]);
    assert!(matches!(
        report.plan.victims[0].reasons[0],
        Reason::Until { unused_ms, .. } if unused_ms == 40 * DAY_MS
    ));
    assert_eq!(fixture.refs(), ["app:2", "db:1"]);
    for layer in &gone_layers {
        assert!(
            !fixture.store.contains(layer).unwrap(),
            "{layer} was not freed"
        );
    }
    assert!(fixture.store.contains(&kept_layer).unwrap());
    // The shared base layer stays with the refs that remain, and the plan counted it as shared.
    assert!(report.plan.victims.iter().all(|v| v.shared_bytes > 0));
    assert!(
        report.freed_bytes() >= 2000,
        "freed {}",
        report.freed_bytes()
    );
    fixture.assert_refs_whole();
}

#[test]
fn keep_last_keeps_the_most_recently_used_of_each_repository() {
    let fixture = Fixture::new(&[
        ("reg/app:1", 10),
        ("reg/app:2", 10),
        ("reg/app:3", 10),
        ("reg/web:1", 10),
        ("reg/web:2", 10),
    ]);
    for (name, days) in [
        ("reg/app:1", 5),
        ("reg/app:2", 9),
        ("reg/app:3", 1),
        ("reg/web:1", 2),
        ("reg/web:2", 3),
    ] {
        fixture.used_days_ago(name, days);
    }
    let report = fixture.prune(RetentionPolicy {
        keep_last: Some(2),
        ..RetentionPolicy::default()
    });
    assert_eq!(report.removed, ["reg/app:2"]);
    assert_eq!(
        fixture.refs(),
        ["reg/app:1", "reg/app:3", "reg/web:1", "reg/web:2"]
    );
}

#[test]
fn a_budget_removes_least_recently_used_until_the_store_fits() {
    let fixture = Fixture::new(&[
        ("a:1", 20_000),
        ("b:1", 20_000),
        ("c:1", 20_000),
        ("d:1", 20_000),
    ]);
    for (name, days) in [("a:1", 4), ("b:1", 3), ("c:1", 2), ("d:1", 1)] {
        fixture.used_days_ago(name, days);
    }
    let before = fixture.store.total_bytes().unwrap();
    let max = before - 30_000;
    let report = fixture.prune(RetentionPolicy {
        max_size: Some(max),
        ..RetentionPolicy::default()
    });
    assert_eq!(
        report.removed,
        ["a:1", "b:1"],
        "two images free the 30 kB asked"
    );
    assert!(report.plan.goal_met);
    assert_eq!(report.plan.protected.goal_met_before, 2);
    let after = fixture.store.total_bytes().unwrap();
    assert!(after <= max, "{after} bytes left, budget {max}");
    assert_eq!(
        before - after,
        report.plan.freed_bytes,
        "the plan's estimate is what went: {report:#?}"
    );
    fixture.assert_refs_whole();
}

#[test]
fn watermarks_start_above_high_and_stop_at_low() {
    let fixture = Fixture::new(&[("a:1", 1000), ("b:1", 1000), ("c:1", 1000)]);
    for (name, days) in [("a:1", 3), ("b:1", 2), ("c:1", 1)] {
        fixture.used_days_ago(name, days);
    }
    let policy = RetentionPolicy {
        watermarks: Some(Watermarks {
            high_percent: 90.0,
            low_percent: 80.0,
        }),
        ..RetentionPolicy::default()
    };
    let run = |available_bytes| {
        fixture
            .oci()
            .prune(&PruneOptions {
                policy: policy.clone(),
                now_ms: Some(fixture.now),
                fs: Some(FsSpace {
                    total_bytes: 100_000,
                    available_bytes,
                }),
                ..PruneOptions::default()
            })
            .unwrap()
    };
    // 89% used: below the high watermark, nothing goes.
    assert!(run(11_000).removed.is_empty());
    // 81.5% used would need only 1.5 kB, but nothing starts below the high watermark...
    assert!(run(18_500).removed.is_empty());
    // ... 91% used: down to 80% asks for 11 kB, more than all three free: all go, unmet.
    let report = run(9_000);
    assert_eq!(report.removed, ["a:1", "b:1", "c:1"]);
    assert!(!report.plan.goal_met);
}

#[test]
fn pinned_refs_and_leased_blobs_stay() {
    let fixture = Fixture::new(&[("old:1", 1000), ("old:2", 1000), ("old:3", 1000)]);
    for name in ["old:1", "old:2", "old:3"] {
        fixture.used_days_ago(name, 100);
    }
    let oci = fixture.oci();
    oci.pin("old:1").unwrap();
    assert!(matches!(oci.pin("nope:1"), Err(OciError::RefNotFound(_))));
    assert_eq!(oci.pinned().unwrap(), ["old:1"]);
    let leased = fixture.layer_of("old:2");
    oci.lease_create(Duration::from_secs(3600), std::slice::from_ref(&leased))
        .unwrap();

    let report = fixture.prune(until(1));
    assert_eq!(report.removed, ["old:2", "old:3"]);
    assert_eq!(report.plan.protected.pinned, 1);
    let old2 = report
        .plan
        .victims
        .iter()
        .find(|v| v.name == "old:2")
        .unwrap();
    assert!(
        old2.frees_bytes < 1000,
        "the leased layer is not counted as freed"
    );
    assert!(
        fixture.store.contains(&leased).unwrap(),
        "the lease keeps its layer"
    );
    assert_eq!(fixture.refs(), ["old:1"]);

    // An explicit rm still removes a pinned ref, and forgets the pin.
    oci.remove_ref("old:1").unwrap();
    assert!(oci.pinned().unwrap().is_empty());
}

#[test]
fn a_dry_run_changes_nothing_and_a_policy_is_required() {
    let fixture = Fixture::new(&[("a:1", 1000), ("b:1", 1000)]);
    fixture.used_days_ago("a:1", 30);
    fixture.used_days_ago("b:1", 30);
    let before = fixture.store.total_bytes().unwrap();
    let report = fixture
        .oci()
        .prune(&PruneOptions {
            policy: until(7),
            dry_run: true,
            now_ms: Some(fixture.now),
            ..PruneOptions::default()
        })
        .unwrap();
    assert!(report.dry_run && report.removed.is_empty() && report.gc.is_none());
    assert_eq!(report.plan.victims.len(), 2);
    assert_eq!(fixture.refs(), ["a:1", "b:1"]);
    assert_eq!(fixture.store.total_bytes().unwrap(), before);

    let error = fixture
        .oci()
        .prune(&PruneOptions {
            policy: RetentionPolicy {
                filters: vec!["*".to_string()],
                ..RetentionPolicy::default()
            },
            ..PruneOptions::default()
        })
        .unwrap_err();
    assert!(
        error.to_string().contains("prune needs a policy"),
        "{error}"
    );
}

#[test]
fn victims_that_change_after_the_plan_are_spared() {
    let fixture = Fixture::new(&[
        ("used:1", 100),
        ("retagged:1", 100),
        ("pinned:1", 100),
        ("removed:1", 100),
        ("stale:1", 100),
    ]);
    for name in ["used:1", "retagged:1", "pinned:1", "removed:1", "stale:1"] {
        fixture.used_days_ago(name, 50);
    }
    let oci = fixture.oci();
    let plan = oci
        .prune_plan(&PruneOptions {
            policy: until(7),
            now_ms: Some(fixture.now),
            ..PruneOptions::default()
        })
        .unwrap();
    assert_eq!(plan.victims.len(), 5);

    // Between the plan and its execution, other processes use, re-tag, pin and remove.
    fixture.store.set_last_used_interval(Duration::ZERO);
    fixture
        .store
        .record_use(&oci_store::stores::oci::HOLDER, Some("used:1"), &[]);
    oci.tag("stale:1", "retagged:1").unwrap();
    oci.pin("pinned:1").unwrap();
    oci.remove_ref("removed:1").unwrap();

    let report = oci.prune_execute(plan).unwrap();
    assert_eq!(report.removed, ["stale:1"]);
    let spared: Vec<(&str, &str)> = report
        .spared
        .iter()
        .map(|s| (s.name.as_str(), s.why.as_str()))
        .collect();
    assert_eq!(
        spared,
        [
            ("pinned:1", "pinned since the plan"),
            ("removed:1", "removed since the plan"),
            ("retagged:1", "tagged again since the plan"),
            ("used:1", "used since the plan"),
        ]
    );
    assert_eq!(fixture.refs(), ["pinned:1", "retagged:1", "used:1"]);
    fixture.assert_refs_whole();
}

#[test]
fn a_prune_racing_imports_tags_and_uses_never_breaks_a_ref() {
    let fixture = Fixture::new(&[("seed:1", 100)]);
    let temp = tempfile::tempdir().unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        // An importer adds images (sharing the base layer) and tags them, as pulls would.
        scope.spawn(|| {
            let mut round = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                round += 1;
                let layout = temp.path().join(format!("l{round}"));
                let mut builder = LayoutBuilder::new(&layout).unwrap();
                let base = LayoutBuilder::layer_tar_gz(&[("etc/base", b"shared")]).unwrap();
                let own =
                    LayoutBuilder::layer_tar_gz(&[("n", round.to_string().as_bytes())]).unwrap();
                let image = builder.image("linux", "amd64", &[base, own]).unwrap();
                builder.add_ref(Some(&format!("new:{round}")), &image);
                builder.finish().unwrap();
                import_all(&fixture.store, &layout);
                let _ = fixture.oci().tag(&format!("new:{round}"), "latest:1");
            }
        });
        // A user keeps using what exists.
        scope.spawn(|| {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for name in fixture.refs() {
                    let _ = fixture.oci().check(&name, false);
                }
            }
        });
        // Prunes that take everything they may, again and again.
        for _ in 0..20 {
            let report = fixture
                .oci()
                .prune(&PruneOptions {
                    policy: RetentionPolicy {
                        unused_for: Some(Duration::ZERO),
                        ..RetentionPolicy::default()
                    },
                    ..PruneOptions::default()
                })
                .unwrap();
            assert!(report.gc.is_some());
            fixture.assert_refs_whole();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    fixture.assert_refs_whole();
    let report = fixture
        .store
        .fsck(oci_store::FsckOptions::default())
        .unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}
