//! Garbage collection, leases, sharing the store with other flavours, and concurrency within
//! one process (GC beside an import, exports into one layout). The process half is
//! `tests/multi_process.rs`.

use oci_store::store::Holder;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use oci_store::stores::oci::{OciStore, LINKS_DATA_TYPE, REF_DATA_TYPE as REF_TYPE};
use oci_store::traits::{BlobRecord, Digest, DigestPrefix, Index, StorageError, StorageResult};
use oci_store::Store;

use super::support::*;
use crate::base_store::StoreFixture;
use crate::check::TestResult;
use crate::fixture::panic_message;
use crate::{ensure, ensure_eq, Context};
use oci_store::IoContext;

pub fn gc_keeps_what_refs_leases_and_referrers_reach(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let oci = OciStore::new(&store);
    let dir = scratch()?;

    // kept: a ref; dropped: a ref removed (shares the base layer with kept).
    let layout = path_in(&dir, "layout");
    let doing = "building the layout";
    let mut builder = new_builder(&layout)?;
    let base = layer("base")?;
    let kept = builder
        .image("linux", "amd64", &[base.clone(), layer("kept")?])
        .context(doing)?;
    let dropped = builder
        .image("linux", "amd64", &[base, layer("dropped")?])
        .context(doing)?;
    let leased = builder
        .image("linux", "amd64", &[layer("leased")?])
        .context(doing)?;
    let signature_manifest = signature(&mut builder, &kept, "kept is signed")?;
    builder.add_ref(Some("kept"), &kept);
    builder.add_ref(Some("dropped"), &dropped);
    builder.add_ref(Some("leased"), &leased);
    builder.add_ref(None, &signature_manifest);
    finish(&builder)?;
    import_all(&oci, &layout)?;
    let everything = stored(&store)?;
    ensure_eq!(everything, layout_digests(&layout)?, "blobs after import");

    let report = oci.gc(false).context("gc")?;
    ensure!(
        report.swept.is_empty(),
        "gc swept while every ref is there: {report:?}"
    );
    ensure_eq!(
        stored(&store)?,
        everything,
        "blobs after a gc with every ref"
    );

    let lease = oci
        .lease_create(Duration::from_secs(3600), &[digest(&leased)?])
        .context("creating a lease")?;
    let expired = oci
        .lease_create(Duration::from_millis(0), &[digest(&dropped)?])
        .context("creating an expired lease")?;
    oci.remove_ref("dropped").context("removing dropped")?;
    oci.remove_ref("leased").context("removing leased")?;

    let report = oci.gc(false).context("gc")?;
    ensure_eq!(
        report.expired_leases,
        vec![expired.id.clone()],
        "expired leases removed"
    );
    ensure!(report.base.is_some(), "the base gc did not run: {report:?}");
    let after = stored(&store)?;
    // dropped's manifest and own layer went; the base layer and the config (identical
    // content: same platform, no diff ids) are shared with kept and stayed.
    ensure_eq!(report.swept.len(), 2, "blobs swept: {report:?}");
    ensure!(
        report.swept.iter().all(|s| s.deleted),
        "a swept blob was not deleted: {report:?}"
    );
    ensure_eq!(
        report.freed_bytes,
        report.swept.iter().map(|s| s.size).sum::<u64>(),
        "freed bytes"
    );
    ensure!(
        !after.contains(&digest(&dropped)?),
        "dropped's manifest stayed"
    );
    ensure!(after.contains(&digest(&kept)?), "kept's manifest went");
    ensure!(
        after.contains(&digest(&leased)?),
        "the lease did not keep it"
    );
    ensure!(
        after.contains(&digest(&signature_manifest)?),
        "a live referrer went"
    );
    let referrers = oci
        .referrers(&digest(&kept)?, None)
        .context("referrers of kept")?;
    ensure_eq!(referrers.len(), 1, "referrers of kept");
    let check = oci.check("kept", true).context("checking kept")?;
    ensure!(check.is_complete(), "kept after gc: {check:?}");
    let leases: Vec<String> = oci
        .lease_list()
        .context("listing leases")?
        .into_iter()
        .map(|l| l.id)
        .collect();
    ensure_eq!(leases, vec![lease.id.clone()], "leases left");

    // Without the lease, the leased image goes; without the ref, kept and its signature go.
    oci.lease_remove(&lease.id).context("removing the lease")?;
    oci.remove_ref("kept").context("removing kept")?;
    let report = oci.gc(false).context("gc")?;
    ensure!(!report.swept.is_empty(), "nothing swept: {report:?}");
    let left = stored(&store)?;
    ensure!(left.is_empty(), "blobs left: {left:?}");
    let referrers = oci
        .referrers(&digest(&kept)?, None)
        .context("referrers of kept")?;
    ensure!(referrers.is_empty(), "referrers left: {referrers:?}");
    let entries = store
        .list_data("oci.referrer", "")
        .context("listing referrer entries")?;
    ensure!(entries.is_empty(), "referrer entries left: {entries:?}");
    Ok(())
}

