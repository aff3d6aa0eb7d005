//! Errors of the OCI flavour. Every message names the ref, digest or path involved.

use std::path::PathBuf;

use crate::store::StoreError;
use crate::traits::{Digest, DigestError, StorageError};

pub type OciResult<T> = Result<T, OciError>;

#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// Boxed: the base store's error is large and most results here are small.
    #[error(transparent)]
    Store(Box<StoreError>),

    #[error("invalid ref name {name:?}: {reason}")]
    InvalidRefName { name: String, reason: String },

    #[error("no ref named {0:?}")]
    RefNotFound(String),

    #[error("invalid digest {value:?} in {context}: {source}")]
    InvalidDigest {
        value: String,
        context: String,
        #[source]
        source: DigestError,
    },

    #[error("{context}: malformed document: {reason}")]
    InvalidDocument { context: String, reason: String },

    #[error(
        "{media_type} {digest} is {size} bytes, over the {limit} byte limit for manifests and indexes"
    )]
    DocumentTooLarge {
        digest: String,
        media_type: String,
        size: u64,
        limit: u64,
    },

    #[error("blob {digest} ({media_type}) is missing from {source_name}")]
    MissingBlob {
        digest: Digest,
        media_type: String,
        source_name: String,
    },

    #[error("blob {digest} at {path}: {reason}")]
    BadBlob {
        digest: Digest,
        path: PathBuf,
        reason: String,
    },

    #[error("importing blob {digest} from {path}: {source}")]
    BlobImport {
        digest: Digest,
        path: PathBuf,
        #[source]
        source: Box<StoreError>,
    },

    #[error("{path} is not an OCI image layout: {reason}")]
    NotALayout { path: PathBuf, reason: String },

    #[error("{path}: {reason}")]
    RefSelection { path: PathBuf, reason: String },

    #[error("archive {archive}: entry {entry:?} refused: {reason}")]
    UnsafeArchiveEntry {
        archive: PathBuf,
        entry: String,
        reason: String,
    },

    #[error("{path} leads outside the layout {root}")]
    PathOutsideLayout { path: PathBuf, root: PathBuf },

    #[error("archive {path} is corrupt or unreadable: {source}")]
    CorruptArchive {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{context}: {path}: {source}")]
    Io {
        context: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("no lease {0:?}")]
    LeaseNotFound(String),

    #[error("invalid argument: {0}")]
    Invalid(String),

    /// Rendering a root file system (`unpack`) failed; boxed like the store's error.
    #[error(transparent)]
    Render(Box<crate::stores::rootfs::RootfsError>),
}

impl OciError {
    pub fn io(
        context: impl Into<String>,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        OciError::Io {
            context: context.into(),
            path: path.into(),
            source,
        }
    }

    pub(crate) fn document(context: impl Into<String>, reason: impl ToString) -> Self {
        OciError::InvalidDocument {
            context: context.into(),
            reason: reason.to_string(),
        }
    }
}

impl From<StoreError> for OciError {
    fn from(error: StoreError) -> Self {
        OciError::Store(Box::new(error))
    }
}

impl From<StorageError> for OciError {
    fn from(error: StorageError) -> Self {
        OciError::from(StoreError::Storage(error))
    }
}
