//! The checks once every worker finished: the store holds exactly what the models say (own
//! objects), at least what the shared histories say must be there, the shared export layout
//! holds what was exported and imports whole into a fresh store; then an OCI GC keeps every ref
//! and leased image whole, fsck is clean, and after `fsck --repair` nothing is left for GC.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use oci_store::stores::appc::{AppcError, AppcStore};
use oci_store::stores::oci::{ImportOptions, OciError, OciStore};
use oci_store::traits::{Algorithm, Digest};
use oci_store::Store;

use super::event::EntryView;
use super::inputs::{
    own_aci, own_aci_name, own_blob, own_kv_key, own_ref, shared_ref, Inputs, COUNTERS,
    COUNTER_TYPE, NOTE_TYPE, OWN_KEYS, OWN_KV_TYPE, OWN_REFS,
};
use super::own_model::OwnModel;
use super::shared_history::{SharedHistory, SharedObject};
use crate::appc::support::Appc;
use crate::content::hash_reader;
use crate::matrix::Combination;
use crate::oci::support::Oci;
use crate::workload::{check_consistent, contents};

/// Collects what is wrong rather than stopping at the first finding.
struct Findings(Vec<String>);

impl Findings {
    fn note(&mut self, finding: String) {
        self.0.push(finding);
    }
    /// Records an error of a check itself.
    fn check<T>(&mut self, what: &str, result: Result<T, impl std::fmt::Display>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.0.push(format!("{what}: {error}"));
                None
            }
        }
    }
}

fn blob_is_whole(store: &Store, digest: &Digest, size: u64) -> Result<bool, String> {
    if !store.contains(digest).map_err(|e| e.to_string())? {
        return Ok(false);
    }
    let reader = store.read(digest).map_err(|e| e.to_string())?;
    let (read, read_size) = hash_reader(reader, digest.algorithm()).map_err(|e| e.to_string())?;
    if read != *digest || read_size != size {
        return Err(format!("{digest} reads back as {read} ({read_size} bytes)"));
    }
    Ok(true)
}

pub fn check_final_state(
    store: &Store,
    combination: &Combination,
    inputs: &Inputs,
    models: &BTreeMap<String, OwnModel>,
    history: &SharedHistory,
) -> Vec<String> {
    let mut findings = Findings(Vec::new());
    if let Some(report) = findings.check("fsck after the run", store.fsck(Default::default())) {
        if !report.is_clean() {
            findings.note(format!(
                "fsck after the run (no worker crashed) found problems: {:?}",
                report.problems
            ));
        }
    }
    let oci = OciStore::new(store).with_gc_lock_wait(Duration::from_secs(120));
    let appc = AppcStore::new(store);
    for (thread, model) in models {
        check_own(store, &oci, &appc, thread, model, &mut findings);
    }
    check_shared(store, &oci, &appc, inputs, history, &mut findings);
    check_exported_layout(combination, inputs, models, &mut findings);

    // An OCI GC with everything in place keeps every ref and every leased image whole.
    findings.check("oci gc after the run", oci.gc(false));
    for (thread, model) in models {
        check_refs(&oci, thread, model, "after one more oci gc", &mut findings);
        if model.own_image_must_be_whole() {
            let digest = Digest::parse(&model.own_image).ok();
            let present = digest.map(|d| store.contains(&d));
            if !matches!(present, Some(Ok(true))) {
                findings.note(format!(
                    "{thread}: own image {} is protected (ref or lease) but gone after an oci gc",
                    model.own_image
                ));
            }
        }
    }
    // No orphans once fsck repaired: a clean fsck, and GC finds nothing left to remove.
    findings.check(
        "fsck --repair after the run",
        store.fsck(oci_store::store::FsckOptions::repairing()),
    );
    if let Err(error) = check_consistent(store) {
        findings.note(format!("after fsck --repair: {error}"));
    }
    findings.0
}

