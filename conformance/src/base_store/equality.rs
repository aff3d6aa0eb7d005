//! Invariant 5: no result depends on the backend combination. A seeded sequence of operations
//! runs against the store and against a plain in-memory model of the base store's contract;
//! every result and the final state must agree, so every combination agrees with every other.

use std::collections::BTreeMap;

use oci_store::store::{Holder, StoreError, WriteOptions};
use oci_store::traits::{Algorithm, Digest, DigestPrefix, KvEntry, KvKey, StorageError};
use oci_store::Store;

use super::StoreFixture;
use crate::check::TestResult;
use crate::content::{content, SeededRandom};
use crate::index::{LAYER, LAYER_GZIP, MANIFEST};
use crate::{ensure_eq, Context};

const MEDIA_TYPES: [&str; 3] = [LAYER, LAYER_GZIP, MANIFEST];
const EXTRA_TYPES: [&str; 3] = ["last-used", "owner.oci", "owner.appc"];
/// Holders the workload releases as: the base store, and the two flavours whose marks
/// [`EXTRA_TYPES`] sets.
const HOLDERS: [Holder; 3] = [
    Holder::BASE,
    Holder::flavour("oci"),
    Holder::flavour("appc"),
];
const DATA_TYPES: [&str; 2] = ["ref", "cache"];

struct Item {
    bytes: Vec<u8>,
    digest: Digest,
    media_type: &'static str,
}

fn items() -> Vec<Item> {
    (0..12u64)
        .map(|n| {
            let bytes = content(500 + n, 100 + n as usize * 1111);
            let algorithm = Algorithm::ALL[n as usize % 3 / 2];
            Item {
                digest: Digest::of_bytes(algorithm, &bytes),
                bytes,
                media_type: MEDIA_TYPES[n as usize % 3],
            }
        })
        .collect()
}

/// What resolving a reference gives, backend-independently.
#[derive(Debug, PartialEq, Eq)]
enum Resolved {
    Found(Digest),
    NotFound,
    Ambiguous(Vec<Digest>),
    Refused,
}

#[derive(Default)]
struct Model {
    /// digest -> (size, media type)
    blobs: BTreeMap<Digest, (u64, String)>,
    extra: BTreeMap<(Digest, String), Vec<u8>>,
    kv: BTreeMap<(String, String), KvEntry>,
}

impl Model {
    /// A write through the base store: the blob, and the base store's hold on it (also when
    /// the content was there already).
    fn write(&mut self, item: &Item) {
        self.blobs
            .entry(item.digest.clone())
            .or_insert((item.bytes.len() as u64, item.media_type.to_string()));
        self.extra
            .insert((item.digest.clone(), Holder::BASE.mark()), Vec::new());
    }

    /// Drops `holder`'s mark; deletes the blob if nothing holds it any more.
    fn release(&mut self, digest: &Digest, holder: &Holder) -> bool {
        self.extra.remove(&(digest.clone(), holder.mark()));
        self.delete_if_unreferenced(digest)
    }

    /// Removes an entry; the blob it referenced goes with it if the entry was its last holder.
    fn remove_data(&mut self, key: &(String, String)) -> bool {
        match self.kv.remove(key) {
            Some(entry) => {
                if let Some(digest) = entry.blob {
                    self.delete_if_unreferenced(&digest);
                }
                true
            }
            None => false,
        }
    }

    fn delete(&mut self, digest: &Digest) -> bool {
        let was = self.blobs.remove(digest).is_some();
        self.extra.retain(|(d, _), _| d != digest);
        self.kv.retain(|_, e| e.blob.as_ref() != Some(digest));
        was
    }

    fn set_extra(&mut self, digest: &Digest, data_type: &str, value: &[u8]) -> bool {
        if !self.blobs.contains_key(digest) {
            return false;
        }
        self.extra
            .insert((digest.clone(), data_type.to_string()), value.to_vec());
        true
    }

    fn put(&mut self, key: (String, String), value: &[u8], blob: Option<&Digest>) -> Option<u64> {
        if blob.is_some_and(|d| !self.blobs.contains_key(d)) {
            return None;
        }
        let version = self.kv.get(&key).map_or(1, |e| e.version + 1);
        let replaced = self.kv.insert(
            key,
            KvEntry {
                value: value.to_vec(),
                blob: blob.cloned(),
                version,
            },
        );
        // The blob the entry referenced before loses a holder; it goes if that was the last.
        if let Some(old) = replaced
            .and_then(|e| e.blob)
            .filter(|old| Some(old) != blob)
        {
            self.delete_if_unreferenced(&old);
        }
        Some(version)
    }

    fn version(&self, key: &(String, String)) -> Option<u64> {
        self.kv.get(key).map(|e| e.version)
    }

