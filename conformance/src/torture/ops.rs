//! Running one [`Op`] against the store and turning the answer into an [`Outcome`]. Nothing
//! here decides whether the answer was right: the checker does, from every thread's log.

use std::path::PathBuf;
use std::time::Duration;

use oci_store::store::{Holder, StoreError, WriteOptions};
use oci_store::stores::appc::{AppcError, AppcGcOptions, AppcStore, ImportOptions as AciOptions};
use oci_store::stores::oci::{ImportOptions, OciError, OciStore, Platform, UnpackOptions};
use oci_store::traits::{Digest, StorageError};
use oci_store::Store;

use super::event::{AppcImage, EntryView, ErrorClass, LayoutChoice, Observed, Op, Outcome};
use super::inputs::{
    own_aci, own_blob, own_kv_key, own_layout_ref, own_ref, shared_ref, shared_ref_pattern, Inputs,
    COUNTER_TYPE, NOTE_TYPE, OWN_KV_TYPE, OWN_SLOTS, SHARED_KV_TYPE,
};
use super::layouts::write_layout;
use crate::appc::support::Appc;
use crate::content::hash_reader;
use crate::oci::support::Oci;
use crate::workload::{contents, WorkloadContent};

/// How long the flavour GCs of a torture run wait for running mutations before they give up
/// (`GcLockTimeout`, classed as expected contention).
pub const GC_LOCK_WAIT: Duration = Duration::from_secs(20);

/// What one thread needs to run operations: the store, its inputs, and its own contents.
pub struct ThreadContext<'s> {
    pub thread: String,
    pub store: &'s Store,
    pub inputs: &'s Inputs,
    pub own_layout: PathBuf,
    pub own_image: Digest,
    pub own_acis: Vec<(Vec<u8>, String)>,
    /// The gzip layer only the own image has, and its digest.
    pub own_layer: (Vec<u8>, Digest),
    own_blobs: Vec<(Vec<u8>, Digest)>,
}

impl<'s> ThreadContext<'s> {
    /// Builds the thread's own inputs: its layout (under the scratch directory), ACIs and blob
    /// contents.
    pub fn new(thread: &str, store: &'s Store, inputs: &'s Inputs) -> Result<Self, String> {
        let own_layout = inputs.scratch.join(format!("layout-{thread}"));
        remove_path(&own_layout);
        let (own_image, own_layer) = write_layout(&own_layout, &own_layout_ref(thread), false)?;
        let own_layer_digest = Digest::of_bytes(oci_store::traits::Algorithm::Sha256, &own_layer);
        let own_acis = (0..super::inputs::OWN_ACIS)
            .map(|index| {
                let tar = own_aci(thread, index);
                let id = crate::appc::support::image_id_of(&tar);
                (tar, id)
            })
            .collect();
        let own_blobs = (0..OWN_SLOTS)
            .map(|slot| {
                let bytes = own_blob(thread, slot);
                let digest = Digest::of_bytes(oci_store::traits::Algorithm::Sha256, &bytes);
                (bytes, digest)
            })
            .collect();
        Ok(ThreadContext {
            thread: thread.to_string(),
            store,
            inputs,
            own_layout,
            own_image,
            own_acis,
            own_layer: (own_layer, own_layer_digest),
            own_blobs,
        })
    }

    pub fn begin(&self) -> Op {
        Op::Begin {
            own_image: self.own_image.to_string(),
            own_acis: self.own_acis.iter().map(|(_, id)| id.clone()).collect(),
            own_layer: self.own_layer.1.to_string(),
            own_layer_size: self.own_layer.0.len() as u64,
        }
    }

