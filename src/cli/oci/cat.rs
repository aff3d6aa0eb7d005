//! `oci-store cat REF|DIGEST`: the manifest or index a ref names, or any blob, as stored.

use std::process::ExitCode;

use clap::Args;

use crate::cli::blob::copy_blob_to_stdout;
use crate::cli::error::CliResult;
use crate::cli::{Context, RunCommand};
use crate::stores::oci::OciStore;

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
        let digest = OciStore::new(&store)
            .resolve_stored(&self.reference)?
            .digest;
        copy_blob_to_stdout(context, &store, &digest)?;
        Ok(ExitCode::SUCCESS)
    }
}