    fn delete_if_unreferenced(&mut self, digest: &Digest) -> bool {
        if !self.blobs.contains_key(digest) {
            return false;
        }
        let owned = self
            .extra
            .keys()
            .any(|(d, t)| d == digest && Holder::is_mark(t));
        let referenced = self.kv.values().any(|e| e.blob.as_ref() == Some(digest));
        if owned || referenced {
            return false;
        }
        self.delete(digest)
    }

    fn resolve(&self, text: &str) -> Resolved {
        let Ok(prefix) = DigestPrefix::parse(text) else {
            return Resolved::Refused;
        };
        let matches: Vec<Digest> = self
            .blobs
            .keys()
            .filter(|d| prefix.matches(d))
            .cloned()
            .collect();
        match matches.len() {
            0 => Resolved::NotFound,
            1 => Resolved::Found(matches[0].clone()),
            _ => Resolved::Ambiguous(matches),
        }
    }
}

fn resolve(store: &Store, text: &str) -> Result<Resolved, String> {
    match store.resolve(text) {
        Ok(digest) => Ok(Resolved::Found(digest)),
        Err(StoreError::NotFound(_)) => Ok(Resolved::NotFound),
        Err(StoreError::Ambiguous { candidates, .. }) => Ok(Resolved::Ambiguous(candidates)),
        Err(StoreError::Storage(StorageError::Digest(_))) => Ok(Resolved::Refused),
        Err(other) => Err(format!("resolve({text}): {other}")),
    }
}

/// Runs one seeded operation on both; fails as soon as a result differs.
fn step(store: &Store, model: &mut Model, items: &[Item], random: &mut SeededRandom) -> TestResult {
    let item = &items[random.below(items.len() as u64) as usize];
    let digest = &item.digest;
    let choice = random.below(100);
    match choice {
        0..=29 => {
            let options = WriteOptions {
                media_type: Some(item.media_type.to_string()),
                expected_digest: (digest.algorithm() == Algorithm::Sha512).then(|| digest.clone()),
                expected_size: None,
                ..WriteOptions::default()
            };
            let record = store.write_bytes(&item.bytes, &options).context("write")?;
            model.write(item);
            let (size, media_type) = model.blobs[digest].clone();
            ensure_eq!(
                (record.digest, record.size, record.media_type),
                (digest.clone(), size, media_type),
                "record returned by write"
            );
        }
        30..=39 => {
            let deleted = store.delete(digest).context("delete")?;
            ensure_eq!(deleted, model.delete(digest), "delete({digest})");
        }
        40..=54 => {
            let data_type = EXTRA_TYPES[random.below(3) as usize];
            let value = random.below(1000).to_string().into_bytes();
            let stored = match store.set_extra(digest, data_type, &value) {
                Ok(()) => true,
                Err(StoreError::MissingBlob { .. }) => false,
                Err(other) => return Err(format!("set_extra: {other}")),
            };
            ensure_eq!(
                stored,
                model.set_extra(digest, data_type, &value),
                "set_extra on {digest}"
            );
        }
        55..=74 => {
            let data_type = DATA_TYPES[random.below(2) as usize];
            let key = format!("key-{}", random.below(6));
            let value = random.below(1000).to_string().into_bytes();
            let blob = (random.below(4) > 0).then_some(digest);
            let model_key = (data_type.to_string(), key.clone());
            let (result, model_result) = if random.below(2) == 0 {
                (
                    store.put_data(data_type, &key, &value, blob),
                    model.put(model_key, &value, blob),
                )
            } else {
                // Half of the time with the right version, else with a stale or absent one.
                let current = model.version(&model_key);
                let expected = match random.below(3) {
                    0 => current.map(|v| v + 1).or(Some(1)),
                    1 => None,
                    _ => current,
                };
                let result = store.compare_and_set_data(data_type, &key, &value, blob, expected);
                let model_result = if expected == current {
                    model.put(model_key, &value, blob)
                } else {
                    None
                };
                (result, model_result)
            };
            let version = match result {
                Ok(version) => Some(version),
                Err(
                    StoreError::MissingBlob { .. }
                    | StoreError::Storage(StorageError::VersionConflict { .. }),
                ) => None,
                Err(other) => return Err(format!("put {data_type}/{key}: {other}")),
            };
            ensure_eq!(
                version,
                model_result,
                "version written to {data_type}/{key}"
            );
        }
        75..=84 => {
            let deleted = store
                .delete_if_unreferenced(digest)
                .context("delete_if_unreferenced")?;
            ensure_eq!(
                deleted,
                model.delete_if_unreferenced(digest),
                "delete_if_unreferenced"
            );
        }
        85..=89 => {
            let data_type = DATA_TYPES[random.below(2) as usize];
            let key = format!("key-{}", random.below(6));
            let removed = store.remove_data(data_type, &key).context("remove_data")?;
            let model_removed = model.remove_data(&(data_type.to_string(), key));
            ensure_eq!(removed, model_removed, "remove_data");
        }
        90..=94 => {
            let holder = &HOLDERS[random.below(3) as usize];
            let deleted = store
                .release(digest, holder)
                .context("release")?
                .is_deleted();
            ensure_eq!(
                deleted,
                model.release(digest, holder),
                "release({digest}, {holder})"
            );
        }
        _ => {
            let text = match random.below(4) {
                0 => digest.hex()[..4].to_string(),
                1 => format!("{}:{}", digest.algorithm(), &digest.hex()[..6]),
                2 => digest.dashed(),
                _ => digest.hex()[..3].to_string(),
            };
            ensure_eq!(
                resolve(store, &text)?,
                model.resolve(&text),
                "resolve({text})"
            );
        }
    }
    Ok(())
}

