//! `oci-store pull`, `push`, `login` and `logout`: the registry client of
//! [`crate::registry`], with credentials from flags, stdin or the config files, and progress
//! on a terminal (the whole transfer and a bar per blob in flight: `transfer_bars.rs`).

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::cli::error::{CliError, CliResult};
use crate::cli::output::bytes_with_unit;
use crate::cli::transfer_bars::TransferBars;
use crate::cli::{Context, RunCommand};
use crate::registry::{
    credentials, ClientOptions, Credentials, PullOptions, PushOptions, RegistryClient,
    RegistryError, DEFAULT_JOBS,
};
use crate::stores::oci::{OciStore, Platform};

/// How to reach the registry and as whom.
#[derive(Debug, Args)]
pub struct ConnectionArgs {
    /// Allow plain HTTP to a registry that is not on a loopback address
    #[arg(long)]
    insecure: bool,

    /// User name (the password comes from --password-stdin)
    #[arg(long, short = 'u', value_name = "NAME", requires = "password_stdin")]
    username: Option<String>,

    /// Read the password (or token) from standard input
    #[arg(long)]
    password_stdin: bool,

    /// Read credentials from this auth file instead of the Docker/Podman config files
    #[arg(long, value_name = "PATH")]
    authfile: Option<PathBuf>,

    /// Retries of a failed request (429, 5xx, reset) with exponential backoff
    #[arg(long, value_name = "N", default_value_t = ClientOptions::default().retries)]
    retries: u32,
}

impl ConnectionArgs {
    fn client(&self, registry: &str) -> CliResult<RegistryClient> {
        let explicit = match (&self.username, self.password_stdin) {
            (Some(username), true) => Some(Credentials::Basic {
                username: username.clone(),
                password: read_password()?,
            }),
            _ => None,
        };
        let credentials = match (&self.authfile, explicit) {
            (_, Some(explicit)) => explicit,
            (Some(path), None) => credentials::from_file(path, registry)?,
            (None, None) => credentials::resolve(registry, None)?,
        };
        let options = ClientOptions {
            insecure: self.insecure,
            retries: self.retries,
            ..ClientOptions::default()
        };
        Ok(RegistryClient::new(registry, credentials, options)?)
    }
}

fn read_password() -> CliResult<String> {
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .map_err(|source| CliError::Input {
            context: "reading the password from",
            path: PathBuf::from("<stdin>"),
            source,
        })?;
    Ok(password.trim_end_matches(['\n', '\r']).to_string())
}

fn observer(context: &Context) -> TransferBars {
    context.transfer_bars()
}

/// Pulls an image from a registry: every blob verified as it streams in, the ones the store
/// has skipped; all or nothing (no ref until everything is stored).
#[derive(Debug, Args)]
pub struct PullCommand {
    /// The platform to take from a multi-platform index [default: this machine's]
    #[arg(
        long,
        value_name = "OS/ARCH[/VARIANT]",
        conflicts_with = "all_platforms"
    )]
    platform: Option<String>,

    /// Take the whole index, every platform
    #[arg(long)]
    all_platforms: bool,

    /// Also pull the referrers (signatures, SBOMs) of what is pulled
    #[arg(long)]
    with_referrers: bool,

    /// Store the ref under this name [default: the reference as given]
    #[arg(long, value_name = "REF")]
    dref: Option<String>,

    /// Blobs downloaded at once
    #[arg(long, value_name = "N", default_value_t = DEFAULT_JOBS)]
    jobs: usize,

    #[command(flatten)]
    connection: ConnectionArgs,

    /// [REGISTRY/]REPOSITORY[:TAG][@DIGEST]: a short name (`alpine`) takes the default registry
    /// (`default_registry`, docker.io unless configured); with both a tag and a digest the
    /// digest is pulled and the tag kept in the ref's name
    #[arg(value_name = "REFERENCE")]
    reference: String,
}

