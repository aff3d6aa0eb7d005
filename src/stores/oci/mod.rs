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
//! | import in flight | key/value `oci.import`/`<id>`; its blobs carry `owner.oci-import.<id>` |
//!
//! Mutations hold the flavour GC lock `gc-oci` shared for their whole run; [`OciStore::gc`]
//! takes it exclusive, so a GC never sweeps what an import is writing. The GC waits for it a
//! bounded time ([`OciStore::with_gc_lock_wait`]), then gives up with a clear error.

mod archive;
mod archive_source;
mod check;
mod descriptor;
mod error;
mod gc;
mod graph;
mod import_holds;
mod import_session;
mod layout;
pub mod layout_builder;
mod layout_export;
mod layout_import;
mod lease;
mod ref_name;
mod referrers;
mod refs;
mod source;
mod validate;

pub use check::{CheckReport, MissingBlob};
pub use error::{OciError, OciResult};
pub use gc::{OciGcReport, SweptBlob};
pub use graph::{DocumentKind, MAX_DOCUMENT_SIZE};
pub use import_session::{import_holder, IMPORT_DATA_TYPE, IMPORT_HOLDER_PREFIX};
pub use layout_export::ExportReport;
pub use layout_import::{ImportOptions, ImportReport, ImportedRef};
pub use lease::Lease;
pub use ref_name::RefName;
pub use refs::{RefInfo, PLATFORMS_FIELD};
pub use validate::MAX_INDEX_NESTING;

/// The descriptor type of the public API: the image-spec's own.
pub use oci_spec::image::Descriptor;

use std::path::Path;
use std::time::{Duration, Instant};

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

/// How long a GC waits for its locks by default before it gives up (see
/// [`OciStore::with_gc_lock_wait`]).
pub const DEFAULT_GC_LOCK_WAIT: Duration = Duration::from_secs(60);
/// Longest pause between two tries for a lock the GC polls.
const GC_LOCK_POLL_MAX: Duration = Duration::from_millis(50);

/// The OCI flavour over a borrowed base store. Cheap to create: it holds only the reference.
pub struct OciStore<'s, B, I, X, K> {
    store: &'s Store<B, I, X, K>,
    gc_lock_wait: Duration,
}

impl<'s, B: BlobStore, I: Index, X: ExtraData, K: KvStore> OciStore<'s, B, I, X, K> {
    pub fn new(store: &'s Store<B, I, X, K>) -> Self {
        OciStore {
            store,
            gc_lock_wait: DEFAULT_GC_LOCK_WAIT,
        }
    }

    /// How long [`OciStore::gc`] waits for running mutations to let go of the GC lock before
    /// it gives up with [`OciError::GcLockTimeout`] (default [`DEFAULT_GC_LOCK_WAIT`]).
    pub fn with_gc_lock_wait(mut self, wait: Duration) -> Self {
        self.gc_lock_wait = wait;
        self
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

    /// The flavour GC lock, exclusive: taken through the turnstile, which stays held while the
    /// running mutations drain, so new ones queue behind the GC (fairness). The wait is
    /// bounded: both locks are polled, and when [`OciStore::with_gc_lock_wait`] runs out the
    /// GC lets go of everything and fails, so one hung mutation (an import stuck reading its
    /// input) cannot freeze every OCI mutation of every process behind a waiting GC.
    fn gc_lock(&self) -> OciResult<LockGuard> {
        let started = Instant::now();
        let deadline = started + self.gc_lock_wait;
        let paths = self.store.lock_paths();
        let turnstile = poll_exclusive(
            &paths.named(GC_TURNSTILE),
            started,
            deadline,
            "another OCI GC",
        )?;
        let gc_lock = poll_exclusive(
            &paths.named(GC_LOCK),
            started,
            deadline,
            "a mutation (import, export, tag, lease)",
        )?;
        drop(turnstile);
        Ok(gc_lock)
    }
}

/// Tries for an exclusive lock until `deadline`, pausing a little longer each time (up to
/// [`GC_LOCK_POLL_MAX`]); [`OciError::GcLockTimeout`] naming `holder` when time runs out.
fn poll_exclusive(
    path: &Path,
    started: Instant,
    deadline: Instant,
    holder: &'static str,
) -> OciResult<LockGuard> {
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(guard) = LockGuard::try_acquire(path, LockMode::Exclusive)? {
            return Ok(guard);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(OciError::GcLockTimeout {
                lock: path.to_path_buf(),
                holder,
                waited_secs: now.duration_since(started).as_secs(),
            });
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(GC_LOCK_POLL_MAX);
    }
}