    fn oci(&self) -> Oci<'s> {
        OciStore::new(self.store).with_gc_lock_wait(GC_LOCK_WAIT)
    }

    fn appc(&self) -> Appc<'s> {
        AppcStore::new(self.store).with_gc_lock_wait(GC_LOCK_WAIT)
    }

    fn shared_item(&self, item: usize) -> &'static WorkloadContent {
        &contents(false)[item]
    }

    fn appc_key(&self, image: AppcImage) -> String {
        match image {
            AppcImage::Own(index) => self.own_acis[index].1.clone(),
            AppcImage::Shared(version) => self.inputs.acis[version].id.clone(),
        }
    }

    /// A path under the scratch directory for this thread's `what` (removed first).
    fn scratch_path(&self, what: &str) -> PathBuf {
        let path = self.inputs.scratch.join(format!("{}-{what}", self.thread));
        remove_path(&path);
        path
    }

    /// Runs `op`; every error becomes a classed failure.
    pub fn execute(&self, op: &Op) -> Outcome {
        match self.run(op) {
            Ok(observed) => Outcome::Done(observed),
            Err(failure) => failure,
        }
    }

    fn run(&self, op: &Op) -> Result<Observed, Outcome> {
        let store = self.store;
        match op {
            Op::Begin { .. } => Ok(Observed::Nothing),
            Op::SharedWrite { item } => {
                let item = self.shared_item(*item);
                write_blob(store, &item.bytes, &item.digest, item.media_type)
            }
            Op::SharedRead { item } => {
                let item = self.shared_item(*item);
                read_blob(store, &item.digest, item.bytes.len() as u64)
            }
            Op::SharedDelete { item } => store
                .delete(&self.shared_item(*item).digest)
                .map(Observed::Flag)
                .map_err(store_failure),
            Op::SharedRelease { item } => store
                .release(&self.shared_item(*item).digest, &Holder::BASE)
                .map(|released| Observed::Flag(released.is_deleted()))
                .map_err(store_failure),
            Op::CounterIncrement { counter } => increment(store, *counter),
            Op::OwnWrite { slot } => {
                let (bytes, digest) = &self.own_blobs[*slot];
                write_blob(store, bytes, digest, "application/octet-stream")
            }
            Op::OwnRead { slot } => {
                let (bytes, digest) = &self.own_blobs[*slot];
                read_blob(store, digest, bytes.len() as u64)
            }
            Op::OwnRelease { slot } => store
                .release(&self.own_blobs[*slot].1, &Holder::BASE)
                .map(|released| Observed::Flag(released.is_deleted()))
                .map_err(store_failure),
            Op::OwnDelete { slot } => store
                .delete(&self.own_blobs[*slot].1)
                .map(Observed::Flag)
                .map_err(store_failure),
            Op::KvPut { key, value, blob } => store
                .put_data(
                    OWN_KV_TYPE,
                    &own_kv_key(&self.thread, *key),
                    value.as_bytes(),
                    blob.map(|slot| &self.own_blobs[slot].1),
                )
                .map(Observed::Version)
                .map_err(store_failure),
            Op::KvCompareAndSet {
                key,
                value,
                expected,
            } => store
                .compare_and_set_data(
                    OWN_KV_TYPE,
                    &own_kv_key(&self.thread, *key),
                    value.as_bytes(),
                    None,
                    *expected,
                )
                .map(Observed::Version)
                .map_err(store_failure),
            Op::KvRemove { key } => store
                .remove_data(OWN_KV_TYPE, &own_kv_key(&self.thread, *key))
                .map(Observed::Flag)
                .map_err(store_failure),
            Op::KvGet { key } => {
                let entry = store
                    .get_data(OWN_KV_TYPE, &own_kv_key(&self.thread, *key))
                    .map_err(store_failure)?;
                Ok(Observed::Entry(entry.map(|entry| {
                    EntryView {
                        value: String::from_utf8_lossy(&entry.value).into_owned(),
                        version: entry.version,
                        blob: entry
                            .blob
                            .and_then(|d| self.own_blobs.iter().position(|(_, own)| *own == d)),
                    }
                })))
            }
            Op::SharedKvPut { key, item } => {
                let digest = &self.shared_item(*item).digest;
                store
                    .put_data(
                        SHARED_KV_TYPE,
                        &format!("s{key}"),
                        digest.as_str().as_bytes(),
                        Some(digest),
                    )
                    .map(|_| Observed::Nothing)
                    .map_err(store_failure)
            }
            Op::SharedKvRemove { key } => store
                .remove_data(SHARED_KV_TYPE, &format!("s{key}"))
                .map(|_| Observed::Nothing)
                .map_err(store_failure),
            Op::AciBlobPut { image } => {
                let tar = &self.own_acis[*image].0;
                let digest = Digest::of_bytes(oci_store::traits::Algorithm::Sha512, tar);
                write_blob(store, tar, &digest, "application/vnd.appc.aci+tar")
            }
            Op::AciBlobRelease { image } => {
                let tar = &self.own_acis[*image].0;
                let digest = Digest::of_bytes(oci_store::traits::Algorithm::Sha512, tar);
                store
                    .release(&digest, &Holder::BASE)
                    .map(|released| Observed::Flag(released.is_deleted()))
                    .map_err(store_failure)
            }
            Op::LayerBlobPut => {
                let (bytes, digest) = &self.own_layer;
                write_blob(
                    store,
                    bytes,
                    digest,
                    "application/vnd.oci.image.layer.v1.tar+gzip",
                )
            }
            Op::LayerBlobRelease => store
                .release(&self.own_layer.1, &Holder::BASE)
                .map(|released| Observed::Flag(released.is_deleted()))
                .map_err(store_failure),
            Op::LayerBlobRead => {
                let (bytes, digest) = &self.own_layer;
                read_blob(store, digest, bytes.len() as u64)
            }
            Op::ExtraSet { slot, value } => store
                .set_extra(&self.own_blobs[*slot].1, NOTE_TYPE, value.as_bytes())
                .map(|()| Observed::Nothing)
                .map_err(store_failure),
            Op::ExtraGet { slot } => store
                .get_extra(&self.own_blobs[*slot].1, NOTE_TYPE)
                .map(|v| Observed::Extra(v.map(|b| String::from_utf8_lossy(&b).into_owned())))
                .map_err(store_failure),
            Op::OciImport { layout, name } => {
                let (source, sref) = match layout {
                    LayoutChoice::Own => (self.own_layout.clone(), own_layout_ref(&self.thread)),
                    LayoutChoice::Shared(n) => {
                        let shared = &self.inputs.layouts[*n];
                        (shared.source.clone(), shared.ref_name.clone())
                    }
                };
                self.import(source, sref, own_ref(&self.thread, *name))
            }
            Op::SharedOciImport { layout, name } => {
                let shared = &self.inputs.layouts[*layout];
                self.import(
                    shared.source.clone(),
                    shared.ref_name.clone(),
                    shared_ref(*name),
                )
            }
            Op::OciTag { from, to } => self
                .oci()
                .tag(&own_ref(&self.thread, *from), &own_ref(&self.thread, *to))
                .map(|()| Observed::Nothing)
                .map_err(oci_failure),
            Op::OciTagDigest { to } => self
                .oci()
                .tag(self.own_image.as_str(), &own_ref(&self.thread, *to))
                .map(|()| Observed::Nothing)
                .map_err(oci_failure),
            Op::OciRemoveRef { name } => self
                .oci()
                .remove_ref(&own_ref(&self.thread, *name))
                .map(|()| Observed::Nothing)
                .map_err(oci_failure),
            Op::SharedOciRemoveRef { name } => self
                .oci()
                .remove_ref(&shared_ref(*name))
                .map(|()| Observed::Nothing)
                .map_err(oci_failure),
            Op::OciCheck { name } => self.check(&own_ref(&self.thread, *name)),
            Op::SharedOciCheck { name } => self.check(&shared_ref(*name)),
            Op::OciExport { name } => {
                let name = own_ref(&self.thread, *name);
                self.oci()
                    .export(&name, None, &self.inputs.export_layout, false)
                    .map(|report| Observed::Text(report.digest.to_string()))
                    .map_err(oci_failure)
            }
            Op::OciUnpack { name } => {
                let target = self.scratch_path("unpack");
                let options = UnpackOptions {
                    platform: Some(Platform::parse("linux/amd64").expect("a valid platform")),
                    rootless: true,
                };
                let result = self
                    .oci()
                    .unpack(&own_ref(&self.thread, *name), &target, &options)
                    .map(|report| Observed::Text(report.manifest.to_string()))
                    .map_err(oci_failure);
                remove_path(&target);
                result
            }
            Op::LeaseCreate => self
                .oci()
                .lease_create(
                    Duration::from_secs(24 * 3600),
                    std::slice::from_ref(&self.own_image),
                )
                .map(|lease| Observed::Text(lease.id))
                .map_err(oci_failure),
            Op::LeaseRemove { id } => self
                .oci()
                .lease_remove(id)
                .map(|()| Observed::Nothing)
                .map_err(oci_failure),
            Op::OciGc => self
                .oci()
                .gc(false)
                .map(|report| {
                    Observed::Swept(report.swept.iter().map(|s| s.digest.to_string()).collect())
                })
                .map_err(oci_failure),
            // Every shared ref may go (none is pinned, none counts as recent); the own refs,
            // which the thread's model tracks, are outside the filter.
            Op::OciPrune => self
                .oci()
                .prune(&oci_store::oci::PruneOptions {
                    policy: oci_store::retention::RetentionPolicy {
                        unused_for: Some(Duration::ZERO),
                        filters: vec![shared_ref_pattern()],
                        ..Default::default()
                    },
                    ..Default::default()
                })
                .map(|report| {
                    Observed::Swept(
                        report
                            .gc
                            .iter()
                            .flat_map(|gc| &gc.swept)
                            .map(|s| s.digest.to_string())
                            .collect(),
                    )
                })
                .map_err(oci_failure),
            Op::AppcImport { image } => {
                let result = match image {
                    AppcImage::Own(index) => self.appc().import_reader(
                        &self.own_acis[*index].0[..],
                        "own image",
                        &AciOptions::default(),
                    ),
                    AppcImage::Shared(version) => self
                        .appc()
                        .import_file(&self.inputs.acis[*version].path, &AciOptions::default()),
                };
                result
                    .map(|report| Observed::Text(report.id))
                    .map_err(appc_failure)
            }
            Op::AppcRemove { image } => self
                .appc()
                .remove(&self.appc_key(*image))
                .map(|report| Observed::Flag(report.deleted))
                .map_err(appc_failure),
            Op::AppcRender { image } => {
                let target = self.scratch_path("render");
                let result = self
                    .appc()
                    .render(&self.appc_key(*image), Some(&target))
                    .map(|report| Observed::Text(report.image))
                    .map_err(appc_failure);
                remove_path(&target);
                result
            }
            Op::AppcExport { image } => {
                let target = self.scratch_path("export.aci");
                let result = self
                    .appc()
                    .export(&self.appc_key(*image), &target, false)
                    .map(|_| Observed::Nothing)
                    .map_err(appc_failure);
                remove_path(&target);
                result
            }
            Op::AppcGc => {
                // Everything is old enough to go, but the most recently used image of each
                // name stays: own images have a name each (kept), the shared versions share one.
                let options = AppcGcOptions {
                    grace_period_ms: 0,
                    keep_per_name: Some(1),
                    ..AppcGcOptions::default()
                };
                self.appc()
                    .gc(&options)
                    .map(|report| {
                        Observed::Swept(report.removed.into_iter().map(|r| r.id).collect())
                    })
                    .map_err(appc_failure)
            }
            Op::BaseGc => store
                .gc(Default::default())
                .map(|_| Observed::Nothing)
                .map_err(store_failure),
            Op::Fsck { repair } => store
                .fsck(oci_store::store::FsckOptions {
                    repair: *repair,
                    ..Default::default()
                })
                .map(|report| Observed::Problems(describe_problems(&report.problems)))
                .map_err(store_failure),
        }
    }

    fn import(&self, source: PathBuf, sref: String, dref: String) -> Result<Observed, Outcome> {
        let options = ImportOptions {
            sref: Some(sref),
            dref: Some(dref),
            ..ImportOptions::default()
        };
        let report = self
            .oci()
            .import_layout(&source, &options)
            .map_err(oci_failure)?;
        match report.refs.first() {
            Some(imported) => Ok(Observed::Text(imported.digest.to_string())),
            None => Err(Outcome::failed(
                ErrorClass::Other,
                format!("importing {} made no ref", source.display()),
            )),
        }
    }

    fn check(&self, name: &str) -> Result<Observed, Outcome> {
        let report = self.oci().check(name, true).map_err(oci_failure)?;
        if report.is_complete() {
            Ok(Observed::Flag(true))
        } else {
            Err(Outcome::failed(
                ErrorClass::Other,
                format!("ref {name} is not complete: {report:?}"),
            ))
        }
    }
}

