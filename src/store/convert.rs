//! Backend conversion: copy every record and blob of a store into other backends, verify, then
//! switch `store.json`. Runs under the exclusive store lock, so no other process has the store
//! open, and it upgrades the store's formats first (see `upgrade.rs`). `store.json` is replaced
//! atomically: an interruption before that leaves the store as it was, after it the store
//! reads from the target.
//!
//! Either way one side holds data nobody reads: the partial copy in the target backends, or
//! what was moved out of the source ones. So a conversion records itself in
//! `conversion.json` (source and target, written durably before anything is copied) and
//! removes the record only once it has cleared the side `store.json` does not name; the next
//! conversion first finishes an interrupted one from its record.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::config::StoreConfig;
use super::dump::dump_parts;
use super::error::{StoreError, StoreResult};
use super::fsutil::{hash_reader, write_atomically};
use super::locks::{LockGuard, LockMode, LockPaths};
use super::open::BackendChoice;
use crate::traits::registry::{
    find_backend, open_blob_store, open_extra_data, open_index, open_kv_store,
};
use crate::traits::{
    BlobStore, Digest, Expected, ExtraData, Index, KvStore, RecordPages, Role, SortedDigests,
    StorageResult,
};
use crate::util::fsync::fsync_dir;
use crate::util::io_context::{IoContext, IoResultExt};

#[derive(Clone, Debug, Serialize)]
pub struct ConversionReport {
    pub from: StoreConfig,
    pub to: StoreConfig,
    pub records: u64,
    pub blobs: u64,
    pub bytes: u64,
    pub extra_data: u64,
    pub data_entries: u64,
}

/// The four backends of a store, opened as trait objects.
struct Backends {
    blobs: Arc<dyn BlobStore>,
    index: Arc<dyn Index>,
    extra: Arc<dyn ExtraData>,
    kv: Arc<dyn KvStore>,
}

impl Backends {
    fn open(dir: &Path, config: &StoreConfig) -> StoreResult<Backends> {
        Ok(Backends {
            blobs: open_blob_store(config.backend(Role::Blobs), dir)?,
            index: open_index(config.backend(Role::Index), dir)?,
            extra: open_extra_data(config.backend(Role::Extra), dir)?,
            kv: open_kv_store(config.backend(Role::Kv), dir)?,
        })
    }
}