impl RunCommand for PullCommand {
    fn run(self, context: &Context) -> CliResult<ExitCode> {
        let reference = context.settings().image_reference(&self.reference)?;
        let platform = self
            .platform
            .as_deref()
            .map(Platform::parse)
            .transpose()
            .map_err(CliError::usage)?;
        if let Some(dref) = &self.dref {
            crate::stores::oci::RefName::parse(dref).map_err(CliError::usage)?;
        }
        let client = self.connection.client(&reference.registry)?;
        let store = context.open_store()?;
        let options = PullOptions {
            platform,
            all_platforms: self.all_platforms,
            with_referrers: self.with_referrers,
            dref: self.dref,
            jobs: self.jobs,
        };
        let observer = observer(context);
        let report = crate::registry::pull(
            &OciStore::new(&store),
            &client,
            &reference,
            &options,
            &observer,
        )?;
        context.output().value(&report, |out| {
            writeln!(out, "pulled {} {}", report.name, report.digest)?;
            if report.referrers > 0 {
                writeln!(out, "with {} referrers", report.referrers)?;
            }
            writeln!(
                out,
                "blobs downloaded: {} ({}), already stored: {}",
                report.blobs_downloaded,
                bytes_with_unit(report.bytes_downloaded),
                report.blobs_present
            )
        })?;
        prune_after_pull(context, &store)?;
        Ok(ExitCode::SUCCESS)
    }
}

/// `prune.after_pull`: the configured policy, once the pull succeeded. What was just pulled is
/// at least a minute "recent", so no policy takes it back at once; a prune that fails is a
/// warning, not a failed pull.
fn prune_after_pull(context: &Context, store: &crate::store::Store) -> CliResult<()> {
    let settings = context.settings();
    if !settings.prune_after_pull.value {
        return Ok(());
    }
    let mut policy = settings.prune_policy()?;
    if !policy.removes_anything() {
        return Ok(());
    }
    policy.recent = policy.recent.max(std::time::Duration::from_secs(60));
    let options = crate::stores::oci::PruneOptions {
        policy,
        ..crate::stores::oci::PruneOptions::default()
    };
    match OciStore::new(store).prune(&options) {
        Ok(report) if report.removed.is_empty() => {}
        Ok(report) => context.note(0, || {
            format!(
                "pruned {} refs after the pull ({}), freed {}",
                report.removed.len(),
                report.removed.join(", "),
                bytes_with_unit(report.freed_bytes())
            )
        }),
        Err(error) => context.note(0, || {
            format!("warning: the prune after the pull failed: {error}")
        }),
    }
    Ok(())
}

/// Pushes a ref to a registry: blobs the registry has are not sent again; everything sent
/// is hashed as it leaves the store.
#[derive(Debug, Args)]
pub struct PushCommand {
    /// Also push the referrers the store has of what is pushed
    #[arg(long)]
    with_referrers: bool,

    /// Ask the registry to mount blobs from this repository of it before uploading them
    #[arg(long, value_name = "REPOSITORY")]
    mount_from: Option<String>,

    /// Upload in chunks of this many bytes (PATCH) instead of one PUT per blob
    #[arg(long, value_name = "BYTES")]
    chunk_size: Option<u64>,

    /// Blobs uploaded at once
    #[arg(long, value_name = "N", default_value_t = DEFAULT_JOBS)]
    jobs: usize,

    #[command(flatten)]
    connection: ConnectionArgs,

    /// A ref, or the digest (or unique prefix) of a stored manifest or index
    #[arg(value_name = "REF|DIGEST")]
    source: String,

    /// [REGISTRY/]REPOSITORY[:TAG][@DIGEST] (a short name takes the default registry)
    #[arg(value_name = "DESTINATION")]
    destination: String,
}

