//! oci-store: a local, content-addressable store for container images, safe for many
//! processes and threads at once. See docs/ARCHITECTURE.md.
//!
//! ```no_run
//! use oci_store::oci::ImportOptions;
//! use oci_store::{open_store, BackendChoice, OciStore, WriteOptions};
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
//!
//! The API is this page: the [`Store`] (blobs by digest, their index, extra data, the
//! key/value area, all-or-nothing [`Operation`]s, [`Store::gc`] and [`Store::fsck`]); the two
//! flavours over it, [`OciStore`] and [`AppcStore`], with their options and reports in [`oci`]
//! and [`appc`]; the registry client ([`pull`], [`push`]); one [`Progress`] observer for all
//! long work; and, for authors of storage backends, the traits in [`backend`].

// The public API (the re-exports below) is documented; the internals the test suites reach
// through `test-support` are not held to it.
#![cfg_attr(not(feature = "test-support"), deny(missing_docs))]

// The modules are private: the API is the list of re-exports below. The test suites
// (conformance, tests/, benches) reach the internals through the `test-support` feature.
#[cfg(feature = "test-support")]
pub mod backends;
#[cfg(not(feature = "test-support"))]
mod backends;
#[cfg(feature = "test-support")]
pub mod cli;
#[cfg(not(feature = "test-support"))]
mod cli;
#[cfg(feature = "test-support")]
pub mod crash_points;
#[cfg(not(feature = "test-support"))]
mod crash_points;
#[cfg(feature = "test-support")]
pub mod registry;
#[cfg(not(feature = "test-support"))]
mod registry;
mod serve;
#[cfg(feature = "test-support")]
pub mod store;
#[cfg(not(feature = "test-support"))]
mod store;
#[cfg(feature = "test-support")]
pub mod stores;
#[cfg(not(feature = "test-support"))]
mod stores;
#[cfg(feature = "test-support")]
pub mod traits;
#[cfg(not(feature = "test-support"))]
mod traits;

pub(crate) mod util;

// The store: blobs by digest, their index, extra data, the key/value area, operations.
pub use store::{
    default_store_dir, open_store, open_store_waiting, BackendChoice, FlavourLock, FsckOptions,
    FsckProblem, FsckReport, GcOptions, GcReport, HeldRead, Holder, HolderUsage, LockGuard,
    Operation, OperationCommit, StagedBlob, Store, StoreError, StoreResult, StoreStats,
    StoreWriter, WriteOptions,
};
pub use traits::{
    Algorithm, BlobRecord, Digest, DigestError, DigestPrefix, KvEntry, KvKey, KvOp, StorageError,
    StorageResult,
};
pub use util::io_context::{IoContext, IoResultExt};

// One progress observer for every long piece of work.
pub use store::{Direction, NoProgress, Progress, SkipReason, Totals, TransferEvent};

// The flavours.
pub use stores::appc::{AppcError, AppcResult, AppcStore};
pub use stores::oci::{OciError, OciResult, OciStore};

// The registry client.
pub use serve::{
    ApiError, MirrorSpec, PruneSchedule, ServeError, ServeOptions, ServeResult, ServerHandle,
};

/// The registry server ([`ServeOptions`]): [`serve::run`] blocks until a signal,
/// [`serve::serve`] starts it inside a tokio runtime and returns a [`ServerHandle`].
pub mod server {
    pub use crate::serve::{run, serve};
}

pub use registry::{
    pull, push, ClientOptions, Credentials, PullOptions, PullReport, PushOptions, PushReport,
    Reference, RegistryClient, RegistryError, RegistryResult,
};

/// The OCI flavour's options, reports and names: what [`OciStore`]'s methods take and return.
pub mod oci {
    pub use crate::stores::oci::{
        BlobSummary, CheckReport, Descriptor, ExportFormat, ExportReport, ExportTarget,
        HistoryEntry, ImageConfigSummary, ImportOptions, ImportReport, ImportedRef, IndexEntry,
        IndexSummary, Inspection, Lease, ManifestSummary, MissingBlob, Node, OciGcReport,
        OciPruneReport, Platform, PruneOptions, ReceivedManifest, RefInfo, RefName, RefUsage,
        RefsUsage, SparedRef, SweptBlob, UnpackOptions, UnpackReport, UnpackedLayer, FLAVOUR,
    };
}

/// The appc flavour's options, reports and names: what [`AppcStore`]'s methods take and
/// return.
pub mod appc {
    pub use crate::stores::appc::{
        AppcGcOptions, AppcGcReport, Dependency, DependencyReport, ExportReport, ImageInfo,
        ImageManifest, ImportOptions, ImportReport, Label, LabelQuery, MissingDependency,
        RemoteDecision, RemoteRecord, RemoveReport, RemovedImage, RenderReport, SortKey, Violation,
        FLAVOUR,
    };
}

/// Retention: the policies of a prune, its plan and the engine both flavours plan with (see
/// docs/ARCHITECTURE.md, "Retention").
pub mod retention {
    pub use crate::store::retention::{
        plan, Candidate, FreeSpace, FsSpace, Inventory, Plan, Protected, Reason, RetentionPolicy,
        Victim, Watermarks,
    };
}

/// What a new storage backend implements and registers (see docs/ARCHITECTURE.md, "Backends").
pub mod backend {
    pub use crate::traits::{
        BackendRegistration, BlobRead, BlobStore, BlobWriter, CompactDigests, Expected, ExtraData,
        ExtraOp, FormatHooks, FormatStatus, Index, KvOpOutcome, KvStore, RecordPages, Role,
        SortedDigests, StorageError, StorageResult,
    };
}

/// The `oci-store` command line, for the binary only: its internals are not library API.
#[doc(hidden)]
pub use cli::main_with as cli_main;
