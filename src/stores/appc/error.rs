//! Errors of the appc flavour. Every message names the image, key, URL or path involved, and a
//! refused image names the validation rule it broke.

use crate::store::StoreError;
use crate::traits::{Digest, StorageError};
use crate::util::io_context::IoContext;

/// Result of the appc flavour's operations.
pub type AppcResult<T> = Result<T, AppcError>;

/// What can go wrong in the appc flavour (import, lookup, export, render, GC, remote cache).
#[derive(Debug, thiserror::Error)]
pub enum AppcError {
    /// Boxed: the base store's error is large and most results here are small.
    #[error(transparent)]
    Store(Box<StoreError>),

    /// An image refused by validation; `rule` is the stable name of the rule it broke
    /// (`archive.duplicate-entry`, `manifest.name`, …), `detail` what was found.
    #[error("{source_name}: refused by rule {rule}: {detail}")]
    InvalidImage {
        /// The archive or image the refusal is about.
        source_name: String,
        /// Stable name of the rule broken, e.g. `manifest.name`.
        rule: &'static str,
        /// What was found.
        detail: String,
    },

    /// No stored image matches this ID, ID prefix or name.
    #[error("no appc image matches {0:?} (see `oci-store appc ls`)")]
    ImageNotFound(String),

    /// An image ID prefix matches several images; give more of the ID.
    #[error("{key:?} matches several appc images, give more of the ID: {}", candidates.join(", "))]
    AmbiguousKey {
        /// The key as given.
        key: String,
        /// The IDs of the images it matches.
        candidates: Vec<String>,
    },

    /// A key is neither `sha512-<hex>` (an image ID or a long enough prefix) nor a valid image
    /// name.
    #[error("invalid image key {key:?}: {reason}")]
    InvalidKey {
        /// The key as given.
        key: String,
        /// What is wrong with it.
        reason: String,
    },

    /// An image has no image info: its import did not finish; `AppcStore::gc` removes it.
    #[error("appc image {image} has no image info (an import that did not finish); run `oci-store appc gc`")]
    MissingInfo {
        /// The image's ID.
        image: Digest,
    },

    /// The remote cache has no record for this ACI URL.
    #[error("no remote cache record for {0:?}")]
    RemoteNotFound(String),

    /// An exported image's stored content does not match its ID (the store is damaged); repair
    /// the store with `fsck --repair`, then import the image again.
    #[error("exporting {image}: the store's content {reason}, not what its ID says; run `oci-store fsck --repair` (it deletes damaged blobs), then import the image again")]
    ContentMismatch {
        /// The image's ID.
        image: Digest,
        /// What did not match.
        reason: String,
    },

    /// What was being done, to which path, and the io error: `reading: /x: …`.
    #[error(transparent)]
    Io(#[from] IoContext),

    /// Rendering an image's root file system failed while writing it out.
    #[error(transparent)]
    Rootfs(Box<crate::stores::rootfs::RootfsError>),

    /// An image cannot be rendered: a dependency or its tree is missing, or a layer is unusable.
    #[error("rendering {image}: {reason}")]
    Render {
        /// The image rendered.
        image: String,
        /// What stopped the render.
        reason: String,
    },

    /// An argument or combination of options is not accepted; the message says which.
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
