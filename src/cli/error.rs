//! Errors of the command-line layer: the library's, plus what only the tool can get wrong
//! (input files, writing to stdout, an entry the user asked for that is not there).

use std::error::Error;
use std::path::PathBuf;

use crate::store::StoreError;
use crate::stores::oci::OciError;
use crate::traits::{Digest, DigestError, StorageError};

pub type CliResult<T> = Result<T, CliError>;

/// Exit status of `check` when the ref is incomplete (blobs missing or corrupt): a finding,
/// distinct from a failed command (1) and a usage error (2).
pub const EXIT_INCOMPLETE: u8 = 3;

/// What kind of failure an error is: `--json`'s `error.kind`, and it decides the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// A malformed or missing argument, reference, config file or environment value (exit 2).
    Usage,
    /// The ref, digest, entry, lease or image named is not there.
    NotFound,
    /// A digest prefix matches several blobs.
    Ambiguous,
    /// Another process holds a lock too long.
    Locked,
    /// The store's content does not match its index.
    Damaged,
    /// Any other failed operation.
    Failed,
}

impl ErrorKind {
    /// 2 for usage, 1 for every failed operation.
    pub fn exit_status(self) -> u8 {
        match self {
            ErrorKind::Usage => 2,
            _ => 1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Store(#[from] StoreError),

    #[error(transparent)]
    Oci(#[from] OciError),

    /// Boxed: the flavour's error is large and most results here are small.
    #[error(transparent)]
    Appc(Box<crate::stores::appc::AppcError>),

    #[error(transparent)]
    Digest(#[from] DigestError),

    /// Boxed, like the flavours' errors.
    #[error(transparent)]
    Registry(Box<crate::registry::RegistryError>),

    #[error(transparent)]
    Serve(#[from] crate::serve::ServeError),

    #[error("{context} {path}: {source}")]
    Input {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("writing output: {0}")]
    Output(#[source] std::io::Error),

    #[error("no {data_type} entry {key:?}")]
    DataNotFound { data_type: String, key: String },

    #[error("blob {digest} has no extra data {data_type:?}")]
    ExtraNotFound { digest: Digest, data_type: String },

    #[error("config file {path}, line {line}, key `{key}`: {message}")]
    Config {
        path: PathBuf,
        line: usize,
        key: String,
        message: String,
    },

    #[error("{argument}: {message}")]
    Argument {
        argument: &'static str,
        message: String,
    },

    #[error("environment variable {variable}: {message}")]
    Environment {
        variable: &'static str,
        message: String,
    },

    #[error("blob {digest} is in the index but its content is missing from the store")]
    ContentMissing { digest: Digest },

    /// An argument the user gave that does not parse (a ref name, digest, platform, registry
    /// reference): the library's error, reported as a usage error (exit status 2).
    #[error(transparent)]
    Usage(Box<CliError>),

    #[error(
        "the store is in use by another process that needs it alone (it holds {} \
         exclusively, as a backend conversion or upgrade does); waited {waited_ms} ms",
        lock.display()
    )]
    StoreLocked { lock: PathBuf, waited_ms: u64 },
}

impl From<crate::registry::RegistryError> for CliError {
    fn from(error: crate::registry::RegistryError) -> Self {
        CliError::Registry(Box::new(error))
    }
}

impl From<StorageError> for CliError {
    fn from(error: StorageError) -> Self {
        CliError::Store(StoreError::from(error))
    }
}

impl CliError {
    /// The reader of our output went away (`oci-store blob ls | head`): not worth a message.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, CliError::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }

    /// Marks an error found while parsing what the user typed as a usage error.
    pub fn usage(error: impl Into<CliError>) -> CliError {
        match error.into() {
            usage @ CliError::Usage(_) => usage,
            other => CliError::Usage(Box::new(other)),
        }
    }

    /// The error itself, under a [`CliError::Usage`] mark.
    pub fn inner(&self) -> &CliError {
        match self {
            CliError::Usage(inner) => inner.inner(),
            other => other,
        }
    }

    /// The flavour's error this is, also through the registry client's.
    pub(crate) fn oci_error(&self) -> Option<&OciError> {
        match self {
            CliError::Oci(error) => Some(error),
            CliError::Registry(error) => match &**error {
                crate::registry::RegistryError::Oci(error) => Some(error),
                _ => None,
            },
            _ => None,
        }
    }

    /// The base store's error this is, also through the flavours'.
    fn store_error(&self) -> Option<&StoreError> {
        match self {
            CliError::Store(error) => Some(error),
            _ => match self.oci_error() {
                Some(OciError::Store(error)) => Some(error),
                _ => None,
            },
        }
    }

    /// What kind of failure this is, for the exit status and `--json`'s `error.kind`.
    pub fn kind(&self) -> ErrorKind {
        use crate::stores::appc::AppcError;
        match self {
            CliError::Usage(_)
            | CliError::Config { .. }
            | CliError::Environment { .. }
            | CliError::Argument { .. }
            | CliError::Digest(_) => return ErrorKind::Usage,
            CliError::DataNotFound { .. } | CliError::ExtraNotFound { .. } => {
                return ErrorKind::NotFound
            }
            CliError::StoreLocked { .. } => return ErrorKind::Locked,
            CliError::ContentMissing { .. } => return ErrorKind::Damaged,
            CliError::Appc(error) => {
                return match **error {
                    AppcError::ImageNotFound(_) | AppcError::RemoteNotFound(_) => {
                        ErrorKind::NotFound
                    }
                    AppcError::AmbiguousKey { .. } => ErrorKind::Ambiguous,
                    AppcError::InvalidKey { .. } => ErrorKind::Usage,
                    _ => ErrorKind::Failed,
                }
            }
            _ => {}
        }
        match self.oci_error() {
            Some(OciError::DigestArgument(_)) => return ErrorKind::Usage,
            Some(OciError::RefNotFound(_) | OciError::LeaseNotFound(_)) => {
                return ErrorKind::NotFound
            }
            Some(OciError::GcLockTimeout { .. }) => return ErrorKind::Locked,
            _ => {}
        }
        match self.store_error() {
            Some(StoreError::Storage(StorageError::Digest(_))) => ErrorKind::Usage,
            Some(StoreError::NotFound(_) | StoreError::EntryNotFound { .. }) => ErrorKind::NotFound,
            Some(StoreError::Ambiguous { .. }) => ErrorKind::Ambiguous,
            _ => ErrorKind::Failed,
        }
    }

    /// Exit status: 2 for a usage problem (arguments, references, config file, environment),
    /// else 1.
    pub fn exit_status(&self) -> u8 {
        self.kind().exit_status()
    }

    /// The message and its chain of causes, each cause once: several variants already put
    /// their source in their own message, so a cause whose text is already there is skipped.
    pub fn report(&self) -> String {
        let mut message = self.to_string();
        let mut cause = self.source();
        while let Some(error) = cause {
            let text = error.to_string();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            cause = error.source();
        }
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::io_context::IoContext;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn report_adds_causes_not_already_in_the_message() {
        let store_error = StoreError::from(IoContext::new(
            "reading",
            "/x",
            std::io::Error::new(std::io::ErrorKind::NotFound, "gone"),
        ));
        assert_eq!(CliError::from(store_error).report(), "reading: /x: gone");

        let wrapped = CliError::Store(StoreError::Storage(crate::traits::StorageError::backend(
            "sqlite",
            "opening",
            Outer(std::io::Error::other("disk on fire")),
        )));
        assert_eq!(
            wrapped.report(),
            "sqlite backend: opening: outer: disk on fire"
        );
    }
}
