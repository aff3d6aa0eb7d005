//! The version of the `fs` blob layout, recorded in `blobs/format-version` (a decimal number).
//!
//! Version 1 is `blobs/<alg>/<hex>` with staging files in `ingest/`. Stores written before the
//! record existed have that layout without the file: they are read as version 1, and the record
//! is written by the upgrade under the exclusive store lock, never by a plain open.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::BACKEND_NAME;
use crate::traits::registry::refuse_unknown_format;
use crate::traits::{FormatStatus, StorageError, StorageResult};
use crate::util::fsync::fsync_dir;
use crate::util::io_context::{IoContext, IoResultExt};

/// The layout this code reads and writes.
pub(super) const LAYOUT_VERSION: u32 = 1;

const WHAT: &str = "fs blob directory";

fn blobs_dir(store_dir: &Path) -> PathBuf {
    store_dir.join("blobs")
}

fn record_path(store_dir: &Path) -> PathBuf {
    blobs_dir(store_dir).join("format-version")
}

/// What `blobs/` of `store_dir` says about its layout version. Changes nothing.
pub(super) fn status(store_dir: &Path) -> StorageResult<FormatStatus> {
    let path = record_path(store_dir);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Ok(if blobs_dir(store_dir).exists() {
                FormatStatus::Unrecorded {
                    version: LAYOUT_VERSION,
                }
            } else {
                FormatStatus::Absent
            });
        }
        Err(source) => {
            return Err(StorageError::from(IoContext::new(
                "reading the layout version",
                &path,
                source,
            )))
        }
    };
    let found: u32 = text.trim().parse().map_err(|_| {
        StorageError::from(IoContext::new(
            "reading the layout version",
            &path,
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{:?} is not a version number", text.trim()),
            ),
        ))
    })?;
    Ok(match found {
        LAYOUT_VERSION => FormatStatus::Current,
        newer if newer > LAYOUT_VERSION => FormatStatus::Newer {
            found,
            supported: LAYOUT_VERSION,
        },
        older => FormatStatus::NeedsMigration {
            from: older,
            to: LAYOUT_VERSION,
        },
    })
}

/// Checked by every open: refuses a layout this code does not know; `true` when `blobs/` is
/// new, so the caller records the version once it has created the layout.
pub(super) fn check_for_open(store_dir: &Path) -> StorageResult<bool> {
    let status = status(store_dir)?;
    refuse_unknown_format(BACKEND_NAME, WHAT, &blobs_dir(store_dir), status)?;
    Ok(status == FormatStatus::Absent)
}

/// Writes `blobs/format-version` durably: temp file, fsync, rename, fsync the directory.
pub(super) fn record_version(store_dir: &Path) -> StorageResult<()> {
    let dir = blobs_dir(store_dir);
    let path = record_path(store_dir);
    let mut temp = tempfile::Builder::new()
        .prefix(".format-version-")
        .tempfile_in(&dir)
        .io_context("creating the layout version file", &dir)?;
    writeln!(temp, "{LAYOUT_VERSION}")
        .and_then(|()| temp.as_file().sync_all())
        .io_context("writing the layout version", &path)?;
    crate::crash_point!("fs.format.before-record");
    temp.persist(&path)
        .map_err(|e| IoContext::new("writing the layout version", &path, e.error))?;
    fsync_dir(&dir).io_context("syncing the directory", &dir)?;
    Ok(())
}

/// Blob files are named by their digest and never change: there is nothing a copy would save.
pub(super) fn back_up(_store_dir: &Path) -> StorageResult<Option<PathBuf>> {
    Ok(None)
}

/// Under the exclusive store lock: records the version of an unrecorded layout. (Version 1 is
/// the first, so there is no older recorded layout to migrate yet.)
pub(super) fn upgrade(store_dir: &Path) -> StorageResult<()> {
    match status(store_dir)? {
        FormatStatus::Unrecorded { .. } => record_version(store_dir),
        FormatStatus::Absent | FormatStatus::Current => Ok(()),
        other => refuse_unknown_format(BACKEND_NAME, WHAT, &blobs_dir(store_dir), other),
    }
}
