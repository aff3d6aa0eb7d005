//! `oci-store serve`: the store as an OCI distribution-spec registry (pull, and push when
//! enabled). A thin HTTP face over library calls: names map onto refs (`names`), manifests are
//! read and received by the OCI flavour (`manifests`), blobs stream from the store under a hold
//! (`blobs`), uploads are staged in the store's ingest area and committed as operations
//! (`uploads`). Every store call runs on tokio's blocking pool, so a slow disk or a lock wait
//! never stalls other requests. docs/SERVE.md is the user's guide; docs/ARCHITECTURE.md says
//! why axum on hyper.

mod access_log;
mod auth;
mod blobs;
mod error;
mod listener;
mod listing;
mod manifests;
mod metrics;
mod mirror;
mod names;
mod range;
mod retention;
mod routes;
mod state;
mod uploads;

use std::net::SocketAddr;
use std::time::Duration;

pub use error::{ApiError, ServeError, ServeResult};
pub use listener::{serve, ServerHandle, StopSignals};
pub use mirror::MirrorSpec;
pub use retention::PruneSchedule;

use crate::store::Store;

/// How the server runs; `Default` is what `oci-store serve` does without flags.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Where to listen; `127.0.0.1:5000` by default. Port 0 asks the OS for a free one.
    pub listen: SocketAddr,
    /// Accept pushes and deletes (off by default: a read-only registry).
    pub push: bool,
    /// Listen on a non-loopback address without TLS.
    pub insecure: bool,
    /// How long a blob upload may sit idle, and how long an uploaded blob or a manifest pushed
    /// by digest is kept without a tag naming it, before gc may reclaim it.
    pub upload_timeout: Duration,
    /// How long a request's headers and each read or write of a body may take.
    pub io_timeout: Duration,
    /// How long in-flight requests may run on after SIGINT/SIGTERM.
    pub shutdown_grace: Duration,
    /// Most connections served at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// Most blob uploads open at once.
    pub max_uploads: usize,
    /// Largest manifest accepted or served (the spec recommends accepting at least 4 MiB).
    pub max_manifest_bytes: u64,
    /// Access log lines as JSON instead of text.
    pub json_log: bool,
    /// Print no access log.
    pub quiet: bool,
    /// Answer `GET /metrics` (Prometheus text format).
    pub metrics: bool,
    /// Basic authentication against this htpasswd file (bcrypt); none: anonymous access.
    pub htpasswd: Option<std::path::PathBuf>,
    /// The htpasswd users who may push and delete; empty: every user.
    pub writers: Vec<String>,
    /// With `htpasswd`: let reads through without credentials.
    pub anonymous_read: bool,
    /// TLS certificate chain and private key (PEM files).
    pub tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// Registries to mirror (pull-through); the first also answers requests without `?ns=`.
    pub mirrors: Vec<MirrorSpec>,
    /// How long a mirrored tag is served from the store before it is checked upstream again.
    pub tag_ttl: Duration,
    /// Prune by this policy now and then, and when a write crosses its high watermark.
    pub prune: Option<PruneSchedule>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 5000)),
            push: false,
            insecure: false,
            upload_timeout: Duration::from_secs(3600),
            io_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(10),
            max_connections: 512,
            max_uploads: 256,
            max_manifest_bytes: 4 << 20,
            json_log: false,
            quiet: false,
            metrics: false,
            htpasswd: None,
            writers: Vec::new(),
            anonymous_read: false,
            tls: None,
            mirrors: Vec::new(),
            tag_ttl: Duration::from_secs(300),
            prune: None,
        }
    }
}

/// Runs the server on `store` until `shutdown` resolves or SIGINT/SIGTERM arrives, blocking
/// the calling thread. The store lives as long as the process (the server hands it to every
/// request).
pub fn run(store: Store, options: ServeOptions) -> ServeResult<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("oci-store-serve")
        .build()
        .map_err(ServeError::Runtime)?;
    let store: &'static Store = Box::leak(Box::new(store));
    let scheme = if options.tls.is_some() {
        "https"
    } else {
        "http"
    };
    runtime.block_on(async move {
        let signals = StopSignals::install();
        let handle = serve(store, options).await?;
        eprintln!("serving the store on {scheme}://{}/v2/", handle.address());
        handle.wait_for(signals).await;
        Ok(())
    })
}
