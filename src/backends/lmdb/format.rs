//! The format version of an LMDB environment: `version` in its `format` database, a u32 in
//! big-endian order. Environments written before the record existed (they have the databases
//! but no record) are laid out as version 1; the store's upgrade records that under the
//! exclusive store lock, after a compacted copy of the environment into `backups/`.

use std::path::{Path, PathBuf};

use heed::types::Bytes;
use heed::{CommitOrAbort, Env, RwTxn, WithoutTls};

use super::environment::{format_status_of, HeedResultExt, SharedEnv};
use super::{environment_dir, BACKEND_NAME};
use crate::traits::registry::refuse_unknown_format;
use crate::traits::{FormatStatus, StorageError, StorageResult};
use crate::util::clock::now_unix_ms;
use crate::util::fsync::fsync_dir;
use crate::util::io_context::IoResultExt;

/// The layout this code reads and writes. 2: a committed blob's chunks stay where its writer
/// staged them and its content record points at them (version 1 copied them under the digest
/// at commit). Version 2 reads version 1 content as it is, so the upgrade only records the new
/// version; a version-1 binary would not find version-2 chunks, which is why it is a version.
pub(crate) const FORMAT_VERSION: u32 = 2;

/// What an environment without a format record is laid out as.
pub(crate) const UNRECORDED_VERSION: u32 = 1;
pub(crate) const FORMAT_KEY: &[u8] = b"version";
pub(crate) const WHAT: &str = "LMDB environment";

/// The status a record (or its absence) gives; `has_databases`: the environment holds this
/// backend's databases (so it is not new).
pub(crate) fn status_from_record(
    record: Option<&[u8]>,
    has_databases: bool,
    path: &Path,
) -> StorageResult<FormatStatus> {
    let Some(record) = record else {
        return Ok(if has_databases {
            FormatStatus::Unrecorded {
                version: UNRECORDED_VERSION,
            }
        } else {
            FormatStatus::Absent
        });
    };
    let bytes: [u8; 4] = record.try_into().map_err(|_| {
        StorageError::InvalidArgument(format!(
            "the format record of {} is {} bytes long, not 4",
            path.display(),
            record.len()
        ))
    })?;
    let found = u32::from_be_bytes(bytes);
    Ok(match found {
        FORMAT_VERSION => FormatStatus::Current,
        newer if newer > FORMAT_VERSION => FormatStatus::Newer {
            found,
            supported: FORMAT_VERSION,
        },
        older => FormatStatus::NeedsMigration {
            from: older,
            to: FORMAT_VERSION,
        },
    })
}

/// Reads the status of a just opened environment whose databases are not created yet, in a
/// read transaction (creating nothing).
pub(crate) fn read_format(env: &Env<WithoutTls>, path: &Path) -> StorageResult<FormatStatus> {
    let context = || format!("reading the format of {}", path.display());
    let rtxn = env.read_txn().with_context(context)?;
    let found = env
        .open_databases_and_commit(rtxn, |opener, rtxn| -> heed::Result<_> {
            let format = opener.open_database::<Bytes, Bytes>(rtxn, Some("format"))?;
            let blobs = opener.open_database::<Bytes, Bytes>(rtxn, Some("blobs"))?;
            let record = match format {
                Some(format) => format.get(rtxn, FORMAT_KEY)?.map(<[u8]>::to_vec),
                None => None,
            };
            // Nothing to keep: the handles close with the transaction.
            Ok(CommitOrAbort::<(), _>::Abort((record, blobs.is_some())))
        })
        .with_context(context)?;
    let CommitOrAbort::Abort((record, has_databases)) = found else {
        unreachable!("the closure always aborts")
    };
    status_from_record(record.as_deref(), has_databases, path)
}

pub(crate) fn record_format(
    format: &heed::Database<'_, Bytes, Bytes>,
    wtxn: &mut RwTxn,
) -> heed::Result<()> {
    format.put(wtxn, FORMAT_KEY, &FORMAT_VERSION.to_be_bytes())
}

fn has_environment(store_dir: &Path) -> bool {
    environment_dir(store_dir).join("data.mdb").exists()
}

pub(super) fn status(store_dir: &Path) -> StorageResult<FormatStatus> {
    if !has_environment(store_dir) {
        return Ok(FormatStatus::Absent);
    }
    format_status_of(&environment_dir(store_dir))
}

/// A compacted, synced copy of the environment: `backups/<unix-ms>-lmdb-v<version>.mdb`.
pub(super) fn back_up(store_dir: &Path) -> StorageResult<Option<PathBuf>> {
    if !has_environment(store_dir) {
        return Ok(None);
    }
    let version = match status(store_dir)? {
        FormatStatus::NeedsMigration { from, .. } => from,
        FormatStatus::Unrecorded { version } => version,
        _ => FORMAT_VERSION,
    };
    let env = SharedEnv::open_for_upgrade(&environment_dir(store_dir))?;
    let backups = store_dir.join("backups");
    std::fs::create_dir_all(&backups).io_context("creating the backups folder", &backups)?;
    let mut unix_ms = now_unix_ms();
    let target = loop {
        let candidate = backups.join(format!("{unix_ms}-lmdb-v{version}.mdb"));
        if !candidate.exists() {
            break candidate;
        }
        unix_ms += 1;
    };
    let partial = target.with_extension("mdb.partial");
    let _ = std::fs::remove_file(&partial);
    env.copy_to(&partial)?;
    crate::crash_point!("lmdb.backup.before-rename");
    std::fs::rename(&partial, &target)
        .io_context("renaming the LMDB backup into place", &target)?;
    fsync_dir(&backups).io_context("syncing the backups folder", &backups)?;
    Ok(Some(target))
}

/// Under the exclusive store lock: backs up, then records the current version of an
/// unrecorded or version-1 environment (version 2 reads version-1 content as it is, so there is
/// nothing to rewrite).
pub(super) fn upgrade(store_dir: &Path) -> StorageResult<()> {
    let path = environment_dir(store_dir);
    match status(store_dir)? {
        FormatStatus::Unrecorded { .. } | FormatStatus::NeedsMigration { from: 1, .. } => {
            back_up(store_dir)?;
            crate::crash_point!("lmdb.upgrade.after-backup");
            let env = SharedEnv::open_for_upgrade(&path)?;
            env.write(|wtxn| {
                record_format(&env.databases.format, wtxn)
                    .with_context(|| format!("recording the format of {}", path.display()))
            })
        }
        FormatStatus::Absent | FormatStatus::Current => Ok(()),
        other => refuse_unknown_format(BACKEND_NAME, WHAT, &path, other),
    }
}
