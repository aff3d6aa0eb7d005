//! oci-store: a local, content-addressable store for container images, safe for many
//! processes and threads at once. See docs/ARCHITECTURE.md.

pub mod backends;
pub mod cli;
pub mod store;
pub mod stores;
pub mod traits;

pub use store::{
    open_store, BackendChoice, DynStore, Store, StoreError, StoreResult, WriteOptions,
};
pub use traits::{BlobRecord, Digest, DigestPrefix};