/// Converts the store in `dir` to the backends in `target` (roles left out keep theirs).
/// Fails with [`StoreError::Busy`] while another process (or this one) has the store open.
pub fn convert_store(dir: &Path, target: &BackendChoice) -> StoreResult<ConversionReport> {
    let from = StoreConfig::read(dir)?.ok_or_else(|| StoreError::Config {
        path: StoreConfig::path(dir),
        reason: "no store here to convert".to_string(),
    })?;
    for (role, name) in &target.roles {
        find_backend(name, *role)?;
    }
    let _exclusive = LockGuard::try_acquire(&LockPaths::store_lock(dir), LockMode::Exclusive)?
        .ok_or_else(|| StoreError::Busy {
            dir: dir.to_path_buf(),
            action: "backend conversion".to_string(),
        })?;
    // Convert from current formats only: upgrade first, under this same exclusive lock.
    super::upgrade::run(dir, &from)?;
    let from = StoreConfig::read(dir)?.ok_or_else(|| StoreError::Config {
        path: StoreConfig::path(dir),
        reason: "removed while the store was being upgraded".to_string(),
    })?;
    finish_interrupted(dir, &from)?;
    let mut to = from.clone();
    for (role, name) in &target.roles {
        to.set_backend(*role, name);
    }
    if to != from {
        PendingConversion {
            from: from.clone(),
            to: to.clone(),
        }
        .write(dir)?;
    }

    let source = Backends::open(dir, &from)?;
    let changed = |role: Role| from.backend(role) != to.backend(role);
    // Roles that stay reuse the source objects: the target is the same data.
    let destination = Backends {
        blobs: if changed(Role::Blobs) {
            open_blob_store(to.backend(Role::Blobs), dir)?
        } else {
            source.blobs.clone()
        },
        index: if changed(Role::Index) {
            open_index(to.backend(Role::Index), dir)?
        } else {
            source.index.clone()
        },
        extra: if changed(Role::Extra) {
            open_extra_data(to.backend(Role::Extra), dir)?
        } else {
            source.extra.clone()
        },
        kv: if changed(Role::Kv) {
            open_kv_store(to.backend(Role::Kv), dir)?
        } else {
            source.kv.clone()
        },
    };

    crate::crash_point!("convert.before-copy");
    let mut report = ConversionReport {
        from: from.clone(),
        to: to.clone(),
        records: 0,
        blobs: 0,
        bytes: 0,
        extra_data: 0,
        data_entries: 0,
    };
    // Content first, then metadata: the same order as any write.
    if changed(Role::Blobs) {
        clear_blobs(&*destination.blobs)?;
        crate::crash_point!("convert.after-clear-target");
        for digest in source.blobs.sorted_digests()? {
            let digest = digest?;
            report.bytes += copy_blob(&*source.blobs, &*destination.blobs, &digest)?;
            crate::crash_point!("convert.after-one-blob");
            report.blobs += 1;
        }
    }
    crate::crash_point!("convert.after-content");
    if changed(Role::Index) {
        clear_index(&*destination.index)?;
        // A page at a time, each in one transaction.
        let mut page = Vec::with_capacity(CONVERSION_PAGE);
        for record in RecordPages::new(&*source.index, CONVERSION_PAGE) {
            page.push(record?);
            if page.len() == CONVERSION_PAGE {
                destination.index.upsert_many(&page)?;
                report.records += page.len() as u64;
                page.clear();
            }
        }
        destination.index.upsert_many(&page)?;
        report.records += page.len() as u64;
    }
    crate::crash_point!("convert.after-index");
    if changed(Role::Extra) {
        clear_extra(&*destination.extra)?;
        for digest in source.extra.sorted_digests()? {
            let digest = digest?;
            for data_type in source.extra.types(&digest)? {
                if let Some(value) = source.extra.get(&digest, &data_type)? {
                    destination.extra.set(&digest, &data_type, &value)?;
                    report.extra_data += 1;
                }
            }
        }
    }
    crate::crash_point!("convert.after-extra");
    if changed(Role::Kv) {
        clear_kv(&*destination.kv)?;
        for data_type in source.kv.data_types()? {
            for (key, entry) in source.kv.list(&data_type, "")? {
                destination.kv.restore(&data_type, &key, &entry)?;
                report.data_entries += 1;
            }
        }
    }

    crate::crash_point!("convert.after-kv");
    verify_same(&source, &destination)?;
    crate::crash_point!("convert.before-store-json");
    to.write(dir)?;
    crate::crash_point!("convert.after-store-json");

    // The store now reads from the target; free what the old backends held.
    drop((source, destination));
    finish_interrupted(dir, &to)?;
    crate::crash_point!("convert.clear-source.done");
    Ok(report)
}

/// `conversion.json`: a conversion under way, from `from` to `to`.
#[derive(Serialize, Deserialize)]
struct PendingConversion {
    from: StoreConfig,
    to: StoreConfig,
}

impl PendingConversion {
    fn path(dir: &Path) -> std::path::PathBuf {
        dir.join("conversion.json")
    }

    fn read(dir: &Path) -> StoreResult<Option<PendingConversion>> {
        let path = Self::path(dir);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::from(IoContext::new("reading", &path, e))),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError::Config {
                path,
                reason: format!("not a conversion record: {e}"),
            })
    }

    /// Durably, before anything is copied: a crash after it leaves the record.
    fn write(&self, dir: &Path) -> StoreResult<()> {
        let json = serde_json::to_vec_pretty(self).expect("a conversion record serializes");
        write_atomically(&Self::path(dir), |file| file.write_all(&json))
    }
}

/// Finishes a conversion `conversion.json` records, given the backends `store.json` names
/// now (`current`): clears each role of the side it does not name (the target's partial copy
/// if the switch never happened, else the source's moved data), then removes the record.
/// Nothing reads that side: the caller holds the store lock exclusively.
fn finish_interrupted(dir: &Path, current: &StoreConfig) -> StoreResult<()> {
    let Some(pending) = PendingConversion::read(dir)? else {
        return Ok(());
    };
    let unread = if *current == pending.to {
        &pending.from
    } else {
        &pending.to
    };
    for role in Role::ALL {
        let name = unread.backend(role);
        if name == current.backend(role) {
            continue;
        }
        match role {
            Role::Blobs => clear_blobs(&*open_blob_store(name, dir)?)?,
            Role::Index => clear_index(&*open_index(name, dir)?)?,
            Role::Extra => clear_extra(&*open_extra_data(name, dir)?)?,
            Role::Kv => clear_kv(&*open_kv_store(name, dir)?)?,
        }
        crate::crash_point!("convert.clear-unread.after-role");
    }
    let path = PendingConversion::path(dir);
    std::fs::remove_file(&path).io_context("removing", &path)?;
    fsync_dir(dir).io_context("syncing directory", dir)?;
    Ok(())
}