pub fn gc_never_removes_what_another_flavour_marks(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let oci = OciStore::new(&store);
    let dir = scratch()?;
    let layout = path_in(&dir, "layout");
    let image = simple_image(&layout, "shared")?;
    import_default(&oci, &layout)?;
    let all = stored(&store)?;
    let mut appc_layer = None;
    for candidate in &all {
        let record = store.info(candidate).context("info")?;
        if *candidate != digest(&image)? && record.media_type.contains("layer") {
            appc_layer = Some(candidate.clone());
            break;
        }
    }
    let appc_layer = appc_layer.ok_or_else(|| format!("no layer among {all:?}"))?;
    store
        .mark_owner(&appc_layer, &Holder::flavour("appc"))
        .context("marking a layer as appc's")?;

    oci.remove_ref("shared").context("removing shared")?;
    let dry = oci.gc(true).context("dry-run gc")?;
    let kept_in_dry: Vec<_> = dry.swept.iter().filter(|s| !s.deleted).collect();
    ensure_eq!(kept_in_dry.len(), 1, "blobs a dry run says stay: {dry:?}");
    ensure_eq!(kept_in_dry[0].digest, appc_layer, "the blob that stays");

    let report = oci.gc(false).context("gc")?;
    ensure_eq!(report.swept.len(), all.len(), "blobs swept: {report:?}");
    ensure_eq!(
        stored(&store)?,
        BTreeSet::from([appc_layer.clone()]),
        "blobs left"
    );
    ensure_eq!(
        store
            .owned_by(&Holder::flavour("appc"))
            .context("owned_by appc")?,
        vec![appc_layer.clone()],
        "appc's marks: only the oci mark went"
    );
    let oci_owned = store
        .owned_by(&Holder::flavour("oci"))
        .context("owned_by oci")?;
    ensure!(oci_owned.is_empty(), "oci marks left: {oci_owned:?}");
    Ok(())
}

pub fn gc_dry_run_lists_and_frees_nothing(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let oci = OciStore::new(&store);
    let dir = scratch()?;
    let layout = path_in(&dir, "layout");
    layout_with_refs(&layout, &["a", "b"])?;
    import_all(&oci, &layout)?;
    oci.remove_ref("b").context("removing b")?;
    oci.lease_create(Duration::ZERO, &[])
        .context("creating an expired lease")?;
    let before = stored(&store)?;

    let dry = oci.gc(true).context("dry-run gc")?;
    ensure!(dry.dry_run, "the report does not say dry run");
    // b's manifest and own layer; its config and base layer are shared with a.
    ensure_eq!(dry.swept.len(), 2, "blobs a dry run would sweep: {dry:?}");
    ensure!(dry.freed_bytes > 0, "a dry run would free nothing: {dry:?}");
    ensure_eq!(dry.expired_leases.len(), 1, "expired leases listed");
    ensure!(dry.base.is_none(), "a dry run ran the base gc: {dry:?}");
    ensure_eq!(stored(&store)?, before, "blobs after a dry run");
    ensure_eq!(
        oci.lease_list().context("listing leases")?.len(),
        1,
        "leases after a dry run"
    );
    ensure_eq!(
        store
            .owned_by(&Holder::flavour("oci"))
            .context("owned_by")?
            .len(),
        before.len(),
        "oci marks after a dry run"
    );

    let real = oci.gc(false).context("gc")?;
    let dry_digests: Vec<_> = dry.swept.iter().map(|s| &s.digest).collect();
    let real_digests: Vec<_> = real.swept.iter().map(|s| &s.digest).collect();
    ensure_eq!(
        dry_digests,
        real_digests,
        "the dry run listed what gc swept"
    );
    ensure_eq!(dry.freed_bytes, real.freed_bytes, "freed bytes");
    ensure_eq!(
        stored(&store)?.len(),
        before.len() - 2,
        "blobs after the real gc"
    );
    Ok(())
}

