//! Exporting an image as an ACI file: the stored tar (so the same image ID), optionally
//! gzip-compressed, hashed as it is copied and refused on a mismatch. The file appears whole
//! or not at all and follows the umask, as `cp` would (the base store's `AtomicFile`), and
//! its content goes through the base store's `VerifyingReader`.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::error::{AppcError, AppcResult};
use super::AppcStore;
use crate::store::fsutil::{AtomicFile, ContentMismatch, VerifyingReader};
use crate::util::io_context::IoContext;

/// What [`AppcStore::export`] wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExportReport {
    /// The image ID (`sha512-...`).
    pub id: String,
    /// The file written.
    pub path: PathBuf,
    /// Whether the file was gzip-compressed.
    pub gzip: bool,
    /// Bytes of the uncompressed tar copied.
    pub size: u64,
}

impl AppcStore<'_> {
    /// Writes the image `key` names to the ACI file `path` (gzip-compressed with `gzip`),
    /// replacing it atomically, and counts as a use of the image. Fails with
    /// [`AppcError::ContentMismatch`] when the stored content does not match the image ID (nothing
    /// is written).
    pub fn export(&self, key: &str, path: &Path, gzip: bool) -> AppcResult<ExportReport> {
        // Shared GC lock: a GC does not remove the image while it is being copied.
        let _mutation = self.mutation_lock()?;
        let digest = self.resolve_key(key)?;
        let record = self.store.info(&digest)?;
        let mut verified = VerifyingReader::new(self.store.read(&digest)?, &digest, record.size);
        let mut out = AtomicFile::new(path)?;
        let copied = if gzip {
            let mut encoder =
                flate2::write::GzEncoder::new(out.file_mut(), flate2::Compression::default());
            std::io::copy(&mut verified, &mut encoder).and_then(|size| {
                encoder.finish()?;
                Ok(size)
            })
        } else {
            std::io::copy(&mut verified, out.file_mut())
        };
        let size = copied.map_err(|error| match ContentMismatch::find(&error) {
            Some(mismatch) => AppcError::ContentMismatch {
                image: digest.clone(),
                reason: mismatch.reason.clone(),
            },
            None => AppcError::from(IoContext::new("exporting", path, error)),
        })?;
        // Only now does the file appear (a replaced one keeps its mode), synced with its
        // directory.
        out.commit()?;
        self.touch(&digest)?;
        Ok(ExportReport {
            id: digest.dashed(),
            path: path.to_path_buf(),
            gzip,
            size,
        })
    }
}
