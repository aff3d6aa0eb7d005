//! Where the `fs` blob store keeps things inside the store directory, and the directory fsync
//! that makes a rename or unlink there durable.

use std::fs;
use std::path::{Path, PathBuf};

use crate::traits::{Algorithm, Digest, StorageError, StorageResult};
use crate::util::io_context::IoContext;

/// `blobs/<alg>/<hex>` for content, `ingest/` for writes in progress. Both live in the same
/// store directory, hence on the same filesystem, so committing a blob is a rename.
#[derive(Clone, Debug)]
pub(super) struct Layout {
    blobs_dir: PathBuf,
    ingest_dir: PathBuf,
}

impl Layout {
    /// The layout of the store directory `dir`, creating its directories when missing (and
    /// recording the layout version in a new one). Refuses a layout version it does not know.
    pub(super) fn create(dir: &Path) -> StorageResult<Layout> {
        let is_new = super::format::check_for_open(dir)?;
        let layout = Layout {
            blobs_dir: dir.join("blobs"),
            ingest_dir: dir.join("ingest"),
        };
        for algorithm in Algorithm::ALL {
            let algorithm_dir = layout.algorithm_dir(algorithm);
            fs::create_dir_all(&algorithm_dir).map_err(|source| {
                StorageError::from(IoContext::new(
                    "creating the blob directory",
                    &algorithm_dir,
                    source,
                ))
            })?;
        }
        crate::backends::staging_lock::private_dir(&layout.ingest_dir).map_err(|source| {
            StorageError::from(IoContext::new(
                "creating the ingest directory",
                &layout.ingest_dir,
                source,
            ))
        })?;
        if is_new {
            super::format::record_version(dir)?;
        }
        Ok(layout)
    }

    /// `blobs/<alg>`: the directory whose entries change when a blob of `algorithm` is
    /// committed or deleted, so the one to fsync afterwards.
    pub(super) fn algorithm_dir(&self, algorithm: Algorithm) -> PathBuf {
        self.blobs_dir.join(algorithm.name())
    }

    /// `blobs/<alg>/<hex>`.
    pub(super) fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.algorithm_dir(digest.algorithm()).join(digest.hex())
    }

    pub(super) fn ingest_dir(&self) -> &Path {
        &self.ingest_dir
    }
}
