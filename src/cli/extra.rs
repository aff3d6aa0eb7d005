//! `oci-store extra …`: extra data attached to a blob, deleted with it.

use std::process::ExitCode;

use clap::Subcommand;
use serde::Serialize;

use super::error::{CliError, CliResult};
use super::output::{Output, ValueJson};
use super::{Context, RunCommand};
use crate::traits::Digest;

#[derive(Debug, Subcommand)]
pub enum ExtraCommand {
    /// Attach (or replace) one item of extra data
    Set {
        /// Digest or unique digest prefix of the blob
        reference: String,
        /// Data type, such as `last-used`
        data_type: String,
        /// Value to store (text)
        value: String,
    },
    /// Print one item of extra data
    Get {
        /// Digest or unique digest prefix of the blob
        reference: String,
        /// Data type, such as `last-used`
        data_type: String,
    },
    /// Remove one item of extra data
    Rm {
        /// Digest or unique digest prefix of the blob
        reference: String,
        /// Data type, such as `last-used`
        data_type: String,
    },
}

/// One item in JSON; `value` is absent for `rm`.
#[derive(Debug, Serialize)]
struct ExtraJson<'a> {
    digest: &'a Digest,
    data_type: &'a str,
    #[serde(flatten)]
    value: Option<ValueJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    removed: Option<bool>,
}

impl RunCommand for ExtraCommand {
    fn run(self, context: &Context) -> CliResult<ExitCode> {
        // Extra data is attached to a stored blob: without a store there is none to attach to.
        let store = context.open_existing_store()?;
        let output = context.output();
        match self {
            ExtraCommand::Set {
                reference,
                data_type,
                value,
            } => {
                let digest = store.resolve(&reference)?;
                store.set_extra(&digest, &data_type, value.as_bytes())?;
                let json = ExtraJson {
                    digest: &digest,
                    data_type: &data_type,
                    value: Some(ValueJson::new(value.as_bytes())),
                    removed: None,
                };
                output.value(&json, |out| writeln!(out, "set {data_type} on {digest}"))?;
            }
            ExtraCommand::Get {
                reference,
                data_type,
            } => {
                let digest = store.resolve(&reference)?;
                let value = store.get_extra(&digest, &data_type)?.ok_or_else(|| {
                    CliError::ExtraNotFound {
                        digest: digest.clone(),
                        data_type: data_type.clone(),
                    }
                })?;
                let json = ExtraJson {
                    digest: &digest,
                    data_type: &data_type,
                    value: Some(ValueJson::new(&value)),
                    removed: None,
                };
                output.value(&json, |out| Output::write_value_bytes(out, &value))?;
            }
            ExtraCommand::Rm {
                reference,
                data_type,
            } => {
                let digest = store.resolve(&reference)?;
                if !store.remove_extra(&digest, &data_type)? {
                    return Err(CliError::ExtraNotFound { digest, data_type });
                }
                let json = ExtraJson {
                    digest: &digest,
                    data_type: &data_type,
                    value: None,
                    removed: Some(true),
                };
                output.value(&json, |out| {
                    writeln!(out, "removed {data_type} from {digest}")
                })?;
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
