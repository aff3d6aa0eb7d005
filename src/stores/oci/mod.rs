//! The OCI flavour: named refs to descriptors, import and export of OCI image layouts (v1.x
//! directories, `oci-archive` tars, pre-1.0 layouts), reachability checks, referrers, leases and
//! garbage collection of what no ref, lease or live referrer reaches.
//!
//! Everything is generic over the base store [`Store`](crate::store::Store); the
//! flavour keeps its state in the base store only:
//!
//! | what | where |
//! | --- | --- |
//! | ref `name` | key/value `oci.ref`/`name`, value = descriptor JSON, references the manifest |
//! | referrer | key/value `oci.referrer`/`<subject>/<referrer>`, references the referrer |
//! | lease | key/value `oci.lease`/`<id>`, value = `{expires_unix_ms, digests}` |
//! | upload received (`serve`), manifest pushed by digest only | a lease as above whose entry also references the blob (it goes with the blob) |
//! | ownership | owner mark `oci` (extra data `owner.oci`) on every blob the flavour wrote |
//! | import or pull in flight | a base-store operation: key/value `store.operation`/`oci-op.<id>`; its blobs carry `owner.oci-op.<id>` (versions before it: `oci.import`/`<id>`, `owner.oci-import.<id>`, still cleared by the GC) |
//!
//! Mutations hold the flavour GC lock `gc-oci` shared for their whole run; [`OciStore::gc`]
//! takes it exclusive, so a GC never sweeps what an import is writing. The GC waits for it a
//! bounded time ([`OciStore::with_gc_lock_wait`]), then gives up with a clear error.

mod archive;
mod archive_source;
mod check;
mod descriptor;
mod docker_archive;
mod error;
#[cfg(feature = "test-support")]
pub mod fuzzing;
mod gc;
mod graph;
mod import_commit;
mod import_staging;
mod inspect;
mod layout;
#[cfg(any(test, feature = "test-support"))]
pub mod layout_builder;
mod layout_export;
mod layout_import;
mod lease;
mod links;
mod mirror_cache;
mod prune;
mod receive;
mod ref_name;
mod referrers;
mod refs;
mod resolve;
mod source;
mod unpack;
mod usage;
mod validate;

pub use check::{CheckReport, MissingBlob};
pub use error::{OciError, OciResult};
pub use gc::{OciGcReport, SweptBlob};
pub use graph::{DocumentKind, MAX_DOCUMENT_SIZE};
pub use import_commit::{IMPORT_DATA_TYPE, IMPORT_HOLDER_KIND};
pub use inspect::{
    BlobSummary, HistoryEntry, ImageConfigSummary, IndexEntry, IndexSummary, Inspection,
    ManifestSummary, Node,
};
pub use layout_export::{ExportFormat, ExportReport, ExportTarget};
pub use layout_import::{ImportOptions, ImportReport, ImportedRef};
pub use lease::Lease;
// For the suites that remove a record to show the GC reads the document instead.
#[cfg(any(test, feature = "test-support"))]
pub use links::LINKS_DATA_TYPE;
pub use prune::{OciPruneReport, PruneOptions, SparedRef};
pub use receive::{ReceivedManifest, UploadOperation};
pub use ref_name::RefName;
pub use refs::RefInfo;
pub use unpack::{Platform, UnpackOptions, UnpackReport, UnpackedLayer};
pub use usage::{RefUsage, RefsUsage};
// What the test suites reach besides the public API.
#[cfg(feature = "test-support")]
pub use {import_commit::import_holder, refs::PLATFORMS_FIELD, validate::MAX_INDEX_NESTING};

// For the registry client (`crate::registry`), which pulls through the same operation, walker
// and commit as a layout import.
pub(crate) use descriptor::{digest_of, media_type_of, new_descriptor};
pub(crate) use graph::{verify_document, Child, ContentSource, Fetched, Reached, Walker};
pub(crate) use source::StoreSource;

/// The descriptor type of the public API: the image-spec's own.
pub use oci_spec::image::Descriptor;

use std::time::Duration;

