//! Errors of the rootfs layer: applying layers, hashing trees, the rendered-tree cache. Each
//! names the entry (as the archive spells it) or the path, and the rule that refused it.

use std::path::PathBuf;

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

    #[error("{what} does not verify: expected {expected}, the content hashes to {actual}{}", size_note(*expected_size, *actual_size))]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
        expected_size: Option<u64>,
        actual_size: u64,
    },

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

    #[error("{context}: {path}: {source}")]
    Io {
        context: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("rendered tree {path}: {reason}")]
    BadTreeRecord { path: PathBuf, reason: String },

    #[error(transparent)]
    Store(#[from] Box<crate::store::StoreError>),
}

impl RootfsError {
    pub fn io(
        context: impl Into<String>,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        RootfsError::Io {
            context: context.into(),
            path: path.into(),
            source,
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

fn size_note(expected: Option<u64>, actual: u64) -> String {
    match expected {
        Some(expected) if expected != actual => {
            format!(" ({actual} bytes, {expected} expected)")
        }
        _ => String::new(),
    }
}
