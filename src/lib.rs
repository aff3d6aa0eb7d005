//! oci-store: a local, content-addressable store for container images, safe for many
//! processes and threads at once. See docs/ARCHITECTURE.md.
//!
//! ```no_run
//! use oci_store::store::{open_store, BackendChoice, WriteOptions};
//! use oci_store::stores::oci::{ImportOptions, OciStore};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = open_store("/var/lib/my-tool/store".as_ref(), &BackendChoice::default())?;
//! let record = store.write(std::fs::File::open("layer.tar")?, &WriteOptions::default())?;
//! let digest = store.resolve(&record.digest.hex()[..12])?; // partial digests resolve
//! let oci = OciStore::new(&store);
//! oci.import_layout("image-layout".as_ref(), &ImportOptions { all: true, ..Default::default() })?;
//! oci.gc(false)?;
//! # let _ = digest;
//! # Ok(())
//! # }
//! ```

pub mod backends;
pub mod cli;
pub mod crash_points;
pub mod registry;
pub mod store;
pub mod stores;
pub mod traits;
pub(crate) mod util;

pub use store::{open_store, BackendChoice, Store, StoreError, StoreResult, WriteOptions};
pub use traits::{BlobRecord, Digest, DigestPrefix};
pub use util::io_context::{IoContext, IoResultExt};
