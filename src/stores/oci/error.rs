//! Errors of the OCI flavour. Every message names the ref, digest or path involved.

use std::path::PathBuf;

use crate::store::StoreError;
use crate::traits::{Digest, DigestError, StorageError};
use crate::util::io_context::IoContext;

/// Result of the OCI flavour's operations.
pub type OciResult<T> = Result<T, OciError>;

/// What can go wrong in the OCI flavour (refs, leases, layout import and export, unpack, GC).
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// Boxed: the base store's error is large and most results here are small.
    #[error(transparent)]
    Store(Box<StoreError>),

    /// A ref name breaks the naming rules; pick a name that follows them.
    #[error("invalid ref name {name:?}: {reason}")]
    InvalidRefName {
        /// The name as given.
        name: String,
        /// Which rule it breaks.
        reason: String,
    },

    /// No ref has this name; list the refs to see what the store holds.
    #[error("no ref named {0:?}")]
    RefNotFound(String),

    /// What the user typed to name a stored image reads as a digest or digest prefix but is
    /// not one (bad hex, too short, too long, unknown algorithm).
    #[error(transparent)]
    DigestArgument(DigestError),

    /// A digest named where an image is needed is a stored blob but not a manifest or index.
    #[error(
        "blob {digest} is {media_type}, not an image manifest or index: name a ref, or the \
         digest of a manifest or index (store one with `blob put --media-type` to use it so)"
    )]
    NotAnImage {
        /// The blob named.
        digest: Digest,
        /// Its media type.
        media_type: String,
    },

    /// A digest string in a document or argument does not parse.
    #[error("invalid digest {value:?} in {context}: {source}")]
    InvalidDigest {
        /// The text that should have been a digest.
        value: String,
        /// Where it was found (a document, a field or an argument).
        context: String,
        /// Why it does not parse.
        #[source]
        source: DigestError,
    },

    /// A manifest, index, image config or `index.json` is not the JSON its media type requires.
    #[error("{context}: malformed document: {reason}")]
    InvalidDocument {
        /// The document: its media type and digest, or its path.
        context: String,
        /// What is wrong with it (often the JSON parser's message).
        reason: String,
    },

    /// A manifest or index is larger than the store reads into memory; such a document is refused.
    #[error(
        "{media_type} {digest} is {size} bytes, over the {limit} byte limit for manifests and indexes"
    )]
    DocumentTooLarge {
        /// Digest of the document.
        digest: String,
        /// Media type of the document.
        media_type: String,
        /// Its size in bytes.
        size: u64,
        /// The largest size accepted, in bytes.
        limit: u64,
    },

    /// A blob an image needs is missing from the store or from the source being read; import the
    /// image again from a complete source.
    #[error("blob {digest} ({media_type}) is missing from {source_name}")]
    MissingBlob {
        /// Digest of the missing blob.
        digest: Digest,
        /// Media type the descriptor gives it.
        media_type: String,
        /// Where it was looked for (the store, a layout or an archive).
        source_name: String,
    },

    /// A blob in a layout or archive does not match its descriptor (wrong size or digest,
    /// unreadable); the source is damaged.
    #[error("blob {digest} at {path}: {reason}")]
    BadBlob {
        /// Digest the descriptor promises.
        digest: Digest,
        /// File the blob was read from.
        path: PathBuf,
        /// What does not match.
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
        /// Digest of the damaged blob.
        digest: Digest,
        /// Media type of the damaged blob.
        media_type: String,
        /// The ref being exported.
        reference: String,
        /// How the damage showed (size or digest mismatch, read error).
        reason: String,
    },

    /// A manifest, index or image config that breaks a rule of the image-spec.
    #[error("{media_type} {digest} breaks the image-spec: {rule}")]
    SpecViolation {
        /// Digest of the offending document.
        digest: Digest,
        /// Media type of the offending document.
        media_type: String,
        /// The rule it breaks.
        rule: String,
    },

    /// Copying a blob from a layout or archive into the store failed.
    #[error("importing blob {digest} from {path}: {source}")]
    BlobImport {
        /// Digest of the blob.
        digest: Digest,
        /// File it was read from.
        path: PathBuf,
        /// The store's error.
        #[source]
        source: Box<StoreError>,
    },

    /// A directory or archive lacks what an OCI image layout needs (`oci-layout`, `index.json`, a
    /// supported version).
    #[error("{path} is not an OCI image layout: {reason}")]
    NotALayout {
        /// The directory or archive.
        path: PathBuf,
        /// What is missing or wrong.
        reason: String,
    },

    /// The refs asked for in a layout import cannot be chosen: the ref is absent, ambiguous, or the
    /// layout has no named refs; name one of the refs the message lists.
    #[error("{path}: {reason}")]
    RefSelection {
        /// The layout or archive.
        path: PathBuf,
        /// Why no ref could be selected; lists the refs the layout has.
        reason: String,
    },

    /// An archive entry is refused because it could escape the extraction directory or is a kind of
    /// file a layout never needs (links, devices, absolute paths, `..`).
    #[error("archive {archive}: entry {entry:?} refused: {reason}")]
    UnsafeArchiveEntry {
        /// The archive.
        archive: PathBuf,
        /// Name of the refused entry (shortened when long).
        entry: String,
        /// Why it is refused.
        reason: String,
    },

    /// A member of an archive not named by digest (a Docker archive's config or layer) could
    /// not be streamed into the store.
    #[error("importing {path}: {source}")]
    MemberImport {
        /// The archive and member, `ARCHIVE:MEMBER`.
        path: PathBuf,
        /// The store's error.
        #[source]
        source: Box<StoreError>,
    },

    /// A Docker archive's `manifest.json` names a member that is not there, or one that is not
    /// what the image needs (a config whose name is not its digest, one without diff IDs);
    /// the archive is damaged or was not written by a `docker save`-like tool.
    #[error("archive {archive}: {member:?}, named by {named_by}: {reason}; nothing was imported")]
    DockerArchiveMember {
        /// The archive.
        archive: PathBuf,
        /// The member's name as `manifest.json` gives it.
        member: String,
        /// Where it is named: `manifest.json image N Config` or `… Layers[i]`.
        named_by: String,
        /// What is wrong, and what to do.
        reason: String,
    },

    /// A layer of a legacy Docker archive is not the layer its image config lists at its
    /// position: the uncompressed content hashes to another diff ID.
    #[error(
        "archive {archive}: layer {member:?} (position {position}) decompresses to {found}, but          the image config's rootfs.diff_ids lists {expected} there: the layer or the config is          damaged; nothing was imported, make the archive again and import that"
    )]
    LayerDiffIdMismatch {
        /// The archive.
        archive: PathBuf,
        /// The layer's name as `manifest.json` gives it.
        member: String,
        /// Its position among the image's layers (0 is the base).
        position: usize,
        /// The config's diff ID.
        expected: Digest,
        /// What the layer hashes to, uncompressed.
        found: Digest,
    },

    /// A layout path names a directory, symbolic link or special file where a regular file is
    /// expected.
    #[error("{path} is not a regular file: only regular files are read from a layout")]
    NotARegularFile {
        /// The offending path.
        path: PathBuf,
    },

    /// An archive exceeds a size limit of the import; raise the named limit if the archive is
    /// trusted.
    #[error(
        "archive {archive} has more than {limit} {what}: refused (raise the limit with \
         {flag}, ImportOptions::{option})"
    )]
    ArchiveLimit {
        /// The archive.
        archive: PathBuf,
        /// What is counted: `entries` or `bytes of content`.
        what: &'static str,
        /// The limit that was passed.
        limit: u64,
        /// Command-line flag that raises the limit.
        flag: &'static str,
        /// Field of `ImportOptions` that raises the limit.
        option: &'static str,
    },

    /// A manifest or index received from a client (a registry push) names a blob the store
    /// does not have; push the blob first, then the manifest (the distribution spec's
    /// `MANIFEST_BLOB_UNKNOWN`).
    #[error(
        "manifest {manifest} names blob {missing} ({media_type}), which the store does not \
         have: nothing was stored; push the blob first, then the manifest again"
    )]
    ManifestBlobUnknown {
        /// Digest of the received manifest or index.
        manifest: Digest,
        /// The first required blob it names that is missing.
        missing: Digest,
        /// The media type the manifest's descriptor gives that blob.
        media_type: String,
    },

    /// A manifest or index received from a client names a blob the store has, but under
    /// another size (or the stored copy does not match it): the manifest's descriptor is wrong.
    #[error(
        "manifest {manifest} names blob {blob}, but {reason}: nothing was stored; fix the \
         manifest's descriptor"
    )]
    ManifestBlobMismatch {
        /// Digest of the received manifest or index.
        manifest: Digest,
        /// The blob whose descriptor does not match the stored copy.
        blob: Digest,
        /// What does not match.
        reason: String,
    },

    /// A document received as a manifest has a media type that is not an image manifest,
    /// image index, Docker manifest (list) or artifact manifest.
    #[error(
        "media type {media_type:?} is not a manifest or index the store accepts (accepted: \
         {accepted}): nothing was stored"
    )]
    UnsupportedManifestMediaType {
        /// The media type as given.
        media_type: String,
        /// The media types accepted, comma-separated.
        accepted: String,
    },

    /// A blob the import had staged was removed from the store before the import committed (a
    /// concurrent GC or repair); run the import again.
    #[error("blob {digest} went from the store while an import held it: {reason}")]
    BlobVanished {
        /// Digest of the vanished blob.
        digest: Digest,
        /// What the store reported.
        reason: String,
    },

    /// A path inside a layout resolves outside the layout directory (through `..` or a symbolic
    /// link); the layout is refused.
    #[error("{path} leads outside the layout {root}")]
    PathOutsideLayout {
        /// The offending path.
        path: PathBuf,
        /// The layout directory.
        root: PathBuf,
    },

    /// An extended tar header (GNU long name or link, PAX header, sparse map) over its limit,
    /// refused before it was read.
    #[error("archive {archive}: {source}")]
    TarHeaderLimit {
        /// The archive.
        archive: PathBuf,
        /// Which header and limit.
        #[source]
        source: crate::stores::rootfs::TarHeaderError,
    },

    /// An archive cannot be read as (possibly compressed) tar; it is truncated or not an archive.
    #[error("archive {path} is corrupt or unreadable: {source}")]
    CorruptArchive {
        /// The archive.
        path: PathBuf,
        /// The reader's error.
        #[source]
        source: std::io::Error,
    },

    /// What was being done, to which path, and the io error: `reading: /x: …`.
    #[error(transparent)]
    Io(#[from] IoContext),

    /// No lease has this id; list the leases to see which exist.
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
        /// The document that could not be read (media type and digest).
        document: String,
        /// What led there: `ref NAME`, `lease ID`, `a referrer of DIGEST`.
        root: String,
        /// The ref, when a ref led there.
        ref_name: Option<String>,
        /// Why it could not be read.
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
        /// The lock file.
        lock: PathBuf,
        /// Who holds it: "a mutation (import, export, tag, lease)" or "another OCI GC".
        holder: &'static str,
        /// How long the GC waited, in seconds.
        waited_secs: u64,
    },

    /// An argument or combination of options is not accepted; the message says which.
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
