//! Errors of the registry client: every message names the registry, repository, digest or URL
//! involved, and the next step where there is one.

use crate::store::StoreError;
use crate::stores::oci::OciError;
use crate::traits::Digest;
use crate::util::io_context::IoContext;

/// Result of the registry client's operations.
pub type RegistryResult<T> = Result<T, RegistryError>;

/// What can go wrong talking to a registry (pull, push, login), besides the store's own errors.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Boxed: the flavour's error is large and most results here are small.
    #[error(transparent)]
    Oci(Box<OciError>),

    /// An image reference (`[registry/]repository[:tag][@digest]`) does not parse.
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference {
        /// The reference as given.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },

    /// Plain HTTP to a registry that is not on a loopback address was refused because
    /// `ClientOptions::insecure` is off; use HTTPS, or set it if unencrypted traffic is acceptable.
    #[error(
        "{registry} is not a loopback address: plain HTTP to it needs --insecure (its traffic, \
         credentials included, would travel unencrypted)"
    )]
    InsecureRefused {
        /// The registry host (and port).
        registry: String,
    },

    /// The HTTP request did not complete (DNS, connection, TLS or timeout); check the network and
    /// the registry address.
    #[error("{method} {url}: {source}")]
    Transport {
        /// HTTP method of the request.
        method: String,
        /// URL requested.
        url: String,
        /// The HTTP client's error.
        #[source]
        source: Box<ureq::Error>,
    },

    /// The registry answered with an HTTP status the operation cannot use (404 for a missing image,
    /// 401/403 for refused access, 5xx for a server fault).
    #[error("{method} {url}: the registry answered {status}{detail}")]
    Status {
        /// HTTP method of the request.
        method: String,
        /// URL requested.
        url: String,
        /// HTTP status code.
        status: u16,
        /// The registry's error text (`errors[].message`), if any, with a leading ": ".
        detail: String,
    },

    /// The registry broke the distribution protocol (a missing header, a malformed digest, listing
    /// or redirect).
    #[error("{url}: {reason}")]
    Protocol {
        /// URL of the offending answer.
        url: String,
        /// What was wrong with it.
        reason: String,
    },

    /// Getting a bearer token failed: the token service refused the credentials or answered
    /// something unusable; check the credentials for this registry.
    #[error("authenticating to {registry}: {reason}")]
    Auth {
        /// The registry host.
        registry: String,
        /// Why authentication failed.
        reason: String,
    },

    /// Credentials could not be found or read (a docker config file or a credential helper failed).
    #[error("credentials for {registry}: {reason}")]
    Credentials {
        /// The registry the credentials were for.
        registry: String,
        /// What failed.
        reason: String,
    },

    /// The image is a Docker schema 1 manifest, which is refused; push it again with a current
    /// tool.
    #[error(
        "{reference} is a Docker schema 1 manifest ({media_type}), which this tool refuses: \
         schema 1 is deprecated and unverifiable; push the image again with a current tool \
         (it then gets a schema 2 or OCI manifest)"
    )]
    Schema1 {
        /// The image reference.
        reference: String,
        /// The schema 1 media type the registry sent.
        media_type: String,
    },

    /// Content the registry sent does not hash to the digest asked for; the registry or something
    /// between is serving wrong data.
    #[error("{reference}: the registry sent {what} that hashes to {actual}, not {expected}")]
    DigestMismatch {
        /// The image reference.
        reference: String,
        /// What was checked, e.g. `the manifest`.
        what: &'static str,
        /// The digest asked for.
        expected: Digest,
        /// The digest of what arrived.
        actual: Digest,
    },

    /// A manifest or small blob is larger than the limit for reading it into memory; it is refused.
    #[error("{reference}: {what} is {size} bytes, over the {limit} byte limit")]
    TooLarge {
        /// The image or blob reference.
        reference: String,
        /// What was too large: `the manifest` or `the blob`.
        what: &'static str,
        /// Its size in bytes (as announced or as read).
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },

    /// The image is a multi-platform index without a manifest for the platform asked for; pick one
    /// of the platforms listed.
    #[error("{reference}: no manifest for platform {platform} (the index has: {available})")]
    NoPlatform {
        /// The image reference.
        reference: String,
        /// The platform asked for (`os/architecture[/variant]`).
        platform: String,
        /// The platforms the index offers, comma-separated.
        available: String,
    },

    /// Downloading or uploading a blob failed (after any resumes allowed).
    #[error("blob {digest} of {repository}: {reason}")]
    Blob {
        /// The repository the blob belongs to.
        repository: String,
        /// Digest of the blob.
        digest: Digest,
        /// What failed.
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
