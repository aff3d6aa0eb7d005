//! The OCI flavour: named refs to descriptors, import and export of OCI image layouts (v1.x
//! directories, `oci-archive` tars, pre-1.0 layouts), reachability checks, referrers, leases and
//! garbage collection of what no ref, lease or live referrer reaches.
//!
//! Everything is generic over the base store [`Store<B, I, X, K>`](crate::store::Store); the
//! flavour keeps its state in the base store only:
//!
//! | what | where |
//! | --- | --- |
//! | ref `name` | key/value `oci.ref`/`name`, value = descriptor JSON, references the manifest |
//! | referrer | key/value `oci.referrer`/`<subject>/<referrer>`, references the referrer |
//! | lease | key/value `oci.lease`/`<id>`, value = `{expires_unix_ms, digests}` |
//! | ownership | owner mark `oci` (extra data `owner.oci`) on every blob the flavour wrote |
//!
//! Mutations hold the flavour GC lock `gc-oci` shared for their whole run; [`OciStore::gc`]
//! takes it exclusive, so a GC never sweeps what an import is writing.

mod archive;
mod check;
mod descriptor;
mod error;
mod gc;
mod graph;
mod layout;
pub mod layout_builder;
mod layout_export;
mod layout_import;
mod lease;
mod ref_name;
mod referrers;
mod refs;
mod source;
mod unpack;

pub use check::{CheckReport, MissingBlob};
pub use error::{OciError, OciResult};
pub use gc::{OciGcReport, SweptBlob};
pub use graph::{DocumentKind, MAX_DOCUMENT_SIZE};
pub use layout_export::ExportReport;
pub use layout_import::{ImportOptions, ImportReport, ImportedRef};
pub use lease::Lease;
pub use ref_name::RefName;
pub use refs::RefInfo;
pub use unpack::{Platform, UnpackOptions, UnpackReport, UnpackedLayer};

/// The descriptor type of the public API: the image-spec's own.
pub use oci_spec::image::Descriptor;

use crate::store::{LockGuard, LockMode, Store};
use crate::traits::{BlobStore, ExtraData, Index, KvStore};

/// Owner mark this flavour puts on the blobs it holds.
pub const FLAVOUR: &str = "oci";
/// Named lock: shared by every mutation of the flavour, exclusive by its GC.
pub const GC_LOCK: &str = "gc-oci";
/// Lock a GC holds while it waits for [`GC_LOCK`], so mutations arriving meanwhile wait.
pub const GC_TURNSTILE: &str = "gc-oci-turnstile";
/// Key/value data type of refs.
pub const REF_DATA_TYPE: &str = "oci.ref";
/// Key/value data type of the referrers index.
pub const REFERRER_DATA_TYPE: &str = "oci.referrer";
/// Key/value data type of leases.
pub const LEASE_DATA_TYPE: &str = "oci.lease";

/// The OCI flavour over a borrowed base store. Cheap to create: it holds only the reference.
pub struct OciStore<'s, B, I, X, K> {
    store: &'s Store<B, I, X, K>,
}

impl<'s, B: BlobStore, I: Index, X: ExtraData, K: KvStore> OciStore<'s, B, I, X, K> {
    pub fn new(store: &'s Store<B, I, X, K>) -> Self {
        OciStore { store }
    }

    /// The base store underneath.
    pub fn store(&self) -> &'s Store<B, I, X, K> {
        self.store
    }

    /// The flavour GC lock, shared: held by mutations so a GC waits for them. Entered through
    /// the turnstile (held only for the moment of entry): a GC waiting for the GC lock holds
    /// the turnstile, so new mutations queue behind it instead of starving it (flock grants
    /// shared locks while an exclusive one waits). Never taken twice by one call chain.
    fn mutation_lock(&self) -> OciResult<LockGuard> {
        let turnstile = self.store.named_lock(GC_TURNSTILE, LockMode::Shared)?;
        let gc_lock = self.store.named_lock(GC_LOCK, LockMode::Shared)?;
        drop(turnstile);
        Ok(gc_lock)
    }

    /// The flavour GC lock, exclusive: taken through the turnstile, which stays held until the
    /// running mutations have drained and the GC lock is ours.
    fn gc_lock(&self) -> OciResult<LockGuard> {
        let turnstile = self.store.named_lock(GC_TURNSTILE, LockMode::Exclusive)?;
        let gc_lock = self.store.named_lock(GC_LOCK, LockMode::Exclusive)?;
        drop(turnstile);
        Ok(gc_lock)
    }
}
