//! What every request shares: the store, the options, the open uploads.

use std::sync::Arc;

use super::auth::Users;
use super::metrics::Metrics;
use super::mirror::Upstreams;
use super::uploads::Uploads;
use super::ServeOptions;
use crate::store::Store;

/// Shared by every request of one server.
pub struct AppState {
    /// The store; it lives as long as the process.
    pub store: &'static Store,
    /// How the server runs.
    pub options: ServeOptions,
    /// Blob uploads in progress.
    pub uploads: Uploads,
    /// What `/metrics` reports.
    pub metrics: Metrics,
    /// The htpasswd users, when authentication is on.
    pub users: Option<Users>,
    /// The mirrored registries (none: a plain registry).
    pub upstreams: Upstreams,
    /// The server's retention schedule.
    pub pruner: super::retention::Pruner,
}

/// The handle requests hold.
pub type SharedState = Arc<AppState>;

/// Runs a blocking store call on tokio's blocking pool, so it never stalls the requests the
/// async workers serve.
pub async fn blocking<T, E>(
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, super::ApiError>
where
    T: Send + 'static,
    E: Into<super::ApiError> + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(Into::into),
        Err(join) => Err(super::ApiError::internal(format!(
            "a store call failed: {join}"
        ))),
    }
}