pub fn concurrent_exports_into_one_layout_lose_nothing(fixture: &StoreFixture) -> TestResult {
    const ROUNDS: usize = 8;
    let store = fixture.open()?;
    let oci = OciStore::new(&store);
    let dir = scratch()?;
    let layout = path_in(&dir, "layout");
    layout_with_refs(&layout, &["left", "right"])?;
    import_all(&oci, &layout)?;

    let target = path_in(&dir, "shared-target");
    let results: Vec<TestResult> = std::thread::scope(|scope| {
        let handles: Vec<_> = ["left", "right"]
            .into_iter()
            .map(|source| {
                let (store, target) = (&store, &target);
                scope.spawn(move || -> TestResult {
                    let oci = OciStore::new(store);
                    for round in 0..ROUNDS {
                        let name = format!("{source}-{round}");
                        oci.export(source, Some(&name), target, false)
                            .context(format!("exporting {source} as {name}"))?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| Err(panic_message(&p))))
            .collect()
    });
    results.into_iter().collect::<TestResult>()?;
    let names = ref_names_in_layout(&target)?;
    ensure_eq!(names.len(), 2 * ROUNDS, "entries in index.json: {names:?}");
    ensure_eq!(
        layout_digests(&target)?,
        layout_digests(&layout)?,
        "blobs in the shared target"
    );

    oci.export("right", Some("left-0"), &target, false)
        .context("exporting right as left-0")?;
    ensure_eq!(
        index_entries(&target)?.len(),
        2 * ROUNDS,
        "re-exporting a name replaces its entry instead of adding one"
    );
    let second = import_all(&oci, &target)?;
    ensure_eq!(second.refs.len(), 2 * ROUNDS, "refs imported back");
    ensure_eq!(second.blobs_written, 0, "blobs written importing back");
    Ok(())
}

pub fn leases_protect_blobs_without_refs(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let oci = OciStore::new(&store);
    let dir = scratch()?;
    let layout = path_in(&dir, "layout");
    let image = simple_image(&layout, "temp")?;
    // The lease comes first: "write blobs now, tag later".
    let lease = oci
        .lease_create(Duration::from_secs(60), &[digest(&image)?])
        .context("creating a lease")?;
    import_default(&oci, &layout)?;
    oci.remove_ref("temp").context("removing temp")?;
    let report = oci.gc(false).context("gc")?;
    ensure!(report.swept.is_empty(), "gc swept leased blobs: {report:?}");
    ensure_eq!(stored(&store)?.len(), 4, "blobs the lease keeps");
    let leases = oci.lease_list().context("listing leases")?;
    ensure_eq!(leases[0].digests, vec![digest(&image)?], "leased digests");
    ensure!(!leases[0].is_expired(), "the lease expired early");
    oci.lease_remove(&lease.id).context("removing the lease")?;
    ensure!(
        oci.lease_remove(&lease.id).is_err(),
        "removing a removed lease succeeded"
    );
    oci.gc(false).context("gc")?;
    let left = stored(&store)?;
    ensure!(left.is_empty(), "blobs left without the lease: {left:?}");
    Ok(())
}

/// Ends the GC loop when the importer ends, failing or not.
struct Done<'a>(&'a AtomicBool);

impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

pub fn gc_never_sweeps_an_import_in_flight(fixture: &StoreFixture) -> TestResult {
    const LAYERS: usize = 12;
    const ROUNDS: usize = 5;
    let store = fixture.open()?;
    let dir = scratch()?;
    let layout = path_in(&dir, "layout");
    // Several layers, so an import spends a while between its first blob and its ref.
    let mut builder = new_builder(&layout)?;
    let layers = (0..LAYERS)
        .map(|i| layer(&format!("layer-{i}")))
        .collect::<Result<Vec<_>, _>>()?;
    let image = builder
        .image("linux", "amd64", &layers)
        .context("building the image")?;
    builder.add_ref(Some("racing"), &image);
    finish(&builder)?;
    let importing = AtomicBool::new(true);
    let (imported, collected) = std::thread::scope(|scope| {
        let importer = scope.spawn(|| -> TestResult {
            let _done = Done(&importing);
            let oci = OciStore::new(&store);
            for round in 0..ROUNDS {
                import_default(&oci, &layout)?;
                let check = oci.check("racing", false).context("checking")?;
                ensure!(
                    check.is_complete(),
                    "round {round}: gc swept part of the image: {check:?}"
                );
                oci.remove_ref("racing").context("removing racing")?;
            }
            Ok(())
        });
        let collector = scope.spawn(|| -> TestResult {
            let oci = OciStore::new(&store);
            // At least one GC, however the threads are scheduled.
            loop {
                oci.gc(false).context("gc")?;
                if !importing.load(Ordering::SeqCst) {
                    return Ok(());
                }
            }
        });
        let join = |handle: std::thread::ScopedJoinHandle<'_, TestResult>| {
            handle.join().unwrap_or_else(|p| Err(panic_message(&p)))
        };
        (join(importer), join(collector))
    });
    imported?;
    collected?;
    OciStore::new(&store).gc(false).context("final gc")?;
    let left = stored(&store)?;
    ensure!(left.is_empty(), "blobs left: {left:?}");
    Ok(())
}

/// Another flavour holds the base layer of an image and lets go of it over and over (marks
/// it, drops its mark, deletes it if nothing else holds it: what its GC does) while the OCI
/// flavour imports the image, removes the ref and collects. An import that finds the layer
/// present must not fail because the other flavour deleted it before the OCI mark landed:
/// no import fails, and each import leaves its ref complete.
pub fn import_survives_another_flavour_letting_go(fixture: &StoreFixture) -> TestResult {
    const ROUNDS: usize = 10;
    let store = fixture.open()?;
    let dir = scratch()?;
    let layout = path_in(&dir, "layout");
    let shared = layer("shared-with-another-flavour")?;
    let shared_digest = oci_store::Digest::of_bytes(oci_store::traits::Algorithm::Sha256, &shared);
    let mut builder = new_builder(&layout)?;
    let image = builder
        .image("linux", "amd64", &[shared.clone(), layer("own")?])
        .context("building the image")?;
    builder.add_ref(Some("contended"), &image);
    finish(&builder)?;
    let importing = AtomicBool::new(true);
    let (imported, other) = std::thread::scope(|scope| {
        let importer = scope.spawn(|| -> TestResult {
            let _done = Done(&importing);
            let oci = OciStore::new(&store);
            for round in 0..ROUNDS {
                import_default(&oci, &layout).context(format!("round {round}"))?;
                let check = oci.check("contended", false).context("checking")?;
                ensure!(check.is_complete(), "round {round}: {check:?}");
                oci.remove_ref("contended").context("removing the ref")?;
                oci.gc(false).context("gc")?;
            }
            Ok(())
        });
        let other_flavour = scope.spawn(|| -> TestResult {
            let options = oci_store::store::WriteOptions {
                media_type: Some("application/vnd.oci.image.layer.v1.tar+gzip".to_string()),
                ..Default::default()
            };
            while importing.load(Ordering::SeqCst) {
                store
                    .write_bytes(&shared, &options)
                    .context("the other flavour writing the layer")?;
                match store.mark_owner(&shared_digest, &Holder::flavour("other")) {
                    Ok(()) | Err(oci_store::store::StoreError::MissingBlob { .. }) => {}
                    Err(error) => crate::fail!("the other flavour marking: {error}"),
                }
                store
                    .unmark_owner(&shared_digest, &Holder::flavour("other"))
                    .context("the other flavour unmarking")?;
                store
                    .delete_if_unreferenced(&shared_digest)
                    .context("the other flavour deleting")?;
            }
            Ok(())
        });
        let join = |handle: std::thread::ScopedJoinHandle<'_, TestResult>| {
            handle.join().unwrap_or_else(|p| Err(panic_message(&p)))
        };
        (join(importer), join(other_flavour))
    });
    imported?;
    other?;
    Ok(())
}

