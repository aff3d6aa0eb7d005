//! The store as a client of OCI registries (the distribution spec): `pull` into the store and
//! `push` out of it, with authentication, verification and less traffic.
//!
//! A thin synchronous client of our own on `ureq` 3 (rustls), with `http-auth` for
//! `WWW-Authenticate` challenges and `docker_credential` for the Docker/Podman config files
//! and credential helpers; it fits the store's blocking writers (a download streams straight
//! into [`Store::stage`](crate::store::Store::stage)) and pulls like an import: one
//! [`Operation`](crate::store::Operation), all or nothing. See docs/ARCHITECTURE.md.
//!
//! | file | job |
//! | --- | --- |
//! | `reference` | `REGISTRY/REPO[:TAG\|@DIGEST]` |
//! | `client` | requests: redirects, challenges, retries, scheme policy |
//! | `auth`, `credentials` | challenges and tokens; where credentials come from, login/logout |
//! | `credential_helper` | storing and erasing through `docker-credential-<name>` |
//! | `manifests`, `blobs`, `referrers` | the distribution API calls |
//! | `pull`, `push`, `platform` | the two operations |
//! | `verify`, `progress` | what leaves the store is hashed; transfer events |
//! | `origins` | which repositories have a blob, for cross-repository mounts |

mod auth;
mod blobs;
mod client;
mod credential_helper;
pub mod credentials;
mod error;
mod manifests;
pub(crate) mod mirror;
pub mod origins;
mod platform;
mod progress;
mod pull;
mod push;
pub(crate) mod reference;
mod referrers;
mod url;
mod verify;

pub use auth::Credentials;
pub use client::{ClientOptions, RegistryClient};
pub use error::{RegistryError, RegistryResult};
pub use pull::{pull, PullOptions, PullReport, DEFAULT_JOBS};
pub use push::{push, PushOptions, PushReport};
pub use reference::{is_registry_host, Reference};
// What the test suites reach besides the public API.
#[cfg(feature = "test-support")]
pub use {
    blobs::BlobDownload,
    credential_helper::Helper as CredentialHelper,
    manifests::{get_manifest, FetchedManifest},
    reference::{is_loopback, Target},
    referrers::fallback_tag,
};

impl RegistryClient {
    /// How many bearer tokens this client fetched (each scope once until it expires).
    pub fn tokens_fetched(&self) -> u64 {
        self.auth
            .tokens_fetched
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// `GET /v2/`: whether the registry speaks the distribution API and takes our credentials.
    pub fn check_login(&self) -> RegistryResult<()> {
        let target = self.url("");
        let response = self.send(
            ureq::http::Method::GET,
            &target,
            "",
            &[],
            client::Payload::Empty,
        )?;
        match response.status().as_u16() {
            200 => Ok(()),
            _ => Err(self.status_error("GET", &target, response)),
        }
    }
}
