//! The `oci-store` command-line tool: argument parsing and printing only. Every behaviour lives
//! in the library; a command resolves its arguments, calls the store and prints the result.
//!
//! Adding a command group is two steps: a file here with a clap type that implements
//! [`RunCommand`], and one line in the `commands!` list below (the variant and its doc comment).

mod appc;
mod backend;
pub(crate) mod blob;
mod config_file;
mod config_show;
mod data;
mod duration;
mod error;
mod examples;
mod extra;
mod hints;
mod maintenance;
mod oci;
mod output;
pub mod progress;
mod prune_policy;
pub mod reference;
mod registry;
mod serve;
pub mod settings;
pub mod transfer_bars;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, FromArgMatches, Parser};

pub use error::{CliError, CliResult, ErrorKind, EXIT_INCOMPLETE};
pub use output::Output;

pub use settings::Settings;
#[cfg(any(test, feature = "test-support"))]
pub use settings::Source;

use crate::store::{open_store, BackendChoice, LockGuard, LockMode, Progress, Store, StoreConfig};

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
    /// Store directory [default: $OCI_STORE_DIR, else `store` in the config file, else
    /// $XDG_DATA_HOME/oci-store, else ~/.local/share/oci-store]
    #[arg(long, global = true, value_name = "DIR")]
    pub store: Option<PathBuf>,

    /// Backend of every metadata role (index, extra data, key/value), e.g. sqlite or lmdb.
    /// Chooses it for a new store; must match what an existing store records
    /// [default: $OCI_STORE_BACKEND, else the config file, else sqlite]
    #[arg(long, global = true, value_name = "NAME")]
    pub backend: Option<String>,

    /// Backend of blob content, e.g. fs. Chooses it for a new store; must match what an
    /// existing store records [default: $OCI_STORE_BLOBS, else the config file, else fs]
    #[arg(long, global = true, value_name = "NAME")]
    pub blobs: Option<String>,

    /// Config file [default: $OCI_STORE_CONFIG, else
    /// $XDG_CONFIG_HOME/oci-store/config.toml, else ~/.config/oci-store/config.toml]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Print one JSON document instead of text
    #[arg(long, global = true)]
    pub json: bool,

    /// No progress bars and no notes on stderr; errors are still reported
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Say more on stderr: the store and config file in use (repeat for more)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
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
    /// Import an OCI image layout, oci-archive, Docker archive or pre-1.0 layout (`-`: stdin)
    Import(oci::ImportCommand),
    /// Export a ref as an OCI image layout, oci-archive or docker-archive (`-`: stdout)
    Export(oci::ExportCommand),
    /// List refs: name, digest, media type, size, platforms
    #[command(visible_alias = "ls")]
    List(oci::ListCommand),
    /// Name what another ref (or a stored manifest's digest) names
    Tag(oci::TagCommand),
    /// Remove refs (their blobs go at the next gc)
    #[command(visible_alias = "rmi")]
    Rm(oci::RemoveCommand),
    /// Print the manifest or index a ref names, or any blob, as stored
    Cat(oci::CatCommand),
    /// Show what an image is: descriptor, manifest per platform, config summary, layers
    Inspect(oci::InspectCommand),
    /// Show where the space goes: total, per ref unique and shared, per flavour, reclaimable
    Du(oci::DuCommand),
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
    /// Remove refs by retention policy (age, keep-last, size budget, free space), least
    /// recently used first, then collect what they alone reached
    Prune(oci::PruneCommand),
    /// Pin refs: no prune removes them
    Pin(oci::PinCommand),
    /// Unpin refs
    Unpin(oci::UnpinCommand),
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
    /// Serve the store as an OCI registry (pull; push with --push) until SIGINT/SIGTERM
    Serve(serve::ServeCommand),
    /// Push a ref to a registry
    Push(registry::PushCommand),
    /// Record credentials for a registry (through the credential helper the Docker config names, else in that file)
    Login(registry::LoginCommand),
    /// Forget the credentials for a registry
    Logout(registry::LogoutCommand),
    /// ACI images (App Container spec) in the same store
    #[command(subcommand)]
    Appc(appc::AppcCommand),
    /// The settings in force: config file, environment, flags
    #[command(subcommand)]
    Config(config_show::ConfigCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions(reference::CompletionsCommand),
    /// Write man pages for every command into a directory
    Man(reference::ManCommand),
}