/// Streams one blob across, verified against its digest by the destination writer.
fn copy_blob(
    source: &dyn BlobStore,
    destination: &dyn BlobStore,
    digest: &Digest,
) -> StoreResult<u64> {
    let size = source
        .size(digest)?
        .ok_or_else(|| StoreError::NotFound(digest.to_string()))?;
    let mut reader = source.open(digest)?;
    let mut writer = destination.writer(Expected {
        digest: Some(digest.clone()),
        size: Some(size),
        algorithm: None,
    })?;
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = reader
            .read(&mut buffer)
            .map_err(|e| IoContext::new("reading blob", digest.to_string(), e))?;
        if read == 0 {
            break;
        }
        writer
            .write_all(&buffer[..read])
            .map_err(|e| IoContext::new("writing blob", digest.to_string(), e))?;
    }
    writer.commit()?;
    Ok(size)
}

/// Compares full dumps of both sides and rehashes the destination's content.
fn verify_same(source: &Backends, destination: &Backends) -> StoreResult<()> {
    let before = dump_parts(&*source.blobs, &*source.index, &*source.extra, &*source.kv)?;
    let after = dump_parts(
        &*destination.blobs,
        &*destination.index,
        &*destination.extra,
        &*destination.kv,
    )?;
    let mismatch = |what: &str| {
        Err(StoreError::Invalid(format!(
            "conversion check failed: {what} differ after copying; store.json left unchanged"
        )))
    };
    if before.records != after.records {
        return mismatch("index records");
    }
    if before.extra_data != after.extra_data {
        return mismatch("extra data");
    }
    if before.data != after.data {
        return mismatch("key/value entries");
    }
    if before.content != after.content {
        return mismatch("stored blob digests");
    }
    if !Arc::ptr_eq(&source.blobs, &destination.blobs) {
        for digest in &after.content {
            let mut reader = destination.blobs.open(digest)?;
            let (actual, _) = hash_reader(digest.algorithm(), &mut reader)
                .map_err(|e| IoContext::new("reading blob", digest.to_string(), e))?;
            if &actual != digest {
                return mismatch(&format!("content of {digest}"));
            }
        }
    }
    Ok(())
}

/// Records moved (and cleared) per transaction.
const CONVERSION_PAGE: usize = 1000;

fn clear_blobs(blobs: &dyn BlobStore) -> StoreResult<()> {
    in_batches(blobs.sorted_digests()?, |batch| blobs.delete_many(batch))?;
    blobs.remove_dead_ingests()?;
    Ok(())
}

fn clear_index(index: &dyn Index) -> StoreResult<()> {
    loop {
        let page = index.page(None, CONVERSION_PAGE)?;
        if page.is_empty() {
            return Ok(());
        }
        let digests: Vec<Digest> = page.into_iter().map(|record| record.digest).collect();
        index.remove_many(&digests)?;
    }
}

fn clear_extra(extra: &dyn ExtraData) -> StoreResult<()> {
    in_batches(extra.sorted_digests()?, |batch| {
        extra.remove_all_many(batch)
    })
}

/// Hands `listing` to `clear` [`CONVERSION_PAGE`] digests at a time. Clearing what was listed
/// is safe while listing: a paged listing goes on after the last digest it gave.
fn in_batches(
    listing: SortedDigests<'_>,
    mut clear: impl FnMut(&[Digest]) -> StorageResult<u64>,
) -> StoreResult<()> {
    let mut batch = Vec::with_capacity(CONVERSION_PAGE);
    for digest in listing {
        batch.push(digest?);
        if batch.len() == CONVERSION_PAGE {
            clear(&batch)?;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        clear(&batch)?;
    }
    Ok(())
}

fn clear_kv(kv: &dyn KvStore) -> StoreResult<()> {
    for data_type in kv.data_types()? {
        for (key, _) in kv.list(&data_type, "")? {
            kv.remove(&data_type, &key)?;
        }
    }
    Ok(())
}
