//! Errors of the command-line layer: the library's, plus what only the tool can get wrong
//! (input files, writing to stdout, an entry the user asked for that is not there).

use std::error::Error;
use std::path::PathBuf;

use crate::store::StoreError;
use crate::stores::oci::OciError;
use crate::traits::{Digest, DigestError, StorageError};

pub type CliResult<T> = Result<T, CliError>;

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

    #[error("no store at {dir}: nothing has been stored there yet")]
    NoStore { dir: PathBuf },

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

    /// Exit status: 2 for a usage problem (arguments, config file, environment), else 1.
    pub fn exit_status(&self) -> u8 {
        match self {
            CliError::Config { .. } | CliError::Environment { .. } | CliError::Argument { .. } => 2,
            _ => 1,
        }
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
