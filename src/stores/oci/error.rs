//! Errors of the OCI flavour. Every message names the ref, digest or path involved.

use std::path::PathBuf;

use crate::store::StoreError;
use crate::traits::{Digest, DigestError, StorageError};
use crate::util::io_context::IoContext;

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

    /// A blob a ref reaches is damaged in the store (found while copying it out): nothing
    /// outside names it.
    #[error(
        "blob {digest} ({media_type}) of ref {reference:?} is damaged in the store: {reason}; \
         nothing was exported under it. Run `oci-store fsck --repair` to drop the damaged copy, \
         then import the image again"
    )]
    DamagedInStore {
        digest: Digest,
        media_type: String,
        reference: String,
        reason: String,
    },

    /// A manifest, index or image config that breaks a rule of the image-spec.
    #[error("{media_type} {digest} breaks the image-spec: {rule}")]
    SpecViolation {
        digest: Digest,
        media_type: String,
        rule: String,
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

    #[error("{path} is not a regular file: only regular files are read from a layout")]
    NotARegularFile { path: PathBuf },

    #[error(
        "archive {archive} has more than {limit} {what}: refused (raise the limit with \
         {flag}, ImportOptions::{option})"
    )]
    ArchiveLimit {
        archive: PathBuf,
        what: &'static str,
        limit: u64,
        flag: &'static str,
        option: &'static str,
    },

    #[error("blob {digest} went from the store while an import held it: {reason}")]
    BlobVanished { digest: Digest, reason: String },

    #[error("{path} leads outside the layout {root}")]
    PathOutsideLayout { path: PathBuf, root: PathBuf },

    /// An extended tar header (GNU long name or link, PAX header, sparse map) over its limit,
    /// refused before it was read.
    #[error("archive {archive}: {source}")]
    TarHeaderLimit {
        archive: PathBuf,
        #[source]
        source: crate::stores::rootfs::TarHeaderError,
    },

    #[error("archive {path} is corrupt or unreadable: {source}")]
    CorruptArchive {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// What was being done, to which path, and the io error: `reading: /x: …`.
    #[error(transparent)]
    Io(#[from] IoContext),

    #[error("no lease {0:?}")]
    LeaseNotFound(String),

    /// The GC met a document it cannot read on its way from a root: what the document links to
    /// is unknown, so the GC sweeps nothing.
    #[error(
        "the OCI GC stopped before sweeping anything: {document}, reached from {root}, cannot be \
         read ({reason}), so what it links to is unknown. {}",
        gc_next_step(ref_name.as_deref())
    )]
    GcUnreadableDocument {
        document: String,
        /// What led there: `ref NAME`, `lease ID`, `a referrer of DIGEST`.
        root: String,
        /// The ref, when a ref led there.
        ref_name: Option<String>,
        reason: String,
    },

    /// The GC waited its whole budget for a lock (DESIGN.md: a GC that cannot get its lock
    /// must not stall everyone else).
    #[error(
        "the OCI GC could not start: {holder} has held {} for {waited_secs} s; retry when it \
         finishes",
        lock.display()
    )]
    GcLockTimeout {
        lock: PathBuf,
        /// Who holds it: "a mutation (import, export, tag, lease)" or "another OCI GC".
        holder: &'static str,
        waited_secs: u64,
    },

    #[error("invalid argument: {0}")]
    Invalid(String),

    /// Rendering a root file system (`unpack`) failed; boxed like the store's error.
    #[error(transparent)]
    Render(Box<crate::stores::rootfs::RootfsError>),
}

impl OciError {
    pub(crate) fn document(context: impl Into<String>, reason: impl ToString) -> Self {
        OciError::InvalidDocument {
            context: context.into(),
            reason: reason.to_string(),
        }
    }
}

fn gc_next_step(ref_name: Option<&str>) -> String {
    let name = ref_name.unwrap_or("NAME");
    format!(
        "Run `oci-store check --verify {name}` to see the damage, then `oci-store fsck --repair` \
         (deletes corrupt blobs) or `oci-store rm --ref {name}`, and gc again"
    )
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
