//! OCI works: an import of several refs (one of whose blobs the store already has), exports
//! into one layout and into an archive, and the OCI GC (an unreferenced image, an expired
//! lease, the holds of a crashed import), and a registry push as `serve` receives it.

use std::time::Duration;

use oci_store::store::{WriteOptions, OPERATION_DATA_TYPE};
use oci_store::stores::oci::{self, import_holder, ImportOptions, OciStore, IMPORT_DATA_TYPE};
use oci_store::traits::Algorithm;
use oci_store::{Digest, Store};

use super::super::trial::Trial;
use super::Work;
use crate::check::TestResult;
use crate::oci::support::layout_with_refs;
use crate::{ensure, Context};

const IMPORTED: [&str; 3] = ["crash/a:1", "crash/b:1", "crash/c:1"];
const PRESENT: &str = "crash/present:1";

fn import_all(store: &Store, layout: &std::path::Path) -> Result<(), String> {
    OciStore::new(store)
        .import_layout(
            layout,
            &ImportOptions {
                all: true,
                ..ImportOptions::default()
            },
        )
        .map(drop)
        .context(format!("importing {}", layout.display()))
}

/// Whether `name` is a ref, and if so that everything it reaches is there and rehashes.
fn ref_is_complete(store: &Store, name: &str) -> Result<bool, String> {
    let oci = OciStore::new(store);
    if oci.get_ref(name).is_err() {
        return Ok(false);
    }
    let report = oci.check(name, true).context(format!("check {name}"))?;
    ensure!(
        report.is_complete(),
        "ref {name} is listed but incomplete: {report:?}"
    );
    Ok(true)
}

/// `import --all` of a layout with three refs whose shared base layer the store holds already
/// (from another image): staged blobs committed in batches, the present one held, refs last.
pub struct OciImport;

impl Work for OciImport {
    fn name(&self) -> &'static str {
        "oci-import"
    }

    fn setup(&self, trial: &Trial) -> Result<(), String> {
        let store = trial.create_store()?;
        layout_with_refs(&trial.inputs().join("present"), &[PRESENT])?;
        import_all(&store, &trial.inputs().join("present"))?;
        layout_with_refs(&trial.inputs().join("layout"), &IMPORTED)?;
        Ok(())
    }

    fn run(&self, trial: &Trial) -> Result<(), String> {
        let store = trial.open_store()?;
        import_all(&store, &trial.inputs().join("layout"))
    }

    fn check(&self, store: &Store, _trial: &Trial, completed: bool) -> TestResult {
        ensure!(
            ref_is_complete(store, PRESENT)?,
            "the image imported before was lost"
        );
        let present: Vec<bool> = IMPORTED
            .iter()
            .map(|name| ref_is_complete(store, name))
            .collect::<Result<_, _>>()?;
        // All or nothing: the refs land in one batch.
        ensure!(
            present.iter().all(|p| *p) || present.iter().all(|p| !*p),
            "an interrupted import left some refs: {present:?}"
        );
        ensure!(
            !completed || present.iter().all(|p| *p),
            "the import completed but its refs are missing"
        );
        Ok(())
    }

    fn settle(&self, store: &Store, _trial: &Trial) -> TestResult {
        // What a crashed import held goes at the next OCI GC.
        OciStore::new(store).gc(false).map(drop).context("oci gc")
    }
}

const EXPORTED: [&str; 2] = ["crash/a:1", "crash/b:1"];

/// Two refs exported into one layout directory (the second merged into `index.json`), then
/// one into an `oci-archive`.
pub struct OciExport;