fn check_own(
    store: &Store,
    oci: &Oci<'_>,
    appc: &Appc<'_>,
    thread: &str,
    model: &OwnModel,
    findings: &mut Findings,
) {
    for (slot, blob) in model.blobs.iter().enumerate() {
        let bytes = own_blob(thread, slot);
        let digest = Digest::of_bytes(Algorithm::Sha256, &bytes);
        let what = format!("{thread}: own blob {slot} ({digest})");
        let Some(whole) = findings.check(&what, blob_is_whole(store, &digest, bytes.len() as u64))
        else {
            continue;
        };
        if whole != blob.present {
            findings.note(format!(
                "{what}: in the store: {whole}, the model says {}",
                blob.present
            ));
        }
        let note = findings.check(&what, store.get_extra(&digest, NOTE_TYPE));
        let want = blob.note.as_ref().map(|n| n.as_bytes().to_vec());
        if let Some(note) = note.filter(|note| *note != want) {
            findings.note(format!("{what}: note {note:?}, the model says {want:?}"));
        }
    }
    let slot_of = |digest: &Digest| {
        (0..model.blobs.len())
            .find(|slot| Digest::of_bytes(Algorithm::Sha256, &own_blob(thread, *slot)) == *digest)
    };
    for key in 0..OWN_KEYS {
        let name = own_kv_key(thread, key);
        if let Some(entry) = findings.check(&name, store.get_data(OWN_KV_TYPE, &name)) {
            let seen = entry.map(|entry| EntryView {
                value: String::from_utf8_lossy(&entry.value).into_owned(),
                version: entry.version,
                blob: entry.blob.as_ref().and_then(slot_of),
            });
            if seen.as_ref() != model.entries.get(&key) {
                findings.note(format!(
                    "{thread}: entry {name} is {seen:?}, the model says {:?}",
                    model.entries.get(&key)
                ));
            }
        }
    }
    check_refs(oci, thread, model, "after the run", findings);
    for index in 0..model.acis.len() {
        let tar = own_aci(thread, index);
        let digest = Digest::of_bytes(Algorithm::Sha512, &tar);
        let what = format!("{thread}: tar of own appc image {index} ({digest})");
        let whole = findings.check(&what, blob_is_whole(store, &digest, tar.len() as u64));
        if whole.is_some_and(|whole| whole != model.aci_blob_present(index)) {
            findings.note(format!(
                "{what}: in the store: {whole:?}, the model says {} (appc holds: {}, base holds: {})",
                model.aci_blob_present(index),
                model.acis[index],
                model.aci_base_held[index]
            ));
        }
    }
    if model.own_layer_must_be_there() {
        let (digest, size) = &model.own_layer;
        let what = format!("{thread}: own layer {digest}");
        let whole = Digest::parse(digest)
            .map_err(|e| e.to_string())
            .and_then(|d| blob_is_whole(store, &d, *size));
        if let Some(false) = findings.check(&what, whole) {
            findings.note(format!(
                "{what} is gone (base holds it: {}, image protected: {})",
                model.layer_base_held,
                model.own_image_must_be_whole()
            ));
        }
    }
    for (index, present) in model.acis.iter().enumerate() {
        let id = &model.own_acis[index];
        match appc.info(id) {
            Ok(info) if *present => {
                if info.name != own_aci_name(thread, index) {
                    findings.note(format!("{thread}: appc image {id} is named {}", info.name));
                }
                findings.check(&format!("{thread}: rendering {id}"), appc.render(id, None));
            }
            Ok(_) => findings.note(format!(
                "{thread}: appc image {id} is there, removed in the model"
            )),
            Err(AppcError::ImageNotFound(_)) if !*present => {}
            Err(error) => findings.note(format!("{thread}: appc image {id}: {error}")),
        }
    }
}

fn check_refs(oci: &Oci<'_>, thread: &str, model: &OwnModel, when: &str, findings: &mut Findings) {
    for name in 0..OWN_REFS {
        let ref_name = own_ref(thread, name);
        match (oci.check(&ref_name, true), model.refs.get(&name)) {
            (Ok(report), Some(digest)) => {
                if report.digest.as_str() != digest {
                    findings.note(format!(
                        "{when}: ref {ref_name} names {}, the model says {digest}",
                        report.digest
                    ));
                }
                if !report.is_complete() {
                    findings.note(format!(
                        "{when}: ref {ref_name} is not complete: {report:?}"
                    ));
                }
            }
            (Ok(report), None) => findings.note(format!(
                "{when}: ref {ref_name} names {}, removed in the model",
                report.digest
            )),
            (Err(OciError::RefNotFound(_)), None) => {}
            (Err(error), _) => findings.note(format!("{when}: checking ref {ref_name}: {error}")),
        }
    }
}