/// A blob the OCI GC let go of while a key/value entry held it stays only as long as the
/// entry: removing the entry takes the blob with it, in one step (nothing leaks).
pub fn gc_leaves_entry_held_blobs_to_their_entry(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let oci = OciStore::new(&store);
    let dir = scratch()?;
    let layout = path_in(&dir, "layout");
    let image = simple_image(&layout, "pinned")?;
    import_default(&oci, &layout)?;
    let pinned = layer_digest_in(&layout, &image, 0)?;
    store
        .put_data("user.pin", "layer", b"", Some(&pinned))
        .context("pinning a layer with an entry")?;
    oci.remove_ref("pinned").context("removing the ref")?;
    let report = oci.gc(false).context("gc")?;
    let kept: Vec<_> = report.swept.iter().filter(|s| !s.deleted).collect();
    ensure_eq!(kept.len(), 1, "blobs the entry keeps: {report:?}");
    ensure_eq!(kept[0].digest, pinned, "the blob that stays");
    ensure_eq!(
        stored(&store)?,
        BTreeSet::from([pinned.clone()]),
        "blobs after gc"
    );
    ensure!(
        store
            .owned_by(&Holder::flavour("oci"))
            .context("owned_by")?
            .is_empty(),
        "the oci mark stayed"
    );
    store
        .remove_data("user.pin", "layer")
        .context("removing the entry")?;
    let left = stored(&store)?;
    ensure!(
        left.is_empty(),
        "the blob outlived its last holder: {left:?}"
    );
    ensure!(
        !store.blob_store().contains(&pinned).context("contains")?,
        "its content outlived it"
    );
    Ok(())
}