impl Work for OciExport {
    fn name(&self) -> &'static str {
        "oci-export"
    }

    fn writes_the_store(&self) -> bool {
        false
    }

    fn setup(&self, trial: &Trial) -> Result<(), String> {
        let store = trial.create_store()?;
        layout_with_refs(&trial.inputs().join("layout"), &EXPORTED)?;
        import_all(&store, &trial.inputs().join("layout"))
    }

    fn run(&self, trial: &Trial) -> Result<(), String> {
        let store = trial.open_store()?;
        let oci = OciStore::new(&store);
        let layout = trial.out().join("layout");
        for name in EXPORTED {
            oci.export(name, None, &layout, false)
                .context(format!("exporting {name}"))?;
            trial.ack(&format!("exported {name}"))?;
        }
        oci.export(EXPORTED[0], None, &trial.out().join("a.tar"), true)
            .context("exporting an archive")?;
        trial.ack("exported archive")?;
        Ok(())
    }

    fn check(&self, store: &Store, trial: &Trial, completed: bool) -> TestResult {
        for name in EXPORTED {
            ensure!(ref_is_complete(store, name)?, "export lost the ref {name}");
        }
        // What the layout's index.json names must import (every blob whole), and what was
        // acknowledged must be named.
        let layout = trial.out().join("layout");
        let mut expected: Vec<&str> = EXPORTED
            .iter()
            .copied()
            .filter(|name| completed || trial.acked(&format!("exported {name}")))
            .collect();
        if layout.join("index.json").exists() {
            let names = imported_names(trial, &layout, "layout")?;
            for name in &names {
                ensure!(
                    EXPORTED.contains(&name.as_str()),
                    "the layout names {name}, which was not exported"
                );
            }
            expected.retain(|name| !names.iter().any(|n| n == name));
        }
        ensure!(
            expected.is_empty(),
            "acknowledged exports missing from the layout: {expected:?}"
        );
        let archive = trial.out().join("a.tar");
        if archive.exists() {
            imported_names(trial, &archive, "archive")?;
        } else {
            ensure!(
                !(completed || trial.acked("exported archive")),
                "the acknowledged archive is missing"
            );
        }
        Ok(())
    }
}

/// Imports `source` into a scratch store of the same backends and lists the refs it got.
fn imported_names(
    trial: &Trial,
    source: &std::path::Path,
    what: &str,
) -> Result<Vec<String>, String> {
    let dir = trial.dir.join(format!("scratch-{what}-{}", trial.attempt));
    let _ = std::fs::remove_dir_all(&dir);
    let scratch = trial
        .combination
        .open(&dir)
        .context("opening a scratch store")?;
    import_all(&scratch, source)
        .map_err(|e| format!("the exported {what} does not import: {e}"))?;
    let names = OciStore::new(&scratch)
        .ref_descriptors()
        .context("listing refs")?
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    drop(scratch);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(names)
}

const KEPT: &str = "crash/a:1";
const DROPPED: &str = "crash/b:1";
const STALE_IMPORT: &str = "crashed-import";

fn stale_blob() -> Vec<u8> {
    b"held only by an import that crashed".to_vec()
}

fn stale_legacy_blob() -> Vec<u8> {
    b"held only by an import of an older version that crashed".to_vec()
}

/// The OCI GC with an unreferenced image (its ref removed), an expired lease and the holds of
/// imports that crashed: an operation (its `store.operation` entry, its liveness lock free, one
/// blob under its mark) and an import of the versions before operations (its `oci.import`
/// entry and one blob under its mark).
pub struct OciGc;

impl Work for OciGc {
    fn name(&self) -> &'static str {
        "oci-gc"
    }

    fn frees_space(&self) -> bool {
        true
    }

    fn setup(&self, trial: &Trial) -> Result<(), String> {
        let store = trial.create_store()?;
        let layout = trial.inputs().join("layout");
        let images = layout_with_refs(&layout, &[KEPT, DROPPED])?;
        import_all(&store, &layout)?;
        let oci = OciStore::new(&store);
        oci.remove_ref(DROPPED).context("removing a ref")?;
        let dropped = crate::oci::support::digest(&images[1])?;
        oci.lease_create(Duration::from_millis(1), &[dropped])
            .context("creating a lease")?;
        std::thread::sleep(Duration::from_millis(5));
        let operation = oci::HOLDER.operation(STALE_IMPORT);
        let crashed = [
            (
                OPERATION_DATA_TYPE,
                operation.name().to_string(),
                operation,
                stale_blob(),
            ),
            (
                IMPORT_DATA_TYPE,
                STALE_IMPORT.to_string(),
                import_holder(STALE_IMPORT),
                stale_legacy_blob(),
            ),
        ];
        for (data_type, key, holder, bytes) in crashed {
            store
                .put_data(data_type, &key, b"{}", None)
                .context("recording an import")?;
            let staged = store
                .stage(&bytes[..], &WriteOptions::default())
                .context("staging")?;
            store
                .commit_staged(vec![staged], &holder)
                .context("committing under the import's hold")?;
        }
        Ok(())
    }

    fn run(&self, trial: &Trial) -> Result<(), String> {
        let store = trial.open_store()?;
        OciStore::new(&store).gc(false).map(drop).context("oci gc")
    }

    fn check(&self, store: &Store, trial: &Trial, completed: bool) -> TestResult {
        ensure!(
            ref_is_complete(store, KEPT)?,
            "gc broke the kept ref {KEPT}"
        );
        if completed {
            for bytes in [stale_blob(), stale_legacy_blob()] {
                let stale = Digest::of_bytes(Algorithm::Sha256, &bytes);
                ensure!(
                    !store.contains(&stale).context("lookup")?,
                    "gc kept the blob of a crashed import"
                );
            }
            let layout = trial.inputs().join("layout");
            let images = crate::oci::support::index_entries(&layout)?;
            ensure!(images.len() == 2, "layout entries: {images:?}");
            let dropped = Digest::parse(images[1]["digest"].as_str().unwrap_or_default())
                .context("digest")?;
            ensure!(
                !store.contains(&dropped).context("lookup")?,
                "gc kept the manifest of the removed ref"
            );
        }
        Ok(())
    }
}

