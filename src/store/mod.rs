//! The base store `Store`: locking, write/verify, operations, transfers,
//! cascade delete, resolve, base GC, fsck; and opening a store directory from its `store.json`.

mod base;
mod blobs;
pub mod config;
mod convert;
mod data;
mod data_batch;
mod delete;
mod dump;
mod error;
mod flavour_lock;
mod fsck;
pub mod fsutil;
mod gc;
mod held_read;
mod holder;
mod last_used;
pub mod locks;
mod media_type;
mod open;
mod operation;
pub mod progress;
pub mod retention;
mod staged;
mod stats;
mod transfer;
mod upgrade;
mod usage;

pub use base::Store;
pub use blobs::StoreWriter;
pub use blobs::{validate_media_type, WriteOptions};
pub use config::StoreConfig;
pub use convert::convert_store;
pub use delete::{Holders, Release};
pub use error::{StoreError, StoreResult};
pub use flavour_lock::{FlavourLock, FlavourLockHolder};
pub use fsck::{FsckOptions, FsckProblem, FsckReport};
pub use gc::{GcOptions, GcReport};
pub use held_read::HeldRead;
pub use holder::Holder;
pub use last_used::DEFAULT_LAST_USED_INTERVAL;
pub use locks::{LockGuard, LockMode};
pub use open::{default_store_dir, lock_if_unused, open_store, open_store_waiting, BackendChoice};
pub use operation::{Arrival, Committed, Operation, OperationCommit, StaleOperation};
pub use progress::{
    Direction, NoProgress, Progress, ProgressRead, SkipReason, Totals, TransferEvent, NO_PROGRESS,
};
pub use staged::StagedBlob;
pub use stats::StoreStats;
pub use transfer::{commit_batch, Pipeline, Worker};
pub use usage::{BlobsAndBytes, HolderUsage};
// What the test suites reach besides the public API.
#[cfg(feature = "test-support")]
pub use {
    config::FORMAT_VERSION, convert::ConversionReport, dump::StoreDump, last_used::LAST_USED_TYPE,
    operation::OPERATION_DATA_TYPE, upgrade::UPGRADE_WAIT,
};