fn write_blob(
    store: &Store,
    bytes: &[u8],
    digest: &Digest,
    media_type: &str,
) -> Result<Observed, Outcome> {
    let options = WriteOptions {
        media_type: Some(media_type.to_string()),
        expected_digest: Some(digest.clone()),
        expected_size: Some(bytes.len() as u64),
        ..WriteOptions::default()
    };
    let record = store.write_bytes(bytes, &options).map_err(store_failure)?;
    if record.digest != *digest || record.size != bytes.len() as u64 {
        return Err(Outcome::failed(
            ErrorClass::WrongContent,
            format!("write of {digest} returned the record {record:?}"),
        ));
    }
    Ok(Observed::Nothing)
}

/// Reads and rehashes a blob: found and right is `Flag(true)`; absent is a `NotFound` failure.
fn read_blob(store: &Store, digest: &Digest, size: u64) -> Result<Observed, Outcome> {
    let reader = store.read(digest).map_err(store_failure)?;
    match hash_reader(reader, digest.algorithm()) {
        Ok((read, read_size)) if read == *digest && read_size == size => Ok(Observed::Flag(true)),
        Ok((read, read_size)) => Err(Outcome::failed(
            ErrorClass::WrongContent,
            format!("{digest} read back as {read} ({read_size} bytes, want {size})"),
        )),
        Err(error) if is_not_found_io(&error) => Err(Outcome::failed(
            ErrorClass::NotFound,
            format!("{digest} went while it was read: {error}"),
        )),
        Err(error) => Err(Outcome::failed(
            ErrorClass::Other,
            format!("reading {digest}: {error}"),
        )),
    }
}

