//! The appc flavour: ACI images (App Container spec) over the base store: import (plain tar,
//! gzip, bzip2, xz) with validation stricter than actool, lookup by ID prefix or by name and
//! labels, image info and last-used tracking, remote-cache records, dependency checks, export,
//! removal and GC by age.
//!
//! Everything is generic over the base store [`Store<B, I, X, K>`](crate::store::Store); the
//! flavour keeps its state in the base store only:
//!
//! | what | where |
//! | --- | --- |
//! | image | the uncompressed tar as a blob; its sha512 is the image ID (`sha512-<hex>`) |
//! | ownership | owner mark `appc` (extra data `owner.appc`) on every image blob |
//! | image info | extra data `appc.info` of the image blob (JSON [`ImageInfo`]) |
//! | last used | extra data `appc.last-used` of the image blob (decimal Unix ms) |
//! | remote record | key/value `appc.remote`/`<ACI URL>`, value JSON [`RemoteRecord`], references the image |
//!
//! Mutations hold the flavour GC lock `gc-appc` shared for their whole run; [`AppcStore::gc`]
//! takes it exclusive, through the turnstile `gc-appc-turnstile` (the protocol of the OCI
//! flavour). Work on one image (writing its info, removing it) is serialised by the image
//! lock `appc-image-NN` (NN: the ID's first hex byte).

mod archive;
mod deps;
mod error;
mod export;
mod gc;
mod import;
mod info;
mod lookup;
mod manifest;
mod remote;
mod remove;
mod render;
mod syntax;

pub use archive::Compression;
pub use deps::{DependencyReport, MissingDependency};
pub use error::{AppcError, AppcResult};
pub use export::ExportReport;
pub use gc::{AppcGcOptions, AppcGcReport, RemovedImage};
pub use import::{ImportOptions, ImportReport};
pub use info::{now_unix_ms, ImageInfo};
pub use lookup::{LabelQuery, SortKey};
pub use manifest::{
    parse_image_id, Dependency, ImageManifest, Label, Violation, KNOWN_ISOLATORS,
    MAX_MANIFEST_SIZE, OS_ARCH_TABLE,
};
pub use remote::{RemoteDecision, RemoteRecord};
pub use remove::RemoveReport;
pub use render::RenderReport;
pub use syntax::is_ac_identifier;

use crate::store::{LockGuard, LockMode, Store};
use crate::traits::{BlobStore, Digest, ExtraData, Index, KvStore};

/// Owner mark this flavour puts on its image blobs.
pub const FLAVOUR: &str = "appc";
/// Named lock: shared by every mutation of the flavour, exclusive by its GC.
pub const GC_LOCK: &str = "gc-appc";
/// Lock a GC holds while it waits for [`GC_LOCK`], so mutations arriving meanwhile wait.
pub const GC_TURNSTILE: &str = "gc-appc-turnstile";
/// Extra-data type of the image info.
pub const INFO_TYPE: &str = "appc.info";
/// Extra-data type of the last-used time.
pub const LAST_USED_TYPE: &str = "appc.last-used";
/// Key/value data type of remote-cache records.
pub const REMOTE_DATA_TYPE: &str = "appc.remote";
/// Media type recorded in the index for image blobs.
pub const ACI_MEDIA_TYPE: &str = "application/vnd.appc.aci+tar";

/// The appc flavour over a borrowed base store. Cheap to create: it holds only the reference.
pub struct AppcStore<'s, B, I, X, K> {
    store: &'s Store<B, I, X, K>,
}

impl<'s, B: BlobStore, I: Index, X: ExtraData, K: KvStore> AppcStore<'s, B, I, X, K> {
    pub fn new(store: &'s Store<B, I, X, K>) -> Self {
        AppcStore { store }
    }

    /// The base store underneath.
    pub fn store(&self) -> &'s Store<B, I, X, K> {
        self.store
    }

    /// The flavour GC lock, shared, entered through the turnstile (see the OCI flavour's
    /// `mutation_lock`: a waiting GC holds the turnstile so new mutations queue behind it).
    /// Never taken twice by one call chain.
    fn mutation_lock(&self) -> AppcResult<LockGuard> {
        let turnstile = self.store.named_lock(GC_TURNSTILE, LockMode::Shared)?;
        let gc_lock = self.store.named_lock(GC_LOCK, LockMode::Shared)?;
        drop(turnstile);
        Ok(gc_lock)
    }

    /// The flavour GC lock, exclusive: the turnstile stays held until running mutations have
    /// drained and the GC lock is ours.
    fn gc_lock(&self) -> AppcResult<LockGuard> {
        let turnstile = self.store.named_lock(GC_TURNSTILE, LockMode::Exclusive)?;
        let gc_lock = self.store.named_lock(GC_LOCK, LockMode::Exclusive)?;
        drop(turnstile);
        Ok(gc_lock)
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