/// An `Index` whose `get` fails, with an error that is not "not found", for chosen digests:
/// a busy database or an I/O error, as the GC may meet one.
struct FailingIndex {
    inner: std::sync::Arc<dyn Index>,
    failing: std::sync::Arc<std::sync::Mutex<BTreeSet<Digest>>>,
}

impl Index for FailingIndex {
    fn upsert_many(&self, records: &[BlobRecord]) -> StorageResult<()> {
        self.inner.upsert_many(records)
    }
    fn remove_many(&self, digests: &[Digest]) -> StorageResult<u64> {
        self.inner.remove_many(digests)
    }
    /// Reading the record of a failing digest fails (`Index::get` is a lookup of the
    /// complete digest).
    fn by_prefix(&self, prefix: &DigestPrefix, limit: usize) -> StorageResult<Vec<BlobRecord>> {
        let failing = prefix
            .as_complete()
            .is_some_and(|digest| self.failing.lock().expect("lock").contains(&digest));
        if failing {
            return Err(StorageError::from(IoContext::new(
                "reading the index (injected fault)",
                "index",
                std::io::Error::other("injected: database is busy"),
            )));
        }
        self.inner.by_prefix(prefix, limit)
    }
    fn by_media_type(&self, media_type: &str) -> StorageResult<Vec<BlobRecord>> {
        self.inner.by_media_type(media_type)
    }
    fn page(&self, after: Option<&Digest>, limit: usize) -> StorageResult<Vec<BlobRecord>> {
        self.inner.page(after, limit)
    }
    fn totals(&self) -> StorageResult<oci_store::traits::IndexTotals> {
        self.inner.totals()
    }
}

