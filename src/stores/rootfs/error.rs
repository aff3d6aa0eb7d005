//! Errors of the rootfs layer: applying layers, hashing trees, the rendered-tree cache. Each
//! names the entry (as the archive spells it) or the path, and the rule that refused it.

use std::path::PathBuf;

use crate::util::io_context::IoContext;

pub type RootfsResult<T> = Result<T, RootfsError>;

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// An archive entry broke a rule: it would land outside the target, go through a link, or
    /// is of a kind we do not write. Nothing of it was written.
    #[error("layer entry {entry:?} refused: {rule}")]
    Refused { entry: String, rule: String },

    #[error("layer entry {entry:?}: {context}: {source}")]
    Entry {
        entry: String,
        context: String,
        #[source]
        source: std::io::Error,
    },

    /// An error while applying one layer of several, named by its digest.
    #[error("layer {layer}: {source}")]
    InLayer {
        layer: String,
        #[source]
        source: Box<RootfsError>,
    },

    #[error("reading {what}: {source}")]
    Read {
        what: String,
        #[source]
        source: std::io::Error,
    },

    #[error("reading the layer archive: {0}")]
    Archive(#[source] std::io::Error),

    /// An extended tar header over its limit, refused before it was read.
    #[error("layer archive refused: {0}")]
    TarHeaderLimit(#[source] super::bounded_tar::TarHeaderError),

    #[error(
        "layer {layer}: media type {media_type} declares {declared}, but the content is {found}"
    )]
    CompressionMismatch {
        layer: String,
        media_type: String,
        declared: &'static str,
        found: &'static str,
    },

    #[error("layer {layer}: media type {media_type:?} is not a layer this renderer reads (tar, tar+gzip, tar+zstd)")]
    UnsupportedMediaType { layer: String, media_type: String },

    #[error("{what} does not verify: {reason}; run `oci-store fsck --repair` (it deletes damaged blobs), then import the image again")]
    DigestMismatch { what: String, reason: String },

    #[error("rendered tree {path} changed: recorded hash {expected}, now {actual}")]
    TreeMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },

    #[error("cannot render into {path}: {reason}")]
    Target { path: PathBuf, reason: String },

    #[error("invalid apply options: {0}")]
    InvalidOptions(String),

    /// What was being done, to which path, and the io error: `reading: /x: …`.
    #[error(transparent)]
    Io(#[from] IoContext),

    #[error("rendered tree {path}: {reason}")]
    BadTreeRecord { path: PathBuf, reason: String },

    #[error(transparent)]
    Store(#[from] Box<crate::store::StoreError>),
}

impl RootfsError {
    /// An error reading the layer's tar stream: a refused extended header keeps its type.
    pub(crate) fn archive(error: std::io::Error) -> Self {
        match super::bounded_tar::TarHeaderError::find(&error) {
            Some(refused) => RootfsError::TarHeaderLimit(refused.clone()),
            None => RootfsError::Archive(error),
        }
    }

    pub(crate) fn refused(entry: &str, rule: impl Into<String>) -> Self {
        RootfsError::Refused {
            entry: entry.to_string(),
            rule: rule.into(),
        }
    }

    pub(crate) fn entry(entry: &str, context: impl Into<String>, source: std::io::Error) -> Self {
        RootfsError::Entry {
            entry: entry.to_string(),
            context: context.into(),
            source,
        }
    }
}

impl From<crate::store::StoreError> for RootfsError {
    fn from(error: crate::store::StoreError) -> Self {
        RootfsError::Store(Box::new(error))
    }
}
