//! Small durable-file helpers shared by the store layer.

use std::fs::File;
use std::path::Path;

use super::error::{StoreError, StoreResult};

/// Writes `path` durably: a temp file beside it, fsync, rename over, fsync the directory.
/// Readers see the old or the new file, never a half-written one.
pub fn write_atomically(
    path: &Path,
    fill: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> StoreResult<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let mut temp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(|e| StoreError::io("creating a temp file", dir, e))?;
    fill(temp.as_file_mut()).map_err(|e| StoreError::io("writing", path, e))?;
    temp.as_file()
        .sync_all()
        .map_err(|e| StoreError::io("syncing", path, e))?;
    temp.persist(path)
        .map_err(|e| StoreError::io("replacing", path, e.error))?;
    fsync_dir(dir)
}

pub fn fsync_dir(dir: &Path) -> StoreResult<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io("syncing directory", dir, e))
}
