//! `oci-store lease create [--ttl SECS] [DIGEST...]`, `lease ls`, `lease rm ID`.

use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use serde::Serialize;

use super::digest_argument;
use crate::cli::error::CliResult;
use crate::cli::output::unix_ms_as_rfc3339;
use crate::cli::{Context, RunCommand};
use crate::stores::oci::{Lease, OciStore};

/// How long a lease lives when --ttl is not given: long enough for a multi-step job, short
/// enough that a crashed one does not pin its blobs for days.
const DEFAULT_TTL_SECONDS: u64 = 3600;

#[derive(Debug, Subcommand)]
pub enum LeaseCommand {
    /// Protect blobs from the OCI GC until the lease expires or is removed; prints its id
    Create {
        /// Lifetime in seconds
        #[arg(long, value_name = "SECS", default_value_t = DEFAULT_TTL_SECONDS)]
        ttl: u64,
        /// Blobs to protect (and what they reach): full digests, which need not be stored
        /// yet, or unique prefixes of stored ones
        digests: Vec<String>,
    },
    /// List leases, expired ones included (the next gc removes those)
    #[command(visible_alias = "list")]
    Ls,
    /// Remove a lease
    Rm {
        /// Lease id, as `lease create` printed it
        id: String,
    },
}

/// A lease with its expiry readable and whether it has passed.
#[derive(Debug, Serialize)]
struct LeaseJson<'a> {
    #[serde(flatten)]
    lease: &'a Lease,
    expires: String,
    expired: bool,
}

impl<'a> LeaseJson<'a> {
    fn new(lease: &'a Lease) -> LeaseJson<'a> {
        LeaseJson {
            lease,
            expires: unix_ms_as_rfc3339(lease.expires_unix_ms),
            expired: lease.is_expired(),
        }
    }
}

impl RunCommand for LeaseCommand {
    fn run(self, context: &Context) -> CliResult<ExitCode> {
        // Only a new lease may create the store; listing or removing reads what is there.
        let store = match &self {
            LeaseCommand::Create { .. } => context.open_store()?,
            _ => context.open_existing_store()?,
        };
        let oci = OciStore::new(&store);
        match self {
            LeaseCommand::Create { ttl, digests } => {
                let digests = digests
                    .iter()
                    .map(|text| digest_argument(&store, text))
                    .collect::<CliResult<Vec<_>>>()?;
                let lease = oci.lease_create(Duration::from_secs(ttl), &digests)?;
                context
                    .output()
                    .value(&LeaseJson::new(&lease), |out| writeln!(out, "{}", lease.id))?;
            }
            LeaseCommand::Ls => {
                let leases = oci.lease_list()?;
                let items = leases.iter().map(|lease| Ok(LeaseJson::new(lease)));
                context.output().list(items, |out, item| {
                    let state = if item.expired { "expired" } else { "expires" };
                    writeln!(
                        out,
                        "{} {state} {} digests: {}",
                        item.lease.id,
                        item.expires,
                        item.lease.digests.len()
                    )?;
                    for digest in &item.lease.digests {
                        writeln!(out, "  {digest}")?;
                    }
                    Ok(())
                })?;
            }
            LeaseCommand::Rm { id } => {
                oci.lease_remove(&id)?;
                context
                    .output()
                    .value(&serde_json::json!({ "removed": id }), |out| {
                        writeln!(out, "removed lease {id}")
                    })?;
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
