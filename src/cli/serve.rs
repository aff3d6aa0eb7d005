//! `oci-store serve`: the store as an OCI distribution-spec registry (docs/SERVE.md).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::duration::parse_duration;
use super::error::{CliError, CliResult};
use super::{Context, RunCommand};
use crate::serve::{run, ServeOptions};

/// Serves the store over the OCI distribution API, so containerd, Docker, Podman, skopeo,
/// oras and `oci-store pull` can pull from it (and push to it, with --push). Runs until
/// SIGINT or SIGTERM, then lets requests in flight finish. Logs one line per request on
/// standard error. Repositories and tags are the store's refs: `REPO:TAG` (a bare `NAME` is
/// `NAME:latest`; `HOST/REPO:TAG` is also `REPO:TAG`, and what containerd asks with
/// `?ns=HOST`); see docs/SERVE.md.
#[derive(Debug, Args)]
pub struct ServeCommand {
    /// Address and port to listen on; only loopback addresses unless --insecure [default:
    /// serve.listen in the config file, else 127.0.0.1:5000]
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,

    /// Accept pushes and deletes [default: serve.push in the config file, else off]
    #[arg(long)]
    push: bool,

    /// Listen on a non-loopback address without TLS: images travel in clear text
    #[arg(long)]
    insecure: bool,

    /// How long an upload may sit idle, and an uploaded blob or a manifest pushed by digest
    /// stay without a tag naming it, before gc may reclaim it, e.g. "30m" [default:
    /// serve.upload_timeout in the config file, else 1h]
    #[arg(long, value_name = "DURATION")]
    upload_timeout: Option<String>,

    /// Write the access log as JSON lines
    #[arg(long)]
    log_json: bool,

    /// Answer GET /metrics in the Prometheus text format (requests, bytes, in flight, uploads)
    #[arg(long)]
    metrics: bool,

    /// Require Basic authentication by the users of this htpasswd file (bcrypt hashes, as
    /// `htpasswd -B` writes them and CNCF distribution reads them)
    #[arg(long, value_name = "FILE")]
    htpasswd: Option<PathBuf>,

    /// A user of the htpasswd file who may push and delete (repeat for several); without it,
    /// every user may; the others may only pull
    #[arg(long, value_name = "USER", requires = "htpasswd")]
    writer: Vec<String>,

    /// With --htpasswd: let pulls through without credentials (pushes still need them)
    #[arg(long, requires = "htpasswd")]
    anonymous_read: bool,

    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// Most connections served at once; more wait to be accepted
    #[arg(long, value_name = "N", default_value_t = 512)]
    max_connections: usize,

    /// Most blob uploads open at once; more are refused with 429 until some finish
    #[arg(long, value_name = "N", default_value_t = 256)]
    max_uploads: usize,

    /// Seconds a client may take to send its request head, or to send or read the next part
    /// of a body, before the server gives up on the request
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    io_timeout: u64,

    /// Mirror this registry (pull-through cache): HOST, or HOST=URL for another address, e.g.
    /// docker.io or ghcr.io=https://ghcr.io. Requests with containerd's ?ns=HOST go to it; the
    /// first mirror also answers requests without ?ns=. Repeat for several [default:
    /// [[serve.mirror]] tables in the config file]
    #[arg(long, value_name = "HOST[=URL]", value_parser = crate::serve::MirrorSpec::parse)]
    mirror: Vec<crate::serve::MirrorSpec>,

    /// How long a mirrored tag is served from the store before the upstream is asked again,
    /// e.g. "5m" [default: serve.tag_ttl in the config file, else 5m]
    #[arg(long, value_name = "DURATION")]
    tag_ttl: Option<String>,

    /// The private key of --tls-cert (PEM)
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

impl RunCommand for ServeCommand {
    fn run(self, context: &Context) -> CliResult<ExitCode> {
        let settings = context.settings();
        let upload_timeout_ms = match &self.upload_timeout {
            Some(text) => parse_duration(text).map_err(|message| CliError::Argument {
                argument: "--upload-timeout",
                message,
            })?,
            None => settings.serve_upload_timeout_ms.value,
        };
        let tag_ttl = match &self.tag_ttl {
            Some(text) => Duration::from_millis(
                u64::try_from(parse_duration(text).map_err(|message| CliError::Argument {
                    argument: "--tag-ttl",
                    message,
                })?)
                .unwrap_or(0),
            ),
            None => {
                Duration::from_millis(u64::try_from(settings.serve_tag_ttl_ms.value).unwrap_or(0))
            }
        };
        let mirrors = if self.mirror.is_empty() {
            settings.serve_mirrors.value.clone()
        } else {
            self.mirror
        };
        // `[prune]` in the config file, applied every `prune.interval` (and when a write
        // crosses its high watermark); none when it sets no policy.
        let policy = settings.prune_policy()?;
        let prune = policy
            .removes_anything()
            .then(|| crate::serve::PruneSchedule {
                policy,
                interval: Duration::from_millis(settings.prune_interval_ms.value.unsigned_abs()),
            });
        let options = ServeOptions {
            prune,
            listen: self.listen.unwrap_or(settings.serve_listen.value),
            push: self.push || settings.serve_push.value,
            insecure: self.insecure,
            upload_timeout: Duration::from_millis(u64::try_from(upload_timeout_ms).unwrap_or(0)),
            json_log: self.log_json,
            metrics: self.metrics,
            htpasswd: self.htpasswd,
            writers: self.writer,
            anonymous_read: self.anonymous_read,
            tls: self.tls_cert.zip(self.tls_key),
            max_connections: self.max_connections.max(1),
            mirrors,
            tag_ttl,
            max_uploads: self.max_uploads,
            io_timeout: Duration::from_secs(self.io_timeout.max(1)),
            quiet: context.is_quiet(),
            ..ServeOptions::default()
        };
        let store = context.open_store()?;
        run(store, options)?;
        Ok(ExitCode::SUCCESS)
    }
}