impl RunCommand for PushCommand {
    fn run(self, context: &Context) -> CliResult<ExitCode> {
        let destination = context.settings().image_reference(&self.destination)?;
        let client = self.connection.client(&destination.registry)?;
        let store = context.open_existing_store()?;
        let options = PushOptions {
            jobs: self.jobs,
            chunk_size: self.chunk_size,
            with_referrers: self.with_referrers,
            mount_from: self.mount_from,
        };
        let observer = observer(context);
        let report = crate::registry::push(
            &OciStore::new(&store),
            &client,
            &self.source,
            &destination,
            &options,
            &observer,
        )?;
        context.output().value(&report, |out| {
            writeln!(
                out,
                "pushed {} {}",
                report.reference,
                report
                    .digest
                    .as_ref()
                    .map(|d| d.to_string())
                    .unwrap_or_default()
            )?;
            writeln!(
                out,
                "blobs uploaded: {} ({}), already there: {}, mounted: {}",
                report.blobs_uploaded,
                bytes_with_unit(report.bytes_uploaded),
                report.blobs_present,
                report.blobs_mounted
            )
        })?;
        Ok(ExitCode::SUCCESS)
    }
}

/// Checks credentials against a registry, then records them where Docker would: through the
/// credential helper the Docker config (`$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`, or --authfile) names for the registry (`credHelpers`, else
/// `credsStore`), and the file keeps no password; with no helper named, in that file, as
/// `skopeo login` and `docker login` write it. A named helper that is not installed refuses
/// the login and nothing is written.
#[derive(Debug, Args)]
pub struct LoginCommand {
    /// User name
    #[arg(long, short = 'u', value_name = "NAME")]
    username: String,

    /// Read the password (or token) from standard input
    #[arg(long, required = true)]
    password_stdin: bool,

    /// Allow plain HTTP to a registry that is not on a loopback address
    #[arg(long)]
    insecure: bool,

    /// The auth file to write instead of the Docker config
    #[arg(long, value_name = "PATH")]
    authfile: Option<PathBuf>,

    /// host[:port]
    registry: String,
}

impl RunCommand for LoginCommand {
    fn run(self, context: &Context) -> CliResult<ExitCode> {
        let path = match self.authfile {
            Some(path) => path,
            None => credentials::docker_config_path()?,
        };
        // Before anything is sent: a login that could not be stored safely fails first.
        credentials::login_destination(&path, &self.registry)?;
        let password = read_password()?;
        let client = RegistryClient::new(
            &self.registry,
            Credentials::Basic {
                username: self.username.clone(),
                password: password.clone(),
            },
            ClientOptions {
                insecure: self.insecure,
                ..ClientOptions::default()
            },
        )?;
        client.check_login()?;
        let helper = credentials::login(&path, &self.registry, &self.username, &password)?;
        let report = serde_json::json!({
            "registry": self.registry,
            "config": path,
            "helper": helper.as_ref().map(|h| h.program()),
        });
        context.output().value(&report, |out| match &helper {
            Some(helper) => writeln!(
                out,
                "logged in to {} (credentials in {}, named by {} in {})",
                self.registry,
                helper.program(),
                helper.setting,
                path.display()
            ),
            None => writeln!(out, "logged in to {} ({})", self.registry, path.display()),
        })?;
        Ok(ExitCode::SUCCESS)
    }
}

/// Forgets the credentials recorded for a registry: erases them from the credential helper
/// the Docker config names for it (`credHelpers`, else `credsStore`) and removes its entry
/// from the file.
#[derive(Debug, Args)]
pub struct LogoutCommand {
    /// The auth file to edit instead of the Docker config
    #[arg(long, value_name = "PATH")]
    authfile: Option<PathBuf>,

    /// host[:port]
    registry: String,
}

impl RunCommand for LogoutCommand {
    fn run(self, context: &Context) -> CliResult<ExitCode> {
        let path = match self.authfile {
            Some(path) => path,
            None => credentials::docker_config_path()?,
        };
        if !credentials::logout(&path, &self.registry)? {
            return Err(RegistryError::Credentials {
                registry: self.registry.clone(),
                reason: format!("{} has none to remove", path.display()),
            }
            .into());
        }
        let report = serde_json::json!({"registry": self.registry, "config": path});
        context.output().value(&report, |out| {
            writeln!(out, "logged out of {} ({})", self.registry, path.display())
        })?;
        Ok(ExitCode::SUCCESS)
    }
}