const PRUNE_PINNED: &str = "crash/pinned:1";
const PRUNE_RECENT: &str = "crash/recent:1";
const PRUNE_OLD: [&str; 2] = ["crash/old:1", "crash/old:2"];

/// A prune by age: two refs unused for 30 days go, a pinned one as old and a recent one stay.
/// Interrupted anywhere, every ref is whole or gone, never broken; what the victims alone
/// reached goes at the next GC.
pub struct OciPrune;

impl OciPrune {
    fn options() -> oci::PruneOptions {
        oci::PruneOptions {
            policy: oci_store::retention::RetentionPolicy {
                unused_for: Some(Duration::from_secs(24 * 3600)),
                ..Default::default()
            },
            ..oci::PruneOptions::default()
        }
    }
}

impl Work for OciPrune {
    fn name(&self) -> &'static str {
        "oci-prune"
    }

    fn frees_space(&self) -> bool {
        true
    }

    fn setup(&self, trial: &Trial) -> Result<(), String> {
        let store = trial.create_store()?;
        let layout = trial.inputs().join("layout");
        let names = [PRUNE_PINNED, PRUNE_RECENT, PRUNE_OLD[0], PRUNE_OLD[1]];
        layout_with_refs(&layout, &names)?;
        import_all(&store, &layout)?;
        let month_ago = oci_store_now() - 30 * 24 * 3600 * 1000;
        for name in [PRUNE_PINNED, PRUNE_OLD[0], PRUNE_OLD[1]] {
            store
                .put_data(
                    "store.last-used",
                    &format!("oci/{name}"),
                    month_ago.to_string().as_bytes(),
                    None,
                )
                .context("recording an old use")?;
        }
        OciStore::new(&store).pin(PRUNE_PINNED).context("pinning")
    }

    fn run(&self, trial: &Trial) -> Result<(), String> {
        let store = trial.open_store()?;
        OciStore::new(&store)
            .prune(&Self::options())
            .map(drop)
            .context("prune")
    }

    fn check(&self, store: &Store, _trial: &Trial, completed: bool) -> TestResult {
        // `check` counts as a use, which would save the victims from the second run: within
        // this interval of their (month-old) records, no use is written.
        store.set_last_used_interval(Duration::from_secs(365 * 24 * 3600));
        for name in [PRUNE_PINNED, PRUNE_RECENT] {
            ensure!(
                ref_is_complete(store, name)?,
                "prune broke or removed {name}"
            );
        }
        let old: Vec<bool> = PRUNE_OLD
            .iter()
            .map(|name| ref_is_complete(store, name))
            .collect::<Result<_, _>>()?;
        // The victims' refs go in one transaction.
        ensure!(
            old.iter().all(|p| *p) || old.iter().all(|p| !*p),
            "an interrupted prune removed some victims only: {old:?}"
        );
        ensure!(
            !completed || old.iter().all(|p| !*p),
            "the prune completed but its victims are still refs"
        );
        Ok(())
    }

    fn settle(&self, store: &Store, _trial: &Trial) -> TestResult {
        OciStore::new(store).gc(false).map(drop).context("oci gc")
    }
}

