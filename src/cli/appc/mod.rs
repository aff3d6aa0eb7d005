//! `oci-store appc …`: the appc flavour's commands. Each opens the store, wraps it in
//! [`AppcStore`] and prints what the library returns.

mod gc;
mod images;
mod remote;

use std::process::ExitCode;

use clap::Subcommand;

use crate::cli::error::{CliError, CliResult};
use crate::cli::{Context, RunCommand};
use crate::stores::appc::AppcError;

/// ACI images (App Container spec): import, lookup, remote-cache records, dependencies,
/// export and GC by age.
#[derive(Debug, Subcommand)]
pub enum AppcCommand {
    /// Import ACI files (plain tar, gzip, bzip2 or xz), validated more strictly than actool
    Import(images::ImportCommand),
    /// Find the image of a name whose labels match (latest, then newest import, wins)
    Get(images::GetCommand),
    /// List images: id, name, version, import time, last used, size
    #[command(visible_alias = "list")]
    Ls(images::ListCommand),
    /// Show what the store knows of an image (no tar is read)
    Info(images::InfoCommand),
    /// Remote-cache records keyed by ACI URL
    #[command(subcommand)]
    Remote(remote::RemoteCommand),
    /// Check that every dependency of an image is stored, recursively
    Check(images::CheckCommand),
    /// Render an image and its dependencies into a root file system (cached, reused)
    Render(images::RenderCommand),
    /// Recompute the content hash of an image's rendered tree
    VerifyTree(images::VerifyTreeCommand),
    /// Export an image as an ACI file (the same image ID)
    Export(images::ExportCommand),
    /// Remove an image with its remote records and rendered trees
    Rm(images::RemoveCommand),
    /// Remove images unused for longer than the grace period
    Gc(gc::GcCommand),
}

impl RunCommand for AppcCommand {
    fn run(self, context: &Context) -> CliResult<ExitCode> {
        match self {
            AppcCommand::Import(command) => command.run(context),
            AppcCommand::Get(command) => command.run(context),
            AppcCommand::Ls(command) => command.run(context),
            AppcCommand::Info(command) => command.run(context),
            AppcCommand::Remote(command) => command.run(context),
            AppcCommand::Check(command) => command.run(context),
            AppcCommand::Render(command) => command.run(context),
            AppcCommand::VerifyTree(command) => command.run(context),
            AppcCommand::Export(command) => command.run(context),
            AppcCommand::Rm(command) => command.run(context),
            AppcCommand::Gc(command) => command.run(context),
        }
    }
}

impl From<AppcError> for CliError {
    fn from(error: AppcError) -> Self {
        CliError::Appc(Box::new(error))
    }
}

/// `k=v` from the command line.
fn parse_label(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{text:?} is not NAME=VALUE")),
    }
}