use crate::store::{
    FlavourLockHolder, Holder, LockGuard, Progress, Store, StoreError, NO_PROGRESS,
};

/// The flavour's name: of its holder, its locks.
pub const FLAVOUR: &str = "oci";
/// The holder of the blobs this flavour keeps (owner mark `owner.oci`).
pub const HOLDER: Holder = Holder::flavour(FLAVOUR);
#[cfg(feature = "test-support")]
/// The flavour GC lock's name (`locks/gc-oci.lock`, [`crate::store::FlavourLock`]'s naming:
/// `gc-<flavour>`): shared by every mutation of the flavour, exclusive by its GC.
pub const GC_LOCK: &str = "gc-oci";
#[cfg(feature = "test-support")]
/// The turnstile a GC holds while it waits for [`GC_LOCK`] (`gc-<flavour>-turnstile`).
pub const GC_TURNSTILE: &str = "gc-oci-turnstile";
/// Key/value data type of refs.
pub const REF_DATA_TYPE: &str = "oci.ref";
/// Key/value data type of the referrers index.
pub const REFERRER_DATA_TYPE: &str = "oci.referrer";
/// Key/value data type of leases.
pub const LEASE_DATA_TYPE: &str = "oci.lease";

/// How long a GC waits for its locks by default before it gives up (see
/// [`OciStore::with_gc_lock_wait`]).
pub const DEFAULT_GC_LOCK_WAIT: Duration = Duration::from_secs(60);

/// The OCI flavour over a borrowed base store. Cheap to create: it holds only the reference.
pub struct OciStore<'s> {
    store: &'s Store,
    gc_lock_wait: Duration,
    /// Where import, export, gc and unpack report their progress ([`NoProgress`](crate::store::NoProgress) unless
    /// [`OciStore::with_progress`] says otherwise).
    progress: &'s dyn Progress,
}

impl<'s> OciStore<'s> {
    /// The OCI flavour over `store`, with no progress reporting and the default GC lock wait
    /// (60 s).
    pub fn new(store: &'s Store) -> Self {
        OciStore {
            store,
            gc_lock_wait: DEFAULT_GC_LOCK_WAIT,
            progress: &NO_PROGRESS,
        }
    }

    /// Reports the progress of long work (import, export, gc, unpack) to `progress`.
    pub fn with_progress(mut self, progress: &'s dyn Progress) -> Self {
        self.progress = progress;
        self
    }

    /// How long [`OciStore::gc`] waits for running mutations to let go of the GC lock before
    /// it gives up with [`OciError::GcLockTimeout`] (default 60 s, `DEFAULT_GC_LOCK_WAIT`).
    pub fn with_gc_lock_wait(mut self, wait: Duration) -> Self {
        self.gc_lock_wait = wait;
        self
    }

    /// The base store underneath.
    pub fn store(&self) -> &'s Store {
        self.store
    }

    /// The flavour GC lock, shared: held by every mutation for its whole run, so a GC waits
    /// for it (the base store's [`FlavourLock`](crate::store::FlavourLock) protocol, entered through the turnstile).
    /// Never taken twice by one call chain.
    pub(crate) fn mutation_lock(&self) -> OciResult<LockGuard> {
        Ok(self.store.flavour_lock(FLAVOUR).mutation()?)
    }

    /// The flavour GC lock, exclusive: waits at most [`OciStore::with_gc_lock_wait`] for the
    /// running mutations to drain (new ones queue behind it), then gives up with
    /// [`OciError::GcLockTimeout`], so one hung import cannot freeze every OCI mutation.
    fn gc_lock(&self) -> OciResult<LockGuard> {
        self.store
            .flavour_lock(FLAVOUR)
            .gc(self.gc_lock_wait)
            .map_err(|error| match error {
                StoreError::FlavourLockTimeout {
                    lock,
                    holder,
                    waited_secs,
                } => OciError::GcLockTimeout {
                    lock,
                    holder: match holder {
                        FlavourLockHolder::AnotherGc => "another OCI GC",
                        FlavourLockHolder::Mutations => "a mutation (import, export, tag, lease)",
                    },
                    waited_secs,
                },
                other => other.into(),
            })
    }
}