fn increment(store: &Store, counter: usize) -> Result<Observed, Outcome> {
    let key = format!("c{counter}");
    let current = store.get_data(COUNTER_TYPE, &key).map_err(store_failure)?;
    let (value, version) = match &current {
        Some(entry) => (
            std::str::from_utf8(&entry.value)
                .ok()
                .and_then(|t| t.parse::<u64>().ok())
                .ok_or_else(|| {
                    Outcome::failed(
                        ErrorClass::Other,
                        format!("counter {key} holds {:?}", entry.value),
                    )
                })?,
            Some(entry.version),
        ),
        None => (0, None),
    };
    std::thread::yield_now();
    store
        .compare_and_set_data(
            COUNTER_TYPE,
            &key,
            (value + 1).to_string().as_bytes(),
            None,
            version,
        )
        .map(Observed::Version)
        .map_err(store_failure)
}

fn is_not_found_io(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::NotFound
        || error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<StorageError>())
            .is_some_and(|e| matches!(e, StorageError::BlobNotFound(_)))
}

pub fn store_error_class(error: &StoreError) -> ErrorClass {
    match error {
        StoreError::NotFound(_)
        | StoreError::EntryNotFound { .. }
        | StoreError::MissingBlob { .. }
        | StoreError::Storage(StorageError::BlobNotFound(_)) => ErrorClass::NotFound,
        StoreError::Storage(StorageError::VersionConflict { .. }) => ErrorClass::VersionConflict,
        StoreError::FlavourLockTimeout { .. } => ErrorClass::LockTimeout,
        StoreError::Io(io) if is_not_found_io(io.io_error()) => ErrorClass::NotFound,
        _ => ErrorClass::Other,
    }
}

