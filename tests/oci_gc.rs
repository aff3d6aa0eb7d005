//! OCI flavour: garbage collection, leases, sharing with other flavours, and concurrent export.

mod oci_common;

use std::collections::BTreeSet;
use std::time::Duration;

use oci_common::*;
use oci_store::stores::oci::layout_builder::LayoutBuilder;
use oci_store::stores::oci::{ImportOptions, OciStore};
use oci_store::{Digest, DynStore};

fn stored(store: &DynStore) -> BTreeSet<Digest> {
    store
        .list(None)
        .unwrap()
        .into_iter()
        .map(|r| r.digest)
        .collect()
}

/// Digests of every blob file in a layout.
fn layout_digests(layout: &std::path::Path) -> BTreeSet<Digest> {
    blob_files(layout)
        .keys()
        .map(|name| Digest::parse(&name.replace('/', ":")).unwrap())
        .collect()
}

fn import_all(oci: &Oci<'_>, path: &std::path::Path) {
    oci.import_layout(
        path,
        &ImportOptions {
            all: true,
            ..Default::default()
        },
    )
    .unwrap();
}

pub fn gc_keeps_what_refs_leases_and_referrers_reach(store: &DynStore) {
    let oci = OciStore::new(store);
    let dir = scratch();

    // kept: a ref; dropped: a ref removed (shares the base layer with kept).
    let layout = path_in(&dir, "layout");
    let mut builder = LayoutBuilder::new(&layout).unwrap();
    let base = layer("base");
    let kept = builder
        .image("linux", "amd64", &[base.clone(), layer("kept")])
        .unwrap();
    let dropped = builder
        .image("linux", "amd64", &[base, layer("dropped")])
        .unwrap();
    let leased = builder.image("linux", "amd64", &[layer("leased")]).unwrap();
    let signature_manifest = signature(&mut builder, &kept, "kept is signed");
    builder.add_ref(Some("kept"), &kept);
    builder.add_ref(Some("dropped"), &dropped);
    builder.add_ref(Some("leased"), &leased);
    builder.add_ref(None, &signature_manifest);
    builder.finish().unwrap();
    import_all(&oci, &layout);
    let everything = stored(store);
    assert_eq!(everything, layout_digests(&layout));

    // Nothing to sweep while every ref is there.
    let report = oci.gc(false).unwrap();
    assert!(report.swept.is_empty(), "{report:?}");
    assert_eq!(stored(store), everything);

    let lease = oci
        .lease_create(Duration::from_secs(3600), &[digest(&leased)])
        .unwrap();
    let expired = oci
        .lease_create(Duration::from_millis(0), &[digest(&dropped)])
        .unwrap();
    oci.remove_ref("dropped").unwrap();
    oci.remove_ref("leased").unwrap();

    let report = oci.gc(false).unwrap();
    assert_eq!(report.expired_leases, vec![expired.id.clone()]);
    assert!(report.base.is_some());
    let after = stored(store);
    // dropped's manifest and own layer went; the base layer and the config (identical
    // content: same platform, no diff ids) are shared with kept and stayed.
    assert_eq!(report.swept.len(), 2, "{report:?}");
    assert!(report.swept.iter().all(|s| s.deleted));
    assert_eq!(
        report.freed_bytes,
        report.swept.iter().map(|s| s.size).sum::<u64>()
    );
    assert!(!after.contains(&digest(&dropped)));
    assert!(after.contains(&digest(&kept)));
    assert!(after.contains(&digest(&leased)), "the lease keeps it");
    assert!(
        after.contains(&digest(&signature_manifest)),
        "a live referrer stays"
    );
    assert_eq!(oci.referrers(&digest(&kept), None).unwrap().len(), 1);
    assert!(oci.check("kept", true).unwrap().is_complete());
    let leases: Vec<String> = oci
        .lease_list()
        .unwrap()
        .into_iter()
        .map(|l| l.id)
        .collect();
    assert_eq!(leases, vec![lease.id.clone()]);

    // Without the lease, the leased image goes; without the ref, kept and its signature go.
    oci.lease_remove(&lease.id).unwrap();
    oci.remove_ref("kept").unwrap();
    let report = oci.gc(false).unwrap();
    assert!(!report.swept.is_empty());
    assert!(stored(store).is_empty(), "left: {:?}", stored(store));
    assert!(oci.referrers(&digest(&kept), None).unwrap().is_empty());
    assert!(store.list_data("oci.referrer", "").unwrap().is_empty());
}

