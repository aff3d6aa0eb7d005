//! Errors of the base store layer.

use std::path::PathBuf;

use crate::traits::{Digest, StorageError};
use crate::util::io_context::IoContext;

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Storage(#[from] StorageError),

    #[error("no blob matches {0:?}")]
    NotFound(String),

    #[error("no key/value entry {data_type}/{key}: nothing was removed")]
    EntryNotFound { data_type: String, key: String },

    #[error("{reference:?} is ambiguous: it matches {}{}", list_digests(candidates), if *more { ", ..." } else { "" })]
    Ambiguous {
        reference: String,
        candidates: Vec<Digest>,
        /// More candidates exist than listed.
        more: bool,
    },

    #[error("cannot attach {what} to blob {digest}: it is not in the store")]
    MissingBlob { what: String, digest: Digest },

    /// A blob an operation held left the store before the operation committed (an explicit
    /// delete takes it whatever holds it): the operation committed nothing.
    #[error("blob {digest} left the store during the operation: nothing was committed, try again")]
    BlobVanished { digest: Digest },

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
        lock: PathBuf,
        holder: super::flavour_lock::FlavourLockHolder,
        waited_secs: u64,
    },

    #[error("lock {path}: {source}")]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// What was being done, to which path, and the io error: `reading: /x: …`.
    #[error(transparent)]
    Io(#[from] IoContext),

    #[error("store configuration {path}: {reason}")]
    Config { path: PathBuf, reason: String },

    #[error(
        "store {dir} keeps its {role} in {recorded:?}, not {requested:?}: \
         run `oci-store backend convert` to move it"
    )]
    BackendMismatch {
        dir: PathBuf,
        role: &'static str,
        recorded: String,
        requested: String,
    },

    #[error("store {dir} is in use by another process: {action} needs it alone")]
    Busy { dir: PathBuf, action: String },

    #[error(
        "{dir}: the store must be upgraded ({upgrade}); close the other processes using it \
         (they hold store.lock) and try again"
    )]
    UpgradeBlocked { dir: PathBuf, upgrade: String },

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
