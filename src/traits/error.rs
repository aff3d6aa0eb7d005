//! Errors of the trait layer: what any backend can report. Backends map their own errors
//! (rusqlite, heed, io) into [`StorageError`], naming the digest, key or path involved.

use super::digest::Digest;
use crate::util::io_context::IoContext;

/// A digest string that is not one.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum DigestError {
    /// Not `algorithm:hex` (or `algorithm-hex`) with lowercase hex of the algorithm's length.
    #[error("invalid digest {input:?}: {reason}")]
    Invalid {
        /// The string given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An algorithm other than sha256 and sha512.
    #[error("unknown digest algorithm {0:?} (supported: sha256, sha512)")]
    UnknownAlgorithm(String),
    /// A prefix shorter than [`DigestPrefix::MIN_HEX_LEN`](crate::DigestPrefix) hex characters:
    /// give more of the digest.
    #[error("digest prefix {input:?} is too short: give at least {min} hex characters")]
    PrefixTooShort {
        /// The prefix given.
        input: String,
        /// The fewest hex characters accepted.
        min: usize,
    },
}

/// Result of a storage backend's operations.
pub type StorageResult<T> = Result<T, StorageError>;

/// What a storage backend can report; backends map their own errors into it.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A digest or digest prefix does not parse.
    #[error(transparent)]
    Digest(#[from] DigestError),

    /// Written content does not hash to the digest it was expected to have; nothing was stored.
    #[error("content does not match: expected {expected}, computed {actual}")]
    DigestMismatch {
        /// The digest the writer promised.
        expected: Digest,
        /// The digest of the bytes received.
        actual: Digest,
    },

    /// Written content does not have the size it was expected to have; nothing was stored.
    #[error("size of {digest} does not match: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// The blob's digest.
        digest: String,
        /// The size promised, in bytes.
        expected: u64,
        /// The size received, in bytes.
        actual: u64,
    },

    /// No blob has this digest.
    #[error("blob {0} not found")]
    BlobNotFound(Digest),

    /// A key/value write expected a version of the entry other than the one stored: another
    /// writer changed it first. Read the entry again and retry.
    #[error("key {data_type}/{key}: version conflict (expected {expected:?}, found {found:?})")]
    VersionConflict {
        /// The entry's data type (its namespace).
        data_type: String,
        /// The entry's key.
        key: String,
        /// The version the write expected (`None`: the entry should not exist).
        expected: Option<u64>,
        /// The version stored (`None`: the entry does not exist).
        found: Option<u64>,
    },

    /// An argument a backend cannot accept (an invalid name, key or option); the message says
    /// which.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// What was being done, to which path, and the io error: `reading: /x: …`.
    #[error(transparent)]
    Io(#[from] IoContext),

    /// A backend's own library (SQLite, LMDB, ...) failed.
    #[error("{backend} backend: {context}: {source}")]
    Backend {
        /// The backend's name.
        backend: &'static str,
        /// What the backend was doing.
        context: String,
        /// The library's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A store names a backend that is not registered in this build.
    #[error("unknown backend {name:?} for {role} (registered: {registered})")]
    UnknownBackend {
        /// The backend name asked for.
        name: String,
        /// Which part of the store the backend was for (blobs, index, extra data, key/value area).
        role: &'static str,
        /// The backends registered for that role, comma-separated.
        registered: String,
    },
}

impl StorageError {
    /// A [`StorageError::Backend`] of `backend`, saying what it was doing (`context`) and the
    /// library's error.
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