/// What every command needs: the settings in force, which backends were asked for, how to
/// print.
#[derive(Debug)]
pub struct Context {
    settings: Settings,
    backend_choice: BackendChoice,
    output: Output,
    quiet: bool,
    verbose: u8,
    /// The empty store a reading command sees when there is no store: made in a temporary
    /// directory (removed when the command ends), never at the store's path.
    empty_store: std::sync::OnceLock<tempfile::TempDir>,
    /// What this command created to make a new store, removed again if the command fails and
    /// the store is still unused ([`Context::remove_store_if_created_and_unused`]).
    created: std::sync::Mutex<Option<CreatedStore>>,
}

/// A store this command created: the topmost directory it made (the store's own, or an
/// ancestor), or, when the store's directory was already there, the names it held before.
#[derive(Debug)]
struct CreatedStore {
    remove: PathBuf,
    entries_before: Option<Vec<std::ffi::OsString>>,
}

/// How long a wait for the store lock goes unmentioned.
const NOTE_LOCK_WAIT_AFTER_MS: u64 = 1000;

/// Whether a command may create the store when there is none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reading or tidying: a missing store reads as an empty one, and is not created.
    Existing,
    /// Storing something: the first such command creates the store.
    CreateIfMissing,
}

impl Context {
    /// Resolves the settings (flags, environment, config file, defaults).
    pub fn from_options(options: &GlobalOptions) -> CliResult<Context> {
        let settings = Settings::resolve(options)?;
        Ok(Context::from_settings(settings, options))
    }

    pub fn from_settings(settings: Settings, options: &GlobalOptions) -> Context {
        Context {
            backend_choice: settings.backend_choice(),
            settings,
            output: Output::new(options.json),
            quiet: options.quiet,
            verbose: options.verbose,
            empty_store: std::sync::OnceLock::new(),
            created: std::sync::Mutex::new(None),
        }
    }

    /// Opens the store, creating it if it does not exist yet (commands that store something).
    pub fn open_store(&self) -> CliResult<Store> {
        self.open_store_for(Access::CreateIfMissing)
    }

    /// Opens an existing store; reading commands never create one: without a store they see
    /// an empty one, as `docker images` lists nothing on a new machine.
    pub fn open_existing_store(&self) -> CliResult<Store> {
        self.open_store_for(Access::Existing)
    }

    /// Whether the store directory has no store (no `store.json`).
    pub fn store_is_missing(&self) -> bool {
        let config = StoreConfig::path(self.store_dir());
        matches!(std::fs::symlink_metadata(config), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
    }

    /// An empty store in a temporary directory, with the backends asked for: what a reading
    /// command sees when there is no store.
    fn empty_store(&self) -> CliResult<Store> {
        let dir = match self.empty_store.get() {
            Some(dir) => dir,
            None => {
                let made = tempfile::Builder::new()
                    .prefix("oci-store-empty-")
                    .tempdir()
                    .map_err(|source| CliError::Input {
                        context: "creating a temporary empty store in",
                        path: std::env::temp_dir(),
                        source,
                    })?;
                self.empty_store.get_or_init(|| made)
            }
        };
        Ok(open_store(dir.path(), &self.backend_choice)?)
    }

    /// After a failed command: removes the store it created, when nothing was stored in it and
    /// no other process has it open (tried under the exclusive store lock), so a failed `pull`
    /// or `import` into a new directory leaves nothing behind.
    pub fn remove_store_if_created_and_unused(&self) {
        let Some(created) = self.created.lock().ok().and_then(|mut c| c.take()) else {
            return;
        };
        let dir = self.store_dir();
        let Ok(Some(_exclusive)) = crate::store::lock_if_unused(dir) else {
            return;
        };
        match &created.entries_before {
            None => {
                let _ = std::fs::remove_dir_all(&created.remove);
            }
            Some(before) => {
                for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                    if !before.contains(&entry.file_name()) {
                        let path = entry.path();
                        let _ = if path.is_dir() {
                            std::fs::remove_dir_all(&path)
                        } else {
                            std::fs::remove_file(&path)
                        };
                    }
                }
            }
        }
    }