/// Only "not found" means absent: an error reading the record of a leased blob stops the GC
/// (dry run too) before it sweeps anything, and the leased image is whole afterwards.
pub fn gc_stops_on_storage_errors_and_sweeps_nothing(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let dir = scratch()?;
    let layout = path_in(&dir, "layout");
    let image = simple_image(&layout, "leased")?;
    let manifest = digest(&image)?;
    let oci = OciStore::new(&store);
    import_default(&oci, &layout)?;
    oci.lease_create(Duration::from_secs(3600), std::slice::from_ref(&manifest))
        .context("creating a lease")?;
    oci.remove_ref("leased").context("removing the ref")?;
    let before = store.dump().context("dump")?;

    let failing = std::sync::Arc::new(std::sync::Mutex::new(BTreeSet::from([manifest.clone()])));
    let faulty: Store = Store::from_parts(
        store.dir(),
        store.blob_store().clone(),
        std::sync::Arc::new(FailingIndex {
            inner: store.index().clone(),
            failing: failing.clone(),
        }) as std::sync::Arc<dyn Index>,
        store.extra_data().clone(),
        store.kv_store().clone(),
    )
    .context("opening the store over the failing index")?;
    let faulty_oci = OciStore::new(&faulty);
    for dry_run in [true, false] {
        match faulty_oci.gc(dry_run) {
            Ok(report) => crate::fail!(
                "gc (dry run: {dry_run}) went on past a failing index read: {report:?}"
            ),
            Err(error) => ensure!(
                error.to_string().contains("injected"),
                "the error does not carry the cause: {error}"
            ),
        }
    }
    ensure_eq!(
        store.dump().context("dump")?,
        before,
        "the store after a gc that failed"
    );
    failing.lock().expect("lock").clear();
    let report = faulty_oci.gc(false).context("gc once the index answers")?;
    ensure!(
        report.swept.is_empty(),
        "the lease did not keep the image: {report:?}"
    );
    Ok(())
}

/// A ref that reaches a document the GC cannot verify: its children cannot be known, so the GC
/// refuses, naming the document and the ref and saying what to do, and sweeps nothing. Shown
/// with a ref whose descriptor disagrees with the stored manifest (every backend) and, where
/// the backend keeps blob files, with a manifest whose content is corrupt.
pub fn gc_refuses_when_a_ref_reaches_a_corrupt_document(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let oci = OciStore::new(&store);
    let dir = scratch()?;
    let layout = path_in(&dir, "layout");
    let image = simple_image(&layout, "damaged")?;
    let manifest = digest(&image)?;
    import_default(&oci, &layout)?;
    let good_ref = store
        .get_data(REF_TYPE, "damaged")
        .context("reading the ref")?
        .ok_or("the ref is missing")?;

    let refused = |what: &str| -> TestResult {
        let before = store.dump().context("dump")?;
        for dry_run in [true, false] {
            match oci.gc(dry_run) {
                Ok(report) => crate::fail!(
                    "{what}: gc (dry run: {dry_run}) swept past an unreadable document: {report:?}"
                ),
                Err(error) => {
                    let message = error.to_string();
                    for needed in [
                        manifest.as_str(),
                        "damaged",
                        "fsck --repair",
                        "check --verify",
                    ] {
                        ensure!(
                            message.contains(needed),
                            "{what}: the error does not name {needed:?}: {message}"
                        );
                    }
                }
            }
        }
        ensure_eq!(
            store.dump().context("dump")?,
            before,
            "{what}: store after gc"
        );
        Ok(())
    };

    let mut lying: serde_json::Value =
        serde_json::from_slice(&good_ref.value).context("parsing the ref")?;
    lying["size"] = serde_json::json!(image.size() + 1);
    store
        .put_data(
            REF_TYPE,
            "damaged",
            &serde_json::to_vec(&lying).context("serializing")?,
            Some(&manifest),
        )
        .context("rewriting the ref")?;
    refused("a ref whose size disagrees with the manifest")?;

    store
        .put_data(REF_TYPE, "damaged", &good_ref.value, Some(&manifest))
        .context("restoring the ref")?;
    let report = oci.gc(false).context("gc with the ref restored")?;
    ensure!(
        report.swept.is_empty(),
        "swept with the ref whole: {report:?}"
    );
    if crate::base_store::corrupt_blob_file(store.dir(), &manifest)? {
        // The links recorded when the manifest was committed (from its verified bytes) still
        // say what it reaches: the GC keeps all of it without reading the damaged content
        // (finding it is `check --verify`'s and `fsck`'s job).
        let report = oci
            .gc(false)
            .context("gc with the manifest's links recorded")?;
        ensure!(
            report.swept.is_empty(),
            "a corrupt manifest with recorded links lost what it reaches: {report:?}"
        );
        // Without them (a store from before links were recorded), it must be read: refused.
        store
            .remove_extra(&manifest, LINKS_DATA_TYPE)
            .context("removing the manifest's links")?;
        refused("a corrupt manifest without recorded links")?;
    }
    Ok(())
}

