//! Errors of the registry client: every message names the registry, repository, digest or URL
//! involved, and the next step where there is one.

use crate::store::StoreError;
use crate::stores::oci::OciError;
use crate::traits::Digest;
use crate::util::io_context::IoContext;

pub type RegistryResult<T> = Result<T, RegistryError>;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Boxed: the flavour's error is large and most results here are small.
    #[error(transparent)]
    Oci(Box<OciError>),

    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },

    #[error(
        "{registry} is not a loopback address: plain HTTP to it needs --insecure (its traffic, \
         credentials included, would travel unencrypted)"
    )]
    InsecureRefused { registry: String },

    #[error("{method} {url}: {source}")]
    Transport {
        method: String,
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },

    #[error("{method} {url}: the registry answered {status}{detail}")]
    Status {
        method: String,
        url: String,
        status: u16,
        /// The registry's error text (`errors[].message`), if any, with a leading ": ".
        detail: String,
    },

    #[error("{url}: {reason}")]
    Protocol { url: String, reason: String },

    #[error("authenticating to {registry}: {reason}")]
    Auth { registry: String, reason: String },

    #[error("credentials for {registry}: {reason}")]
    Credentials { registry: String, reason: String },

    #[error(
        "{reference} is a Docker schema 1 manifest ({media_type}), which this tool refuses: \
         schema 1 is deprecated and unverifiable; push the image again with a current tool \
         (it then gets a schema 2 or OCI manifest)"
    )]
    Schema1 {
        reference: String,
        media_type: String,
    },

    #[error("{reference}: the registry sent {what} that hashes to {actual}, not {expected}")]
    DigestMismatch {
        reference: String,
        what: &'static str,
        expected: Digest,
        actual: Digest,
    },

    #[error("{reference}: {what} is {size} bytes, over the {limit} byte limit")]
    TooLarge {
        reference: String,
        what: &'static str,
        size: u64,
        limit: u64,
    },

    #[error("{reference}: no manifest for platform {platform} (the index has: {available})")]
    NoPlatform {
        reference: String,
        platform: String,
        available: String,
    },

    #[error("blob {digest} of {repository}: {reason}")]
    Blob {
        repository: String,
        digest: Digest,
        reason: String,
    },

    /// `{context} {path}: {source}`, made with [`IoContext::phrase`].
    #[error(transparent)]
    Io(#[from] IoContext),
}

impl From<OciError> for RegistryError {
    fn from(error: OciError) -> Self {
        RegistryError::Oci(Box::new(error))
    }
}

impl From<StoreError> for RegistryError {
    fn from(error: StoreError) -> Self {
        RegistryError::Oci(Box::new(OciError::from(error)))
    }
}

impl From<crate::traits::StorageError> for RegistryError {
    fn from(error: crate::traits::StorageError) -> Self {
        RegistryError::from(StoreError::from(error))
    }
}
