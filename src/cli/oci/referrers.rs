//! `oci-store referrers DIGEST [--artifact-type T]`.

use std::process::ExitCode;

use clap::Args;

use super::digest_argument;
use crate::cli::error::CliResult;
use crate::cli::{Context, RunCommand};
use crate::stores::oci::OciStore;

/// Lists the manifests whose `subject` is DIGEST (signatures, SBOMs, attestations), one line
/// each: digest media-type size artifact-type.
#[derive(Debug, Args)]
pub struct ReferrersCommand {
    /// The subject: a full digest, or a unique prefix of a stored one
    digest: String,

    /// Only referrers of this artifact type
    #[arg(long, value_name = "TYPE")]
    artifact_type: Option<String>,
}

impl RunCommand for ReferrersCommand {
    fn run(self, context: &Context) -> CliResult<ExitCode> {
        let store = context.open_existing_store()?;
        let subject = digest_argument(&store, &self.digest)?;
        let referrers = OciStore::new(&store).referrers(&subject, self.artifact_type.as_deref())?;
        context.output().value(&referrers, |out| {
            for referrer in &referrers {
                let artifact_type = referrer
                    .artifact_type()
                    .as_ref()
                    .map_or_else(|| "-".to_string(), ToString::to_string);
                writeln!(
                    out,
                    "{} {} {} {artifact_type}",
                    referrer.digest(),
                    referrer.media_type(),
                    referrer.size()
                )?;
            }
            Ok(())
        })?;
        Ok(ExitCode::SUCCESS)
    }
}