    pub fn open_store_for(&self, access: Access) -> CliResult<Store> {
        let dir = self.store_dir();
        // Only "not there" means no store; a store this user may not look into goes on to
        // fail opening, with the permission error and its path.
        let missing = |path: &std::path::Path| matches!(std::fs::symlink_metadata(path), Err(e) if e.kind() == std::io::ErrorKind::NotFound);
        let config = StoreConfig::path(dir);
        self.note(1, || {
            format!("store {} ({})", dir.display(), self.settings.store.source)
        });
        self.note(1, || {
            let file = &self.settings.config;
            match &file.path {
                Some(path) if file.loaded => format!("config file {} (read)", path.display()),
                Some(path) => format!("config file {} (not present)", path.display()),
                None => "no config file".to_string(),
            }
        });
        if missing(&config) {
            match access {
                Access::Existing => {
                    self.note(1, || {
                        format!(
                            "no store at {} ({}): reading it as an empty one",
                            dir.display(),
                            self.settings.store.source
                        )
                    });
                    return self.empty_store();
                }
                Access::CreateIfMissing => self.remember_creation(dir),
            }
        }
        if !missing(&config) {
            self.wait_for_store_lock(dir)?;
        }
        let store = open_store(dir, &self.backend_choice)?;
        self.note(2, || match StoreConfig::read(dir) {
            Ok(Some(config)) => {
                let backends: Vec<String> = config
                    .backends
                    .iter()
                    .map(|(role, name)| format!("{role}={name}"))
                    .collect();
                format!(
                    "store format {}, backends {}",
                    config.format_version,
                    backends.join(" ")
                )
            }
            _ => "store.json not readable".to_string(),
        });
        self.note(2, || {
            format!(
                "lock_wait {} ms ({}), gc.lock_wait {} ms ({})",
                self.settings.lock_wait_ms.value,
                self.settings.lock_wait_ms.source,
                self.settings.gc_lock_wait_ms.value,
                self.settings.gc_lock_wait_ms.source
            )
        });
        let interval = u64::try_from(self.settings.last_used_interval_ms.value).unwrap_or(0);
        store.set_last_used_interval(std::time::Duration::from_millis(interval));
        Ok(store)
    }

