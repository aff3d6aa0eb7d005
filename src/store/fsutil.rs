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

/// Streams `reader` through a hash of `algorithm`; returns the digest and the byte count.
pub fn hash_reader(
    algorithm: crate::traits::Algorithm,
    reader: &mut dyn std::io::Read,
) -> std::io::Result<(crate::traits::Digest, u64)> {
    let mut hasher = crate::traits::Hasher::new(algorithm);
    let mut buffer = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let read = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buffer[..read]);
        size += read as u64;
    }
    Ok((hasher.finish(), size))
}