pub fn gc_never_removes_what_another_flavour_marks(store: &DynStore) {
    let oci = OciStore::new(store);
    let dir = scratch();
    let layout = path_in(&dir, "layout");
    let image = LayoutBuilder::simple_image(&layout, "shared").unwrap();
    oci.import_layout(&layout, &ImportOptions::default())
        .unwrap();
    let all = stored(store);
    let appc_layer = all
        .iter()
        .find(|d| **d != digest(&image) && store.info(d).unwrap().media_type.contains("layer"))
        .unwrap()
        .clone();
    store.mark_owner(&appc_layer, "appc").unwrap();

    oci.remove_ref("shared").unwrap();
    let dry = oci.gc(true).unwrap();
    let kept_in_dry: Vec<_> = dry.swept.iter().filter(|s| !s.deleted).collect();
    assert_eq!(kept_in_dry.len(), 1);
    assert_eq!(kept_in_dry[0].digest, appc_layer);

    let report = oci.gc(false).unwrap();
    assert_eq!(report.swept.len(), all.len());
    assert_eq!(stored(store), BTreeSet::from([appc_layer.clone()]));
    // Only the oci mark went.
    assert_eq!(store.owned_by("appc").unwrap(), vec![appc_layer.clone()]);
    assert!(store.owned_by("oci").unwrap().is_empty());
}

pub fn gc_dry_run_lists_and_frees_nothing(store: &DynStore) {
    let oci = OciStore::new(store);
    let dir = scratch();
    let layout = path_in(&dir, "layout");
    layout_with_refs(&layout, &["a", "b"]);
    import_all(&oci, &layout);
    oci.remove_ref("b").unwrap();
    let _expired = oci.lease_create(Duration::ZERO, &[]).unwrap();
    let before = stored(store);

    let dry = oci.gc(true).unwrap();
    assert!(dry.dry_run);
    // b's manifest and own layer; its config and base layer are shared with a.
    assert_eq!(dry.swept.len(), 2, "{dry:?}");
    assert!(dry.freed_bytes > 0);
    assert_eq!(dry.expired_leases.len(), 1);
    assert!(dry.base.is_none());
    assert_eq!(stored(store), before);
    assert_eq!(oci.lease_list().unwrap().len(), 1);
    assert_eq!(store.owned_by("oci").unwrap().len(), before.len());

    let real = oci.gc(false).unwrap();
    let dry_digests: Vec<_> = dry.swept.iter().map(|s| &s.digest).collect();
    let real_digests: Vec<_> = real.swept.iter().map(|s| &s.digest).collect();
    assert_eq!(dry_digests, real_digests);
    assert_eq!(dry.freed_bytes, real.freed_bytes);
    assert_eq!(stored(store).len(), before.len() - 2);
}

