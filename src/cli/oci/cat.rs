//! `oci-store cat REF|DIGEST`: the manifest or index a ref names, or any blob, as stored.

use std::process::ExitCode;

use clap::Args;

use crate::cli::blob::copy_blob_to_stdout;
use crate::cli::error::{CliError, CliResult};
use crate::cli::{Context, RunCommand};
use crate::stores::oci::{OciError, OciStore};
use crate::traits::Digest;

/// Writes the document a ref names (its manifest or index), or the blob of a digest or unique
/// digest prefix, to standard output as stored (the bytes its digest covers).
#[derive(Debug, Args)]
pub struct CatCommand {
    /// A ref, or a digest (or unique prefix) of a stored blob
    #[arg(value_name = "REF|DIGEST")]
    reference: String,
}

impl RunCommand for CatCommand {
    fn run(self, context: &Context) -> CliResult<ExitCode> {
        let store = context.open_existing_store()?;
        let digest = match OciStore::new(&store).get_ref(&self.reference) {
            Ok(descriptor) => Digest::parse(descriptor.digest().as_ref())?,
            // Not a ref: a digest, if it is one; else the ref error, with its suggestion.
            Err(OciError::RefNotFound(name)) => match store.resolve(&self.reference) {
                Ok(digest) => digest,
                Err(_) => return Err(CliError::Oci(OciError::RefNotFound(name))),
            },
            Err(OciError::InvalidRefName { .. }) => store.resolve(&self.reference)?,
            Err(other) => return Err(other.into()),
        };
        copy_blob_to_stdout(context, &store, &digest)?;
        Ok(ExitCode::SUCCESS)
    }
}
