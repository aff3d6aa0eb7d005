//! The `fs` blob store: each blob is a plain file at `blobs/<alg>/<hex>` inside the store
//! directory, written through a locked staging file in `ingest/` and renamed into place.
//!
//! Plain files keep content readable by any tool (`cp`, `sha256sum`, an OCI layout exporter
//! hard-linking them) and make the kernel, not us, responsible for caching and streaming.

mod background_hasher;
mod blob_store;
mod filesystem_sync;
mod format;
mod ingest;
mod layout;
mod sorted_listing;
mod writer;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;

use crate::traits::{BackendRegistration, BlobStore, FormatHooks, StorageResult};

pub use blob_store::FsBlobStore;
#[cfg(feature = "test-support")]
pub use writer::FsBlobWriter;

/// The name this backend registers under.
pub const BACKEND_NAME: &str = "fs";

/// The registry opener: the `fs` blob store of the store directory `dir`.
pub fn open_blob_store(dir: &Path) -> StorageResult<Arc<dyn BlobStore>> {
    Ok(Arc::new(FsBlobStore::open(dir)?))
}

inventory::submit! {
    BackendRegistration {
        name: BACKEND_NAME,
        description: "Blob content as files under blobs/<alg>/<hex> (default)",
        blob_store: Some(open_blob_store),
        index: None,
        extra_data: None,
        kv_store: None,
        format: FormatHooks {
            status: format::status,
            back_up: format::back_up,
            upgrade: format::upgrade,
        },
    }
}