/// Every document a commit stores has its links recorded (extra data `oci.links`), and the GC
/// marks from them; a document without them (a store from before) is read, and a real GC (not
/// a dry run) records them, with the same outcome either way.
pub fn gc_marks_from_recorded_links_and_records_missing_ones(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let oci = OciStore::new(&store);
    let dir = scratch()?;
    let layout = path_in(&dir, "layout");
    let doing = "building the layout";
    let mut builder = new_builder(&layout)?;
    let base = layer("base")?;
    let kept = builder
        .image("linux", "amd64", &[base.clone(), layer("kept")?])
        .context(doing)?;
    let dropped = builder
        .image("linux", "amd64", &[base, layer("dropped")?])
        .context(doing)?;
    builder.add_ref(Some("kept"), &kept);
    builder.add_ref(Some("dropped"), &dropped);
    finish(&builder)?;
    import_all(&oci, &layout)?;
    let kept_manifest = digest(&kept)?;
    let dropped_manifest = digest(&dropped)?;
    for manifest in [&kept_manifest, &dropped_manifest] {
        ensure!(
            store
                .get_extra(manifest, LINKS_DATA_TYPE)
                .context("reading links")?
                .is_some(),
            "the import did not record the links of {manifest}"
        );
    }
    let recorded = store
        .get_extra(&kept_manifest, LINKS_DATA_TYPE)
        .context("reading links")?;
    store
        .remove_extra(&kept_manifest, LINKS_DATA_TYPE)
        .context("removing links")?;
    oci.remove_ref("dropped").context("removing a ref")?;

    let dry = oci.gc(true).context("gc --dry-run")?;
    ensure!(
        store
            .get_extra(&kept_manifest, LINKS_DATA_TYPE)
            .context("reading links")?
            .is_none(),
        "a dry run wrote links"
    );
    let real = oci.gc(false).context("gc")?;
    let swept = |report: &oci_store::stores::oci::OciGcReport| -> BTreeSet<Digest> {
        report.swept.iter().map(|b| b.digest.clone()).collect()
    };
    ensure_eq!(
        swept(&dry),
        swept(&real),
        "what the dry run and the gc swept"
    );
    // The dropped image's manifest and own layer; the base layer and the config (identical
    // content) are shared with the kept image and stay.
    ensure_eq!(real.swept.len(), 2, "blobs swept: {real:?}");
    ensure!(
        swept(&real).contains(&dropped_manifest),
        "the dropped manifest stayed: {real:?}"
    );
    ensure_eq!(
        store
            .get_extra(&kept_manifest, LINKS_DATA_TYPE)
            .context("reading links")?,
        recorded,
        "the links the gc recorded for the manifest it read"
    );
    let again = oci.gc(false).context("gc again")?;
    ensure!(again.swept.is_empty(), "a second gc swept: {again:?}");
    Ok(())
}
