//! The base-store traits, their record types, digests and the trait-layer error. No I/O here:
//! backends in `src/backends/` implement these, `src/store/` composes them.

mod blob_store;
mod digest;
mod error;
mod extra_data;
mod index;
mod kv_store;
pub mod registry;
mod sorted_digests;

pub use blob_store::{BlobRead, BlobStore, BlobWriter, Expected};
pub use digest::{Algorithm, Digest, DigestPrefix, Hasher};
pub use error::{DigestError, StorageError, StorageResult};
pub use extra_data::{ExtraData, ExtraOp};
pub use index::{BlobRecord, Index, IndexTotals, RecordPages, DEFAULT_MEDIA_TYPE};
pub use kv_store::{KvEntry, KvKey, KvOp, KvOpOutcome, KvStore};
pub use registry::{BackendRegistration, FormatHooks, FormatStatus, Role};
pub use sorted_digests::{CompactDigests, SortedDigests};
// What the test suites reach besides the public API.
#[cfg(feature = "test-support")]
pub use {extra_data::MAX_EXTRA_DATA_TYPE_LEN, sorted_digests::DIGEST_PAGE};
