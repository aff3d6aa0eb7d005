//! Errors of the base store layer.

use std::path::PathBuf;

use crate::traits::{Digest, StorageError};
use crate::util::io_context::IoContext;

/// Result of the base store's operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// What can go wrong in the base store: finding, writing, holding and deleting blobs, the
/// key/value area, locks, opening and configuring a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The storage backend (blob files, index, extra data or key/value database) failed.
    #[error(transparent)]
    Storage(#[from] StorageError),

    /// No blob matches this digest or digest prefix.
    #[error("no blob matches {0:?}")]
    NotFound(String),

    /// A key/value delete or update named an entry that does not exist; nothing was changed.
    #[error("no key/value entry {data_type}/{key}: nothing was removed")]
    EntryNotFound {
        /// The entry's data type (its namespace).
        data_type: String,
        /// The entry's key.
        key: String,
    },

    /// A digest prefix matches more than one blob; give more characters of the digest.
    #[error("{reference:?} is ambiguous: it matches {}{}", list_digests(candidates), if *more { ", ..." } else { "" })]
    Ambiguous {
        /// The prefix as given.
        reference: String,
        /// Some of the blobs it matches.
        candidates: Vec<Digest>,
        /// More candidates exist than listed.
        more: bool,
    },

    /// Extra data or a key/value entry was to be attached to a blob that is not in the store;
    /// write the blob first.
    #[error("cannot attach {what} to blob {digest}: it is not in the store")]
    MissingBlob {
        /// What was to be attached (extra data type or key/value entry).
        what: String,
        /// The blob's digest.
        digest: Digest,
    },

    /// A blob an operation held left the store before the operation committed (an explicit
    /// delete takes it whatever holds it): the operation committed nothing.
    #[error("blob {digest} left the store during the operation: nothing was committed, try again")]
    BlobVanished {
        /// Digest of the blob that left.
        digest: Digest,
    },

    /// A transfer was cancelled before it finished: nothing more was committed.
    #[error("cancelled: the transfer stopped before it finished")]
    Cancelled,

    /// A flavour's GC waited its whole budget for its lock (see `FlavourLock::gc`).
    #[error(
        "{} has been held for {waited_secs} s by {}; retry when it finishes",
        lock.display(),
        match holder {
            super::flavour_lock::FlavourLockHolder::AnotherGc => "another GC",
            super::flavour_lock::FlavourLockHolder::Mutations => "running mutations",
        }
    )]
    FlavourLockTimeout {
        /// The lock file.
        lock: PathBuf,
        /// Who holds it: another GC of the flavour, or its running mutations.
        holder: super::flavour_lock::FlavourLockHolder,
        /// How long the GC waited, in seconds.
        waited_secs: u64,
    },

    /// A lock file could not be opened, locked or unlocked.
    #[error("lock {path}: {source}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// What was being done, to which path, and the io error: `reading: /x: …`.
    #[error(transparent)]
    Io(#[from] IoContext),

    /// The store's configuration (`store.json`) is missing, unreadable or invalid.
    #[error("store configuration {path}: {reason}")]
    Config {
        /// Path of the configuration file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// The store was opened with a backend other than the one it was created with; convert it
    /// (`oci-store backend convert`) or open it with the recorded backend.
    #[error(
        "store {dir} keeps its {role} in {recorded:?}, not {requested:?}: \
         run `oci-store backend convert` to move it"
    )]
    BackendMismatch {
        /// The store directory.
        dir: PathBuf,
        /// Which part of the store: blobs, index, extra data or key/value area.
        role: &'static str,
        /// The backend the store records for that part.
        recorded: String,
        /// The backend asked for.
        requested: String,
    },

    /// Another process holds the store open and the action needs it alone (creating or
    /// converting a store); retry once the other process has closed it.
    #[error("store {dir} is in use by another process: {action} needs it alone")]
    Busy {
        /// The store directory.
        dir: PathBuf,
        /// What needed the store alone.
        action: String,
    },

    /// The store's on-disk format must be upgraded, which needs the store alone, but other
    /// processes keep it open; close them (they hold `store.lock`) and open it again.
    #[error(
        "{dir}: the store must be upgraded ({upgrade}); close the other processes using it \
         (they hold store.lock) and try again"
    )]
    UpgradeBlocked {
        /// The store directory.
        dir: PathBuf,
        /// The upgrade steps waiting, comma-separated.
        upgrade: String,
    },

    /// An argument is not accepted (an unknown or malformed value); the message says which.
    #[error("invalid argument: {0}")]
    Invalid(String),
}

fn list_digests(digests: &[Digest]) -> String {
    digests
        .iter()
        .map(Digest::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}
