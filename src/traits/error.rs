//! Errors of the trait layer: what any backend can report. Backends map their own errors
//! (rusqlite, heed, io) into [`StorageError`], naming the digest, key or path involved.

use super::digest::Digest;
use crate::util::io_context::IoContext;

/// A digest string that is not one.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum DigestError {
    #[error("invalid digest {input:?}: {reason}")]
    Invalid { input: String, reason: String },
    #[error("unknown digest algorithm {0:?} (supported: sha256, sha512)")]
    UnknownAlgorithm(String),
    #[error("digest prefix {input:?} is too short: give at least {min} hex characters")]
    PrefixTooShort { input: String, min: usize },
}

pub type StorageResult<T> = Result<T, StorageError>;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error(transparent)]
    Digest(#[from] DigestError),

    #[error("content does not match: expected {expected}, computed {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },

    #[error("size of {digest} does not match: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        digest: String,
        expected: u64,
        actual: u64,
    },

    #[error("blob {0} not found")]
    BlobNotFound(Digest),

    #[error("key {data_type}/{key}: version conflict (expected {expected:?}, found {found:?})")]
    VersionConflict {
        data_type: String,
        key: String,
        expected: Option<u64>,
        found: Option<u64>,
    },

    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// What was being done, to which path, and the io error: `reading: /x: …`.
    #[error(transparent)]
    Io(#[from] IoContext),

    #[error("{backend} backend: {context}: {source}")]
    Backend {
        backend: &'static str,
        context: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    #[error("unknown backend {name:?} for {role} (registered: {registered})")]
    UnknownBackend {
        name: String,
        role: &'static str,
        registered: String,
    },
}

impl StorageError {
    pub fn backend(
        backend: &'static str,
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StorageError::Backend {
            backend,
            context: context.into(),
            source: Box::new(source),
        }
    }
}