pub fn concurrent_exports_into_one_layout_lose_nothing(store: &DynStore) {
    let oci = OciStore::new(store);
    let dir = scratch();
    let layout = path_in(&dir, "layout");
    layout_with_refs(&layout, &["left", "right"]);
    import_all(&oci, &layout);

    let target = path_in(&dir, "shared-target");
    const ROUNDS: usize = 8;
    std::thread::scope(|scope| {
        for source in ["left", "right"] {
            let target = &target;
            scope.spawn(move || {
                let oci = OciStore::new(store);
                for round in 0..ROUNDS {
                    let name = format!("{source}-{round}");
                    oci.export(source, Some(&name), target, false).unwrap();
                }
            });
        }
    });
    let names = ref_names_in_layout(&target);
    assert_eq!(names.len(), 2 * ROUNDS, "{names:?}");
    assert_eq!(layout_digests(&target), layout_digests(&layout));

    // Re-exporting a name replaces its entry instead of adding one.
    oci.export("right", Some("left-0"), &target, false).unwrap();
    assert_eq!(index_entries(&target).len(), 2 * ROUNDS);
    // And the result imports back.
    let second = oci
        .import_layout(
            &target,
            &ImportOptions {
                all: true,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(second.refs.len(), 2 * ROUNDS);
    assert_eq!(second.blobs_written, 0);
}

pub fn leases_protect_blobs_without_refs(store: &DynStore) {
    let oci = OciStore::new(store);
    let dir = scratch();
    let layout = path_in(&dir, "layout");
    let image = LayoutBuilder::simple_image(&layout, "temp").unwrap();
    // The lease comes first: "write blobs now, tag later".
    let lease = oci
        .lease_create(Duration::from_secs(60), &[digest(&image)])
        .unwrap();
    oci.import_layout(&layout, &ImportOptions::default())
        .unwrap();
    oci.remove_ref("temp").unwrap();
    let report = oci.gc(false).unwrap();
    assert!(report.swept.is_empty(), "{report:?}");
    assert_eq!(stored(store).len(), 4);
    assert_eq!(oci.lease_list().unwrap()[0].digests, vec![digest(&image)]);
    assert!(!oci.lease_list().unwrap()[0].is_expired());
    oci.lease_remove(&lease.id).unwrap();
    assert!(oci.lease_remove(&lease.id).is_err());
    oci.gc(false).unwrap();
    assert!(stored(store).is_empty());
}

pub fn gc_never_sweeps_an_import_in_flight(store: &DynStore) {
    let dir = scratch();
    let layout = path_in(&dir, "layout");
    // Many layers, so an import spends a while between its first blob and its ref.
    let mut builder = LayoutBuilder::new(&layout).unwrap();
    let layers: Vec<Vec<u8>> = (0..40).map(|i| layer(&format!("layer-{i}"))).collect();
    let image = builder.image("linux", "amd64", &layers).unwrap();
    builder.add_ref(Some("racing"), &image);
    builder.finish().unwrap();
    const ROUNDS: usize = 10;
    let importing = std::sync::atomic::AtomicBool::new(true);
    /// Ends the GC loop when the importer ends, panicking or not.
    struct Done<'a>(&'a std::sync::atomic::AtomicBool);
    impl Drop for Done<'_> {
        fn drop(&mut self) {
            self.0.store(false, std::sync::atomic::Ordering::SeqCst);
        }
    }
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let _done = Done(&importing);
            let oci = OciStore::new(store);
            for _ in 0..ROUNDS {
                oci.import_layout(&layout, &ImportOptions::default())
                    .unwrap();
                let check = oci.check("racing", false).unwrap();
                assert!(check.is_complete(), "{check:?}");
                oci.remove_ref("racing").unwrap();
            }
        });
        scope.spawn(|| {
            let oci = OciStore::new(store);
            while importing.load(std::sync::atomic::Ordering::SeqCst) {
                oci.gc(false).unwrap();
            }
        });
    });
    OciStore::new(store).gc(false).unwrap();
    assert!(stored(store).is_empty());
}

#[test]
fn gc_never_sweeps_an_import_in_flight_default() {
    run(gc_never_sweeps_an_import_in_flight);
}
#[test]
fn gc_keeps_what_refs_leases_and_referrers_reach_default() {
    run(gc_keeps_what_refs_leases_and_referrers_reach);
}
#[test]
fn gc_never_removes_what_another_flavour_marks_default() {
    run(gc_never_removes_what_another_flavour_marks);
}
#[test]
fn gc_dry_run_lists_and_frees_nothing_default() {
    run(gc_dry_run_lists_and_frees_nothing);
}
#[test]
fn concurrent_exports_into_one_layout_lose_nothing_default() {
    run(concurrent_exports_into_one_layout_lose_nothing);
}
#[test]
fn leases_protect_blobs_without_refs_default() {
    run(leases_protect_blobs_without_refs);
}