fn store_failure(error: StoreError) -> Outcome {
    Outcome::failed(store_error_class(&error), error_chain(&error))
}

fn oci_failure(error: OciError) -> Outcome {
    let class = match &error {
        OciError::Store(inner) => store_error_class(inner),
        OciError::RefNotFound(_) | OciError::MissingBlob { .. } | OciError::LeaseNotFound(_) => {
            ErrorClass::NotFound
        }
        OciError::GcLockTimeout { .. } => ErrorClass::LockTimeout,
        _ => ErrorClass::Other,
    };
    Outcome::failed(class, error_chain(&error))
}

fn appc_failure(error: AppcError) -> Outcome {
    let class = match &error {
        AppcError::Store(inner) => store_error_class(inner),
        AppcError::ImageNotFound(_) => ErrorClass::NotFound,
        _ => ErrorClass::Other,
    };
    Outcome::failed(class, error_chain(&error))
}

/// The error and its causes, as the CLI prints them.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

pub fn describe_problems(problems: &[oci_store::store::FsckProblem]) -> Vec<String> {
    problems
        .iter()
        .map(|problem| {
            serde_json::to_value(problem).ok().map_or_else(
                || format!("{problem:?}"),
                |json| {
                    format!(
                        "{} {}",
                        json["kind"].as_str().unwrap_or("?"),
                        json["digest"].as_str().unwrap_or("?")
                    )
                },
            )
        })
        .collect()
}

fn remove_path(path: &std::path::Path) {
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.is_dir() => {
            let _ = std::fs::remove_dir_all(path);
        }
        Ok(_) => {
            let _ = std::fs::remove_file(path);
        }
        Err(_) => {}
    }
}