fn check_shared(
    store: &Store,
    oci: &Oci<'_>,
    appc: &Appc<'_>,
    inputs: &Inputs,
    history: &SharedHistory,
    findings: &mut Findings,
) {
    for object in history.surely_present_at_end() {
        let what = format!("shared {object:?} (written last with no removal after)");
        match object {
            SharedObject::Blob(item) => {
                let content = &contents(false)[item];
                let whole = blob_is_whole(store, &content.digest, content.bytes.len() as u64);
                if let Some(false) = findings.check(&what, whole) {
                    findings.note(format!("{what}: {} is gone", content.digest));
                }
            }
            SharedObject::Ref(name) => match oci.check(&shared_ref(name), true) {
                Ok(report) if report.is_complete() => {}
                Ok(report) => findings.note(format!("{what}: not complete: {report:?}")),
                Err(error) => findings.note(format!("{what}: {error}")),
            },
            SharedObject::Aci(version) => {
                findings.check(&what, appc.info(&inputs.acis[version].id));
            }
        }
    }
    // Every shared ref that is there is complete, whatever the history.
    for name in 0..super::inputs::SHARED_REFS {
        match oci.check(&shared_ref(name), true) {
            Ok(report) if !report.is_complete() => findings.note(format!(
                "shared ref {}: not complete: {report:?}",
                shared_ref(name)
            )),
            Ok(_) | Err(OciError::RefNotFound(_)) => {}
            Err(error) => findings.note(format!("shared ref {}: {error}", shared_ref(name))),
        }
    }
    for counter in 0..COUNTERS {
        let want = history.increments.get(&counter).copied().unwrap_or(0);
        let key = format!("c{counter}");
        let Some(entry) = findings.check(&key, store.get_data(COUNTER_TYPE, &key)) else {
            continue;
        };
        let (value, version) = entry.map_or((0, 0), |e| {
            (
                String::from_utf8_lossy(&e.value)
                    .parse::<u64>()
                    .unwrap_or(u64::MAX),
                e.version,
            )
        });
        if value != want || version != want {
            findings.note(format!(
                "counter {key}: value {value}, version {version}, but {want} increments were \
                 acknowledged"
            ));
        }
    }
}

/// The shared export layout names each exported own ref with what was exported last, and it
/// imports whole into a fresh store of the same backends.
fn check_exported_layout(
    combination: &Combination,
    inputs: &Inputs,
    models: &BTreeMap<String, OwnModel>,
    findings: &mut Findings,
) {
    let layout = &inputs.export_layout;
    let exported: usize = models.values().map(|m| m.exported.len()).sum();
    if exported == 0 {
        return;
    }
    let Some(entries) = findings.check("reading the exported layout", index_entries(layout)) else {
        return;
    };
    for (thread, model) in models {
        for (name, digest) in &model.exported {
            let ref_name = own_ref(thread, *name);
            match entries.get(&ref_name) {
                Some(found) if found == digest => {}
                found => findings.note(format!(
                    "exported layout: {ref_name} names {found:?}, exported last as {digest}"
                )),
            }
        }
    }
    let Some(fresh) = findings.check(
        "a fresh store for the exported layout",
        tempfile::Builder::new()
            .prefix("oci-store-torture-reimport-")
            .tempdir(),
    ) else {
        return;
    };
    let Some(store) = findings.check("opening the fresh store", combination.open(fresh.path()))
    else {
        return;
    };
    let oci = OciStore::new(&store);
    let options = ImportOptions {
        all: true,
        ..ImportOptions::default()
    };
    if findings
        .check(
            "importing the exported layout",
            oci.import_layout(layout, &options),
        )
        .is_some()
    {
        for name in entries.keys() {
            match oci.check(name, true) {
                Ok(report) if report.is_complete() => {}
                other => findings.note(format!("exported layout: {name} re-imported: {other:?}")),
            }
        }
    }
}

fn index_entries(layout: &Path) -> Result<BTreeMap<String, String>, String> {
    let path = layout.join("index.json");
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let index: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut entries = BTreeMap::new();
    for entry in index["manifests"].as_array().cloned().unwrap_or_default() {
        let name = entry["annotations"]["org.opencontainers.image.ref.name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if entries
            .insert(
                name.clone(),
                entry["digest"].as_str().unwrap_or_default().to_string(),
            )
            .is_some()
        {
            return Err(format!("{}: {name:?} is named twice", path.display()));
        }
    }
    Ok(entries)
}