/// Compares everything observable with the model.
fn compare_state(store: &Store, model: &Model, items: &[Item]) -> TestResult {
    let listed: Vec<(Digest, u64, String)> = store
        .list(None)
        .context("list")?
        .into_iter()
        .map(|r| (r.digest, r.size, r.media_type))
        .collect();
    let modelled: Vec<(Digest, u64, String)> = model
        .blobs
        .iter()
        .map(|(d, (s, m))| (d.clone(), *s, m.clone()))
        .collect();
    ensure_eq!(listed, modelled, "list()");
    for media_type in MEDIA_TYPES {
        let listed: Vec<Digest> = store
            .list(Some(media_type))
            .context("list by media type")?
            .into_iter()
            .map(|r| r.digest)
            .collect();
        let modelled: Vec<Digest> = model
            .blobs
            .iter()
            .filter(|(_, (_, m))| m == media_type)
            .map(|(d, _)| d.clone())
            .collect();
        ensure_eq!(listed, modelled, "list({media_type})");
    }
    for item in items {
        let digest = &item.digest;
        let types: Vec<String> = model
            .extra
            .keys()
            .filter(|(d, _)| d == digest)
            .map(|(_, t)| t.clone())
            .collect();
        ensure_eq!(
            store.extra_types(digest).context("extra_types")?,
            types,
            "types of {digest}"
        );
        for data_type in EXTRA_TYPES {
            ensure_eq!(
                store.get_extra(digest, data_type).context("get_extra")?,
                model
                    .extra
                    .get(&(digest.clone(), data_type.to_string()))
                    .cloned(),
                "extra {data_type} of {digest}"
            );
        }
        let referencing: Vec<KvKey> = model
            .kv
            .iter()
            .filter(|(_, e)| e.blob.as_ref() == Some(digest))
            .map(|((t, k), _)| KvKey {
                data_type: t.clone(),
                key: k.clone(),
            })
            .collect();
        ensure_eq!(
            store.data_referencing(digest).context("data_referencing")?,
            referencing,
            "entries referencing {digest}"
        );
        for text in [digest.hex()[..4].to_string(), digest.hex()[..8].to_string()] {
            ensure_eq!(
                resolve(store, &text)?,
                model.resolve(&text),
                "resolve({text})"
            );
        }
    }
    for data_type in DATA_TYPES {
        let modelled: Vec<(String, KvEntry)> = model
            .kv
            .iter()
            .filter(|((t, _), _)| t == data_type)
            .map(|((_, k), e)| (k.clone(), e.clone()))
            .collect();
        ensure_eq!(
            store.list_data(data_type, "").context("list_data")?,
            modelled,
            "{data_type}"
        );
    }
    let stats = store.stats().context("stats")?;
    ensure_eq!(stats.blobs, model.blobs.len() as u64, "stats().blobs");
    ensure_eq!(
        stats.bytes,
        model.blobs.values().map(|(s, _)| s).sum::<u64>(),
        "stats().bytes"
    );
    let fsck = store.fsck(Default::default()).context("fsck")?;
    ensure_eq!(fsck.problems, Vec::new(), "fsck problems");
    Ok(())
}

pub fn results_match_reference_model(fixture: &StoreFixture) -> TestResult {
    let store = fixture.open()?;
    let items = items();
    let mut model = Model::default();
    let mut random = SeededRandom::new(5);
    for round in 0..4 {
        for operation in 0..60 {
            step(&store, &mut model, &items, &mut random)
                .map_err(|e| format!("round {round}, operation {operation}: {e}"))?;
        }
        compare_state(&store, &model, &items).map_err(|e| format!("after round {round}: {e}"))?;
    }
    Ok(())
}
