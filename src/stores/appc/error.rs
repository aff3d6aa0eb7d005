//! Errors of the appc flavour. Every message names the image, key, URL or path involved, and a
//! refused image names the validation rule it broke.

use crate::store::StoreError;
use crate::traits::{Digest, StorageError};
use crate::util::io_context::IoContext;

pub type AppcResult<T> = Result<T, AppcError>;

#[derive(Debug, thiserror::Error)]
pub enum AppcError {
    /// Boxed: the base store's error is large and most results here are small.
    #[error(transparent)]
    Store(Box<StoreError>),

    /// An image refused by validation; `rule` is the stable name of the rule it broke
    /// (`archive.duplicate-entry`, `manifest.name`, …), `detail` what was found.
    #[error("{source_name}: refused by rule {rule}: {detail}")]
    InvalidImage {
        source_name: String,
        rule: &'static str,
        detail: String,
    },

    #[error("no appc image matches {0:?} (see `oci-store appc ls`)")]
    ImageNotFound(String),

    #[error("{key:?} matches several appc images, give more of the ID: {}", candidates.join(", "))]
    AmbiguousKey {
        key: String,
        candidates: Vec<String>,
    },

    #[error("invalid image key {key:?}: {reason}")]
    InvalidKey { key: String, reason: String },

    #[error("appc image {image} has no image info (an import that did not finish); run `oci-store appc gc`")]
    MissingInfo { image: Digest },

    #[error("no remote cache record for {0:?}")]
    RemoteNotFound(String),

    #[error("exporting {image}: the store's content {reason}, not what its ID says; run `oci-store fsck --repair` (it deletes damaged blobs), then import the image again")]
    ContentMismatch { image: Digest, reason: String },

    /// What was being done, to which path, and the io error: `reading: /x: …`.
    #[error(transparent)]
    Io(#[from] IoContext),

    #[error(transparent)]
    Rootfs(Box<crate::stores::rootfs::RootfsError>),

    #[error("rendering {image}: {reason}")]
    Render { image: String, reason: String },

    #[error("invalid argument: {0}")]
    Invalid(String),
}

impl AppcError {
    /// The rule a refused image broke, if this is a refusal.
    pub fn rule(&self) -> Option<&'static str> {
        match self {
            AppcError::InvalidImage { rule, .. } => Some(rule),
            _ => None,
        }
    }
}

impl From<StoreError> for AppcError {
    fn from(error: StoreError) -> Self {
        AppcError::Store(Box::new(error))
    }
}

impl From<StorageError> for AppcError {
    fn from(error: StorageError) -> Self {
        AppcError::from(StoreError::Storage(error))
    }
}

impl From<crate::stores::rootfs::RootfsError> for AppcError {
    fn from(error: crate::stores::rootfs::RootfsError) -> Self {
        AppcError::Rootfs(Box::new(error))
    }
}