    /// Notes what creating the store at `dir` will make, so a failed command can take it back.
    fn remember_creation(&self, dir: &std::path::Path) {
        let mut remove = dir.to_path_buf();
        while let Some(parent) = remove.parent() {
            if parent.as_os_str().is_empty() || parent.exists() {
                break;
            }
            remove = parent.to_path_buf();
        }
        let entries_before = if dir.exists() {
            Some(
                std::fs::read_dir(dir)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|entry| entry.file_name())
                    .collect(),
            )
        } else {
            None
        };
        if let Ok(mut created) = self.created.lock() {
            created.get_or_insert(CreatedStore {
                remove,
                entries_before,
            });
        }
    }

    /// Waits, a bounded time, while another process has the store alone (a backend
    /// conversion or a format upgrade holds store.lock exclusively), so a command never hangs
    /// without saying why. The lock is only probed: the store takes its own when it opens.
    fn wait_for_store_lock(&self, dir: &std::path::Path) -> CliResult<()> {
        let lock = crate::store::locks::LockPaths::store_lock(dir);
        let wait_ms = self.settings.lock_wait_ms.value.max(0) as u64;
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(wait_ms);
        let mut said = false;
        loop {
            if LockGuard::try_acquire(&lock, LockMode::Shared)?.is_some() {
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                return Err(CliError::StoreLocked {
                    lock,
                    waited_ms: wait_ms,
                });
            }
            // A store being created holds the lock for a few milliseconds: only a longer wait
            // (a conversion, an upgrade) is worth saying.
            if !said
                && deadline.saturating_duration_since(std::time::Instant::now())
                    + std::time::Duration::from_millis(NOTE_LOCK_WAIT_AFTER_MS)
                    < std::time::Duration::from_millis(wait_ms)
            {
                self.note(0, || {
                    format!(
                        "waiting for {}: another process has the store alone",
                        lock.display()
                    )
                });
                said = true;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    pub fn store_dir(&self) -> &std::path::Path {
        self.settings.store_dir()
    }

    #[cfg(any(test, feature = "test-support"))]
    pub fn backend_choice(&self) -> &BackendChoice {
        &self.backend_choice
    }

    /// Whether `--quiet` was given.
    pub fn is_quiet(&self) -> bool {
        self.quiet
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn output(&self) -> &Output {
        &self.output
    }

    /// The observer long work reports to: bars on stderr when it is a terminal, unless -q.
    pub fn progress(&self) -> Box<dyn Progress> {
        progress::for_stderr(self.quiet)
    }

    /// A registry transfer's bars: the whole transfer and one per blob in flight, drawn only
    /// when stderr is a terminal and `-q` is absent.
    pub fn transfer_bars(&self) -> transfer_bars::TransferBars {
        transfer_bars::for_stderr(self.quiet)
    }

    /// A note on stderr at verbosity `level` (-v is 1), never with -q.
    pub fn note(&self, level: u8, message: impl FnOnce() -> String) {
        if !self.quiet && self.verbose >= level {
            eprintln!("oci-store: {}", message());
        }
    }
}

#[cfg(any(test, feature = "test-support"))]
/// Runs a parsed command line.
pub fn run(cli: Cli) -> CliResult<ExitCode> {
    let context = Context::from_options(&cli.global)?;
    cli.command.run(&context)
}

/// The whole tool: parses `args`, runs the command and reports an error with its next step.
/// Exit status: 0 success, 1 failure, 2 usage (bad arguments, bad config file).
pub fn main_with(args: impl IntoIterator<Item = std::ffi::OsString>) -> ExitCode {
    let args: Vec<std::ffi::OsString> = args.into_iter().collect();
    // Whether `--json` was asked for, known even when the rest does not parse.
    let json_asked = args
        .iter()
        .skip(1)
        .take_while(|arg| *arg != "--")
        .any(|arg| arg == "--json");
    let parsed = reference::command()
        .try_get_matches_from(&args)
        .and_then(|matches| Cli::from_arg_matches(&matches));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(error) => {
            let code = error.exit_code().clamp(0, 255) as u8;
            if json_asked && error.use_stderr() {
                let rendered = error.render().to_string();
                let message = rendered
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim_start_matches("error: ")
                    .to_string();
                print_error_document(ErrorKind::Usage, &message, None);
            }
            // --help and --version are "errors" that print to stdout and exit 0.
            let _ = error.print();
            return ExitCode::from(code);
        }
    };
    let global = cli.global.clone();
    let context = match Context::from_options(&global) {
        Ok(context) => context,
        Err(error) => return report_failure(&error, None, global.json),
    };
    // A bug must still end in one line that says so, not a debug dump.
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown cause".to_string());
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("oci-store: internal error{place}: {message}; this is a bug, please report it");
    }));
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cli.command.run(&context)));
    match outcome {
        Ok(Ok(code)) => code,
        // The reader of our output stopped reading: that is its choice, not our failure.
        Ok(Err(error)) if error.is_broken_pipe() => ExitCode::SUCCESS,
        Ok(Err(error)) => {
            context.remove_store_if_created_and_unused();
            report_failure(&error, Some(&context), global.json)
        }
        Err(_) => {
            if global.json {
                print_error_document(ErrorKind::Failed, "internal error: this is a bug", None);
            }
            ExitCode::FAILURE
        }
    }
}

fn report_failure(error: &CliError, context: Option<&Context>, json: bool) -> ExitCode {
    let message = error.report();
    let hint = hints::next_step(error.inner(), context);
    if json {
        print_error_document(error.kind(), &message, hint.as_deref());
    }
    eprintln!("oci-store: {message}");
    if let Some(step) = &hint {
        eprintln!("hint: {step}");
    }
    ExitCode::from(error.exit_status())
}

/// `--json` on failure: `{"error": {"kind", "message", "hint"}}` on stdout, so a script reads
/// one document whatever happened (the same text goes to stderr for people).
fn print_error_document(kind: ErrorKind, message: &str, hint: Option<&str>) {
    let document = serde_json::json!({
        "error": { "kind": kind, "message": message, "hint": hint }
    });
    let text = serde_json::to_string_pretty(&document).expect("JSON values always serialize");
    let _ = std::io::Write::write_all(&mut std::io::stdout(), format!("{text}\n").as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traits::Role;
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
        let settings = Settings::resolve_with(&cli.global, &|_| None).expect("resolves");
        let context = Context::from_settings(settings, &cli.global);
        let roles = &context.backend_choice().roles;
        assert_eq!(roles.get(&Role::Index).map(String::as_str), Some("lmdb"));
        assert_eq!(roles.get(&Role::Kv).map(String::as_str), Some("lmdb"));
        assert_eq!(roles.get(&Role::Blobs).map(String::as_str), Some("fs"));
    }
}
