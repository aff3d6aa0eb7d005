//! Exporting an image as an ACI file: the stored tar (so the same image ID), optionally
//! gzip-compressed, hashed as it is copied and refused on a mismatch. The file appears whole
//! or not at all (temp file beside it, fsync, rename) and follows the umask, as `cp` would.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::error::{AppcError, AppcResult};
use super::AppcStore;
use crate::store::fsutil::fsync_dir;
use crate::traits::{Algorithm, BlobStore, ExtraData, Hasher, Index, KvStore};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExportReport {
    pub id: String,
    pub path: PathBuf,
    pub gzip: bool,
    /// Bytes of the uncompressed tar copied.
    pub size: u64,
}

/// Removes the temp file unless it was renamed into place.
struct TempFile {
    path: PathBuf,
    kept: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl<B: BlobStore, I: Index, X: ExtraData, K: KvStore> AppcStore<'_, B, I, X, K> {
    pub fn export(&self, key: &str, path: &Path, gzip: bool) -> AppcResult<ExportReport> {
        // Shared GC lock: a GC does not remove the image while it is being copied.
        let _mutation = self.mutation_lock()?;
        let digest = self.resolve_key(key)?;
        let dir = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let file_name = path
            .file_name()
            .ok_or_else(|| AppcError::Invalid(format!("{} names no file", path.display())))?;
        let mut temp = TempFile {
            path: dir.join(format!(
                ".{}.export-{}-{}",
                file_name.to_string_lossy(),
                std::process::id(),
                super::info::now_unix_ms()
            )),
            kept: false,
        };
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp.path)
            .map_err(|e| AppcError::io("creating the export file", &temp.path, e))?;
        let mut reader = self.store.read(&digest)?;
        let (actual, size, file) = if gzip {
            let mut encoder = flate2::write::GzEncoder::new(file, flate2::Compression::default());
            let (actual, size) = copy_hashing(&mut reader, &mut encoder, &temp.path)?;
            let file = encoder
                .finish()
                .map_err(|e| AppcError::io("compressing the export", &temp.path, e))?;
            (actual, size, file)
        } else {
            let mut file = file;
            let (actual, size) = copy_hashing(&mut reader, &mut file, &temp.path)?;
            (actual, size, file)
        };
        if actual != digest {
            return Err(AppcError::ContentMismatch {
                image: digest,
                actual,
            });
        }
        sync(&file, &temp.path)?;
        std::fs::rename(&temp.path, path)
            .map_err(|e| AppcError::io("moving the export into place", path, e))?;
        temp.kept = true;
        fsync_dir(&dir)?;
        self.touch(&digest)?;
        Ok(ExportReport {
            id: digest.dashed(),
            path: path.to_path_buf(),
            gzip,
            size,
        })
    }
}

fn sync(file: &File, path: &Path) -> AppcResult<()> {
    file.sync_all()
        .map_err(|e| AppcError::io("syncing the export", path, e))
}

fn copy_hashing(
    reader: &mut dyn Read,
    out: &mut dyn Write,
    path: &Path,
) -> AppcResult<(crate::traits::Digest, u64)> {
    let mut hasher = Hasher::new(Algorithm::Sha512);
    let mut buffer = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let read = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(AppcError::io("reading the image from the store", path, e)),
        };
        hasher.update(&buffer[..read]);
        out.write_all(&buffer[..read])
            .map_err(|e| AppcError::io("writing the export", path, e))?;
        size += read as u64;
    }
    Ok((hasher.finish(), size))
}
