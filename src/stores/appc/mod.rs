//! The appc flavour: ACI images (App Container spec) over the base store: import (plain tar,
//! gzip, bzip2, xz) with validation stricter than actool, lookup by ID prefix or by name and
//! labels, image info and last-used tracking, remote-cache records, dependency checks, export,
//! removal and GC by age.
//!
//! Everything is generic over the base store [`Store`](crate::store::Store); the
//! flavour keeps its state in the base store only:
//!
//! | what | where |
//! | --- | --- |
//! | image | the uncompressed tar as a blob; its sha512 is the image ID (`sha512-<hex>`) |
//! | ownership | owner mark `appc` (extra data `owner.appc`) on every image blob |
//! | image info | extra data `appc.info` of the image blob (JSON [`ImageInfo`]) |
//! | last used | the store's last-use record of the image blob (extra data `store.last-used`, decimal Unix ms, `Store::record_use`); stores written before it kept `appc.last-used`, still read |
//! | remote record | key/value `appc.remote`/`<ACI URL>`, value JSON [`RemoteRecord`], references the image |
//!
//! Mutations hold the flavour GC lock `gc-appc` shared for their whole run; [`AppcStore::gc`]
//! takes it exclusive (bounded wait), through the turnstile `gc-appc-turnstile`: the base
//! store's [`FlavourLock`](crate::store::FlavourLock) protocol, shared with the OCI flavour. Work on one image (writing its info, removing it) is serialised by the image
//! lock `appc-image-NN` (NN: the ID's first hex byte).

mod archive;
mod deps;
mod error;
mod export;
#[cfg(feature = "test-support")]
pub mod fuzzing;
mod gc;
mod import;
mod info;
mod lookup;
mod manifest;
mod remote;
mod remove;
mod render;
mod syntax;

pub use deps::{DependencyReport, MissingDependency};
pub use error::{AppcError, AppcResult};
pub use export::ExportReport;
pub use gc::{AppcGcOptions, AppcGcReport, RemovedImage};
pub use import::{ImportOptions, ImportReport};
pub use info::ImageInfo;
pub use lookup::{LabelQuery, SortKey};
pub use manifest::{Dependency, ImageManifest, Label, Violation};
pub use remote::{RemoteDecision, RemoteRecord};
pub use remove::RemoveReport;
pub use render::RenderReport;
// What the test suites reach besides the public API.
#[cfg(feature = "test-support")]
pub use crate::util::clock::now_unix_ms;
#[cfg(feature = "test-support")]
pub use {
    archive::Compression,
    manifest::{parse_image_id, KNOWN_ISOLATORS, MAX_MANIFEST_SIZE, OS_ARCH_TABLE},
    syntax::is_ac_identifier,
};

use std::time::Duration;

use crate::store::{Holder, LockGuard, LockMode, Store};
use crate::traits::Digest;

/// The flavour's name: of its holder, its locks, its tree store.
pub const FLAVOUR: &str = "appc";
/// The holder of this flavour's image blobs (owner mark `owner.appc`).
pub const HOLDER: Holder = Holder::flavour(FLAVOUR);
/// How long a GC (or `rm`) waits for running mutations by default before it gives up (see
/// [`AppcStore::with_gc_lock_wait`]).
pub const DEFAULT_GC_LOCK_WAIT: Duration = Duration::from_secs(60);
/// Extra-data type of the image info.
pub const INFO_TYPE: &str = "appc.info";
/// Extra-data type of the last-used time as versions before the store's own last-use records
/// wrote it: still read (the later of it and the store's record counts), no longer written.
pub const LEGACY_LAST_USED_TYPE: &str = "appc.last-used";
/// Key/value data type of remote-cache records.
pub const REMOTE_DATA_TYPE: &str = "appc.remote";
/// Media type recorded in the index for image blobs.
pub const ACI_MEDIA_TYPE: &str = "application/vnd.appc.aci+tar";

/// The appc flavour over a borrowed base store. Cheap to create: it holds only the reference.
pub struct AppcStore<'s> {
    store: &'s Store,
    gc_lock_wait: Duration,
    /// Where `render` reports its progress (nothing unless [`AppcStore::with_progress`]).
    progress: &'s dyn crate::store::Progress,
}

impl<'s> AppcStore<'s> {
    /// The appc flavour over `store`, with no progress reporting and the default GC lock wait
    /// (60 s).
    pub fn new(store: &'s Store) -> Self {
        AppcStore {
            store,
            gc_lock_wait: DEFAULT_GC_LOCK_WAIT,
            progress: &crate::store::NO_PROGRESS,
        }
    }

    /// Reports the progress of long work (rendering) to `progress`.
    pub fn with_progress(mut self, progress: &'s dyn crate::store::Progress) -> Self {
        self.progress = progress;
        self
    }

    /// How long GC and `rm` wait for running mutations to let go of the flavour GC lock
    /// before they give up (default 60 s, `DEFAULT_GC_LOCK_WAIT`).
    pub fn with_gc_lock_wait(mut self, wait: Duration) -> Self {
        self.gc_lock_wait = wait;
        self
    }

    /// The base store underneath.
    pub fn store(&self) -> &'s Store {
        self.store
    }

    /// The flavour GC lock `gc-appc`, shared, for a mutation's whole run (the base store's
    /// [`FlavourLock`](crate::store::FlavourLock) protocol). Never taken twice by one call
    /// chain.
    fn mutation_lock(&self) -> AppcResult<LockGuard> {
        Ok(self.store.flavour_lock(FLAVOUR).mutation()?)
    }

    /// The flavour GC lock, exclusive, waiting at most [`AppcStore::with_gc_lock_wait`] for
    /// running mutations (new ones queue behind it meanwhile).
    fn gc_lock(&self) -> AppcResult<LockGuard> {
        Ok(self.store.flavour_lock(FLAVOUR).gc(self.gc_lock_wait)?)
    }

    /// Serialises work on one image across processes: writing its info, removing it. Striped
    /// by the ID's first byte (256 lock files at most).
    fn image_lock(&self, digest: &Digest) -> AppcResult<LockGuard> {
        Ok(self.store.named_lock(
            &format!("appc-image-{}", &digest.hex()[..2]),
            LockMode::Exclusive,
        )?)
    }
}
