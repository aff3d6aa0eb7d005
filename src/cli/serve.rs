//! `oci-store serve`: the store as an OCI distribution-spec registry (docs/SERVE.md).

use std::net::SocketAddr;
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
        let options = ServeOptions {
            listen: self.listen.unwrap_or(settings.serve_listen.value),
            push: self.push || settings.serve_push.value,
            insecure: self.insecure,
            upload_timeout: Duration::from_millis(u64::try_from(upload_timeout_ms).unwrap_or(0)),
            json_log: self.log_json,
            metrics: self.metrics,
            quiet: context.is_quiet(),
            ..ServeOptions::default()
        };
        let store = context.open_store()?;
        run(store, options)?;
        Ok(ExitCode::SUCCESS)
    }
}
