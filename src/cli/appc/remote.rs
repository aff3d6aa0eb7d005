//! `appc remote set|get|ls|rm|decide|not-modified`: remote-cache records keyed by ACI URL.

use std::io::Write;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::cli::error::CliResult;
use crate::cli::output::unix_ms_as_rfc3339;
use crate::cli::{Context, RunCommand};
use crate::stores::appc::{AppcError, AppcStore, RemoteRecord};
use crate::util::clock::now_unix_ms;

#[derive(Debug, Subcommand)]
pub enum RemoteCommand {
    /// Record where an image came from (replaces the record of that URL)
    Set(SetCommand),
    /// Show the record of an ACI URL
    Get(UrlArgument),
    /// List every record
    Ls,
    /// Remove the record of an ACI URL
    Rm(UrlArgument),
    /// Say whether to use the cache, revalidate with the ETag, or fetch
    Decide(UrlArgument),
    /// A revalidation answered 304 Not Modified: the download counts as fresh from now
    NotModified(NotModifiedCommand),
}

#[derive(Debug, Args)]
pub struct SetCommand {
    /// The URL the ACI was downloaded from
    aci_url: String,
    /// The image it gave (ID, ID prefix or name)
    image: String,
    /// The URL of its signature, if one was downloaded
    #[arg(long)]
    signature_url: Option<String>,
    /// The ETag the server sent with it
    #[arg(long)]
    etag: Option<String>,
    /// Seconds the download may be used without asking again
    #[arg(long, default_value_t = 0)]
    max_age: u64,
}

#[derive(Debug, Args)]
pub struct UrlArgument {
    /// The ACI URL (the key of the record)
    aci_url: String,
}

#[derive(Debug, Args)]
pub struct NotModifiedCommand {
    /// The ACI URL that was revalidated
    aci_url: String,
    /// The server's new max age, in seconds
    #[arg(long)]
    max_age: Option<u64>,
}

fn print_record(out: &mut dyn Write, record: &RemoteRecord) -> std::io::Result<()> {
    writeln!(
        out,
        "{} {} downloaded {} max-age {}s etag {} signature {}",
        record.aci_url,
        record.image,
        unix_ms_as_rfc3339(record.download_time_ms),
        record.max_age_secs,
        record.etag.as_deref().unwrap_or("-"),
        record.signature_url.as_deref().unwrap_or("-"),
    )
}

impl RunCommand for RemoteCommand {
    fn run(self, context: &Context) -> CliResult<ExitCode> {
        let store = match &self {
            RemoteCommand::Set(_) => context.open_store()?,
            _ => context.open_existing_store()?,
        };
        let appc = AppcStore::new(&store);
        let output = context.output();
        match self {
            RemoteCommand::Set(set) => {
                appc.set_remote(&RemoteRecord {
                    aci_url: set.aci_url.clone(),
                    signature_url: set.signature_url,
                    etag: set.etag,
                    max_age_secs: set.max_age,
                    download_time_ms: now_unix_ms(),
                    image: set.image,
                })?;
                let record = appc
                    .get_remote(&set.aci_url)?
                    .ok_or_else(|| AppcError::RemoteNotFound(set.aci_url.clone()))?;
                output.value(&record, |out| print_record(out, &record))?;
            }
            RemoteCommand::Get(url) => {
                let record = appc
                    .get_remote(&url.aci_url)?
                    .ok_or(AppcError::RemoteNotFound(url.aci_url))?;
                output.value(&record, |out| print_record(out, &record))?;
            }
            RemoteCommand::Ls => {
                output.list(appc.list_remotes()?.into_iter().map(Ok), print_record)?;
            }
            RemoteCommand::Rm(url) => {
                if !appc.remove_remote(&url.aci_url)? {
                    return Err(AppcError::RemoteNotFound(url.aci_url).into());
                }
                output.value(&url.aci_url, |out| writeln!(out, "removed {}", url.aci_url))?;
            }
            RemoteCommand::Decide(url) => {
                let decision = appc.remote_decision(&url.aci_url, now_unix_ms())?;
                output.value(&decision, |out| {
                    writeln!(
                        out,
                        "{}",
                        serde_json::to_string(&decision).unwrap_or_default()
                    )
                })?;
            }
            RemoteCommand::NotModified(command) => {
                let record = appc.remote_not_modified(&command.aci_url, command.max_age)?;
                output.value(&record, |out| print_record(out, &record))?;
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
