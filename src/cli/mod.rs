//! The `oci-store` command-line tool: argument parsing and printing only. Every behaviour lives
//! in the library; a command resolves its arguments, calls the store and prints the result.
//!
//! Adding a command group is two steps: a file here with a clap type that implements
//! [`RunCommand`], and one line in the `commands!` list below (the variant and its doc comment).

mod appc;
mod backend;
mod blob;
mod data;
mod error;
mod extra;
mod maintenance;
mod oci;
mod output;
mod registry;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser};

pub use error::{CliError, CliResult};
pub use output::Output;

use crate::store::{default_store_dir, open_store, BackendChoice, DynStore};
use crate::traits::Role;

/// A local, content-addressable, multi-process store for container images.
#[derive(Debug, Parser)]
#[command(name = "oci-store", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOptions,

    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts, before or after its name.
#[derive(Debug, Clone, Args)]
pub struct GlobalOptions {
    /// Store directory [default: $OCI_STORE_DIR, else $XDG_DATA_HOME/oci-store, else
    /// ~/.local/share/oci-store]
    #[arg(long, global = true, value_name = "DIR")]
    pub store: Option<PathBuf>,

    /// Backend of every metadata role (index, extra data, key/value), e.g. sqlite or lmdb.
    /// Chooses it for a new store; must match what an existing store records.
    #[arg(long, global = true, value_name = "NAME")]
    pub backend: Option<String>,

    /// Backend of blob content, e.g. fs. Chooses it for a new store; must match what an
    /// existing store records.
    #[arg(long, global = true, value_name = "NAME")]
    pub blobs: Option<String>,

    /// Print one JSON document instead of text
    #[arg(long, global = true)]
    pub json: bool,
}

/// One command group or command. Each runs with the [`Context`] built from the global options.
pub trait RunCommand {
    /// Runs the command; the exit code is success unless the command reports a finding (such
    /// as `fsck` with problems left) rather than failing.
    fn run(self, context: &Context) -> CliResult<ExitCode>;
}

/// Declares [`Command`] and its dispatch from one list, so a new command group is one line.
macro_rules! commands {
    ($( $(#[$meta:meta])* $variant:ident($command:ty), )*) => {
        #[derive(Debug, clap::Subcommand)]
        pub enum Command {
            $( $(#[$meta])* $variant($command), )*
        }

        impl RunCommand for Command {
            fn run(self, context: &Context) -> CliResult<ExitCode> {
                match self {
                    $( Command::$variant(command) => command.run(context), )*
                }
            }
        }
    };
}

commands! {
    /// Import an OCI image layout, oci-archive or pre-1.0 layout
    Import(oci::ImportCommand),
    /// Export a ref as an OCI image layout or oci-archive
    Export(oci::ExportCommand),
    /// List refs: name, digest, media type, size, platforms
    List(oci::ListCommand),
    /// Name what another ref (or a stored manifest's digest) names
    Tag(oci::TagCommand),
    /// Remove a ref (its blobs go at the next gc)
    Rm(oci::RemoveCommand),
    /// Check that every blob a ref reaches is present (and, with --verify, intact)
    Check(oci::CheckCommand),
    /// Render an image's root file system into a new directory, every layer verified
    Unpack(oci::UnpackCommand),
    /// List the manifests whose subject is a digest
    Referrers(oci::ReferrersCommand),
    /// Protect blobs from gc across processes for a while
    #[command(subcommand)]
    Lease(oci::LeaseCommand),
    /// Remove unreachable images, then unindexed content, dead writes and orphaned data
    Gc(oci::GcCommand),
    /// Store, read, find and delete blobs
    #[command(subcommand)]
    Blob(blob::BlobCommand),
    /// Key/value entries, optionally referencing a blob (removed with it)
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Extra data attached to a blob (removed with it)
    #[command(subcommand)]
    Extra(extra::ExtraCommand),
    /// Rehash every blob and cross-check content, index and data
    Fsck(maintenance::FsckCommand),
    /// Count blobs, bytes and data entries
    Stats(maintenance::StatsCommand),
    /// Show or convert the backends a store uses
    #[command(subcommand)]
    Backend(backend::BackendCommand),
    /// Pull an image from a registry into the store (all or nothing)
    Pull(registry::PullCommand),
    /// Push a ref to a registry
    Push(registry::PushCommand),
    /// Record credentials for a registry in the Docker config
    Login(registry::LoginCommand),
    /// Forget the credentials for a registry
    Logout(registry::LogoutCommand),
    /// ACI images (App Container spec) in the same store
    #[command(subcommand)]
    Appc(appc::AppcCommand),
}

/// What every command needs: where the store is, which backends were asked for, how to print.
#[derive(Debug)]
pub struct Context {
    store_dir: PathBuf,
    backend_choice: BackendChoice,
    output: Output,
}

impl Context {
    pub fn from_options(options: &GlobalOptions) -> Context {
        let mut backend_choice = BackendChoice::default();
        if let Some(name) = &options.backend {
            backend_choice = backend_choice.metadata(name);
        }
        if let Some(name) = &options.blobs {
            backend_choice = backend_choice.role(Role::Blobs, name);
        }
        Context {
            store_dir: options.store.clone().unwrap_or_else(default_store_dir),
            backend_choice,
            output: Output::new(options.json),
        }
    }

    /// Opens (or creates) the store. Commands open it themselves so that those which need no
    /// store, or need it alone, can do otherwise.
    pub fn open_store(&self) -> CliResult<DynStore> {
        Ok(open_store(&self.store_dir, &self.backend_choice)?)
    }

    pub fn store_dir(&self) -> &std::path::Path {
        &self.store_dir
    }

    pub fn backend_choice(&self) -> &BackendChoice {
        &self.backend_choice
    }

    pub fn output(&self) -> &Output {
        &self.output
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> CliResult<ExitCode> {
    let context = Context::from_options(&cli.global);
    cli.command.run(&context)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_follow_the_command() {
        let cli = Cli::try_parse_from(["oci-store", "stats", "--json", "--store", "/tmp/s"])
            .expect("parses");
        assert!(cli.global.json);
        assert_eq!(cli.global.store, Some(PathBuf::from("/tmp/s")));
    }

    #[test]
    fn the_original_clients_commands_parse_verbatim() {
        for line in [
            "import --sref latest --dref nginx:latest DIR",
            "list",
            "export --sref nginx:latest --dref latest OUT",
            "rm --ref nginx:latest",
            "gc",
        ] {
            let args = std::iter::once("oci-store").chain(line.split(' '));
            if let Err(error) = Cli::try_parse_from(args) {
                panic!("{line:?} does not parse: {error}");
            }
        }
    }

    #[test]
    fn backend_options_choose_roles() {
        let cli = Cli::try_parse_from(["oci-store", "--backend", "lmdb", "--blobs", "fs", "gc"])
            .expect("parses");
        let context = Context::from_options(&cli.global);
        let roles = &context.backend_choice().roles;
        assert_eq!(roles.get(&Role::Index).map(String::as_str), Some("lmdb"));
        assert_eq!(roles.get(&Role::Kv).map(String::as_str), Some("lmdb"));
        assert_eq!(roles.get(&Role::Blobs).map(String::as_str), Some("fs"));
    }
}