fn oci_store_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

const PUSHED: &str = "crash/pushed:1";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// The blobs of the image in `layout` (config, then layers) and its manifest, as a client
/// pushes them.
fn pushed_image(layout: &std::path::Path) -> Result<(Vec<Vec<u8>>, Vec<u8>), String> {
    let read = |digest: &str| {
        let digest = Digest::parse(digest).context("digest")?;
        let path = layout.join("blobs").join("sha256").join(digest.hex());
        std::fs::read(&path).context(format!("reading {}", path.display()))
    };
    let entries = crate::oci::support::index_entries(layout)?;
    let manifest = read(entries[0]["digest"].as_str().unwrap_or_default())?;
    let document: serde_json::Value = serde_json::from_slice(&manifest).context("manifest")?;
    let mut blobs = vec![read(
        document["config"]["digest"].as_str().unwrap_or_default(),
    )?];
    for layer in document["layers"].as_array().into_iter().flatten() {
        blobs.push(read(layer["digest"].as_str().unwrap_or_default())?);
    }
    Ok((blobs, manifest))
}

/// A registry push as `serve` receives it: each blob an upload operation (`begin_upload`),
/// streamed into staging and received through it (`receive_blob`: the upload lease in its
/// commit batch), then the manifest
/// with a tag (`receive_manifest`: one operation, the ref in its commit batch).
pub struct OciReceive;

impl Work for OciReceive {
    fn name(&self) -> &'static str {
        "oci-receive"
    }

    fn setup(&self, trial: &Trial) -> Result<(), String> {
        trial.create_store()?;
        layout_with_refs(&trial.inputs().join("layout"), &[PUSHED])?;
        Ok(())
    }

    fn run(&self, trial: &Trial) -> Result<(), String> {
        let store = trial.open_store()?;
        let oci = OciStore::new(&store);
        let (blobs, manifest) = pushed_image(&trial.inputs().join("layout"))?;
        for blob in &blobs {
            let digest = Digest::of_bytes(Algorithm::Sha256, blob);
            let options = WriteOptions {
                expected_digest: Some(digest.clone()),
                expected_size: Some(blob.len() as u64),
                ..WriteOptions::default()
            };
            let upload = oci.begin_upload().context("starting an upload")?;
            let mut writer = store.writer(&options).context("starting an upload")?;
            std::io::Write::write_all(&mut writer, blob).context("uploading")?;
            let staged = writer.stage().context("staging an upload")?;
            oci.receive_blob(upload, staged, Duration::from_secs(3600))
                .context("receiving a blob")?;
            trial.ack(&format!("blob {digest}"))?;
        }
        let tag = oci::RefName::parse(PUSHED).context("ref name")?;
        oci.receive_manifest(
            &manifest,
            OCI_MANIFEST,
            Some(&tag),
            Duration::from_secs(3600),
        )
        .context("receiving the manifest")?;
        trial.ack("manifest")
    }

    fn check(&self, store: &Store, trial: &Trial, completed: bool) -> TestResult {
        for ack in trial.acks() {
            let Some(digest) = ack.strip_prefix("blob ") else {
                continue;
            };
            let digest = Digest::parse(digest).context("acknowledged digest")?;
            let holders = store.holders(&digest).context("holders")?;
            ensure!(
                holders.owners.contains(&oci::HOLDER),
                "an acknowledged upload {digest} is not the OCI flavour's: {holders:?}"
            );
        }
        // The ref lands with its manifest or not at all, and names a whole image.
        let pushed = ref_is_complete(store, PUSHED)?;
        ensure!(
            pushed || !(completed || trial.acked("manifest")),
            "the push completed but its ref is missing"
        );
        Ok(())
    }

    fn settle(&self, store: &Store, _trial: &Trial) -> TestResult {
        // The upload leases (random ids, one per received blob, so a second run adds more)
        // go; the GC then keeps exactly what the ref reaches.
        let oci = OciStore::new(store);
        for lease in oci.lease_list().context("listing leases")? {
            oci.lease_remove(&lease.id).context("removing a lease")?;
        }
        oci.gc(false).map(drop).context("oci gc")
    }
}
