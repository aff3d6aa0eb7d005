//! The pull-through mirror (`serve --mirror HOST[=URL]`): a request for a repository of a
//! mirrored host (containerd's `?ns=HOST`, or no `ns` for the first mirror) that the store
//! cannot answer is fetched from the upstream into the store, then answered from it. A tag is
//! revalidated with the upstream at most every `tag_ttl`; a digest never. When the upstream
//! fails, a cached tag is still served (with a warning on the log), and what is not cached is
//! a 502/503/504, never a 404 that lies. The fetching itself is the registry client's
//! (`registry::mirror`): one fetch per blob across clients, servers and pulls.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::StatusCode;

use super::error::{ApiError, ServeError, ServeResult};
use crate::registry::mirror::{
    fetch_blob, fetch_manifest, fetch_referrers, tag_unchanged, FetchedBlob, UpstreamManifest,
};
use crate::registry::reference::{host_of, is_loopback, Target};
use crate::registry::{credentials, ClientOptions, RegistryClient, RegistryError};
use crate::store::Store;
use crate::stores::oci::{OciError, OciStore, RefName};
use crate::traits::Digest;

/// One mirrored registry, as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MirrorSpec {
    /// The host clients name (`docker.io`, `ghcr.io`, `127.0.0.1:5000`): containerd's `ns`.
    pub host: String,
    /// Where to fetch from, `scheme://host[:port]` (default: `https://HOST`; Docker Hub's API
    /// host for `docker.io`). `http://` to a non-loopback host is taken as insecure on purpose.
    pub url: Option<String>,
}

impl MirrorSpec {
    /// Parses `HOST` or `HOST=URL`.
    pub fn parse(text: &str) -> Result<MirrorSpec, String> {
        let (host, url) = match text.split_once('=') {
            Some((host, url)) => (host, Some(url.trim_end_matches('/').to_string())),
            None => (text, None),
        };
        if host.is_empty() || host.contains('/') {
            return Err(format!(
                "{text:?}: expected HOST or HOST=URL, e.g. docker.io or ghcr.io=https://ghcr.io"
            ));
        }
        if let Some(url) = &url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!(
                    "{text:?}: the URL must start with http:// or https://"
                ));
            }
        }
        Ok(MirrorSpec {
            host: host.to_string(),
            url,
        })
    }
}

/// A mirrored host and its client.
pub struct Upstream {
    /// The host clients name.
    pub host: String,
    client: RegistryClient,
}

/// Every mirrored host, and when each cached tag was last checked.
pub struct Upstreams {
    upstreams: Vec<Upstream>,
    tag_ttl: Duration,
    checked: Mutex<HashMap<String, Instant>>,
}

impl Upstreams {
    /// Clients for `specs`, with the credentials `pull` would use for each upstream.
    pub fn new(specs: &[MirrorSpec], tag_ttl: Duration) -> ServeResult<Upstreams> {
        let mut upstreams = Vec::new();
        for spec in specs {
            let (registry, insecure) = match &spec.url {
                Some(url) => {
                    let insecure = url.starts_with("http://");
                    let address = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
                    (address.to_string(), insecure)
                }
                None => (spec.host.clone(), false),
            };
            let invalid = |message: String| ServeError::Mirror {
                host: spec.host.clone(),
                message,
            };
            let credentials =
                credentials::resolve(&registry, None).map_err(|e| invalid(e.to_string()))?;
            let options = ClientOptions {
                insecure: insecure && !is_loopback(host_of(&registry)),
                ..ClientOptions::default()
            };
            let client = RegistryClient::new(&registry, credentials, options)
                .map_err(|e| invalid(e.to_string()))?;
            upstreams.push(Upstream {
                host: spec.host.clone(),
                client,
            });
        }
        Ok(Upstreams {
            upstreams,
            tag_ttl,
            checked: Mutex::new(HashMap::new()),
        })
    }

    /// The upstream of a request: the mirror of `?ns=HOST`, else the first mirror.
    pub fn for_namespace(&self, namespace: Option<&str>) -> Option<&Upstream> {
        match namespace {
            Some(host) => self.upstreams.iter().find(|u| u.host == host),
            None => self.upstreams.first(),
        }
    }

    fn checked_lately(&self, ref_name: &str) -> bool {
        let checked = self
            .checked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        checked
            .get(ref_name)
            .is_some_and(|at| at.elapsed() < self.tag_ttl)
    }

    fn mark_checked(&self, ref_name: &str) {
        let mut checked = self
            .checked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        checked.insert(ref_name.to_string(), Instant::now());
    }
}

/// The local ref a mirrored tag is cached under: `HOST/REPO:TAG`, as `pull` names it.
pub fn cached_ref(upstream: &Upstream, repository: &str, tag: &str) -> String {
    format!("{}/{repository}:{tag}", upstream.host)
}

/// Makes the store answer `repository:tag` of `upstream` (blocking): revalidated when not
/// checked within the TTL; a failing upstream leaves a cached tag in place. Returns the ref
/// to serve.
pub fn refresh_tag(
    store: &Store,
    upstreams: &Upstreams,
    upstream: &Upstream,
    repository: &str,
    tag: &str,
) -> Result<String, ApiError> {
    let name = cached_ref(upstream, repository, tag);
    let oci = OciStore::new(store);
    let cached = match oci.get_ref(&name) {
        Ok(descriptor) => Some(descriptor),
        Err(OciError::RefNotFound(_)) => None,
        Err(error) => return Err(error.into()),
    };
    if cached.is_some() && upstreams.checked_lately(&name) {
        return Ok(name);
    }
    // Cached: a HEAD says whether the upstream's tag still names it (no body moves).
    if let Some(descriptor) = &cached {
        let cached_digest = Digest::parse(descriptor.digest().as_ref())
            .map_err(|e| ApiError::internal(format!("ref {name}: {e}")))?;
        match tag_unchanged(
            &upstream.client,
            &upstream.host,
            repository,
            tag,
            &cached_digest,
        ) {
            Ok(true) => {
                upstreams.mark_checked(&name);
                return Ok(name);
            }
            Ok(false) => {}
            Err(error) => {
                eprintln!("warning: serving the cached {name}: the upstream failed: {error}");
                return Ok(name);
            }
        }
    }
    let ref_name =
        RefName::parse(&name).map_err(|e| ApiError::name_invalid(repository, &e.to_string()))?;
    let target = Target::Tag(tag.to_string());
    match fetch_manifest(
        &oci,
        &upstream.client,
        &upstream.host,
        repository,
        target,
        Some(&ref_name),
    ) {
        Ok(UpstreamManifest::Stored) => {
            upstreams.mark_checked(&name);
            Ok(name)
        }
        Ok(UpstreamManifest::NotFound) => Err(ApiError::manifest_unknown(format!(
            "no tag {tag:?} in {}/{repository} (asked upstream)",
            upstream.host
        ))),
        Err(error) if cached.is_some() => {
            eprintln!("warning: serving the cached {name}: the upstream failed: {error}");
            Ok(name)
        }
        Err(error) => Err(upstream_error(&upstream.host, &error)),
    }
}

/// Brings in the referrers the upstream lists for `subject` (blocking), at most once per TTL;
/// an upstream failure leaves what the store has (the log says so).
pub fn refresh_referrers(
    store: &Store,
    upstreams: &Upstreams,
    upstream: &Upstream,
    repository: &str,
    subject: &Digest,
) -> Result<(), ApiError> {
    let key = format!("referrers of {}/{repository}@{subject}", upstream.host);
    if upstreams.checked_lately(&key) {
        return Ok(());
    }
    let oci = OciStore::new(store);
    match fetch_referrers(&oci, &upstream.client, &upstream.host, repository, subject) {
        Ok(_) => upstreams.mark_checked(&key),
        Err(error) => eprintln!("warning: serving the cached {key}: the upstream failed: {error}"),
    }
    Ok(())
}

/// Makes the store have manifest `digest` of `repository` from `upstream` (blocking).
pub fn fetch_manifest_by_digest(
    store: &Store,
    upstream: &Upstream,
    repository: &str,
    digest: &Digest,
) -> Result<(), ApiError> {
    if store.record(digest)?.is_some() {
        return Ok(());
    }
    let oci = OciStore::new(store);
    let target = Target::Digest(digest.clone());
    match fetch_manifest(
        &oci,
        &upstream.client,
        &upstream.host,
        repository,
        target,
        None,
    ) {
        Ok(UpstreamManifest::Stored) => Ok(()),
        Ok(UpstreamManifest::NotFound) => Err(ApiError::manifest_unknown(digest)),
        Err(error) => Err(upstream_error(&upstream.host, &error)),
    }
}

/// Makes the store have blob `digest` of `repository` from `upstream` (blocking): one fetch
/// however many ask at once. `started` learns the size when a download begins here, and
/// `observe` sees every piece as it arrives.
pub fn fetch_blob_streaming(
    store: &Store,
    upstream: &Upstream,
    repository: &str,
    digest: &Digest,
    started: impl FnOnce(u64),
    observe: impl FnMut(&[u8]),
) -> Result<(), ApiError> {
    let oci = OciStore::new(store);
    match fetch_blob(&oci, &upstream.client, repository, digest, started, observe) {
        Ok(FetchedBlob::AlreadyStored | FetchedBlob::Stored) => Ok(()),
        Ok(FetchedBlob::NotFound) => Err(ApiError::blob_unknown(digest)),
        Err(error) => Err(upstream_error(&upstream.host, &error)),
    }
}

/// An upstream failure as the client should see it: 504 for a timeout, 503 when the
/// upstream is overloaded (429/503), 502 otherwise; the message names the upstream.
fn upstream_error(host: &str, error: &RegistryError) -> ApiError {
    let status = match error {
        RegistryError::Transport { source, .. } if matches!(**source, ureq::Error::Timeout(_)) => {
            StatusCode::GATEWAY_TIMEOUT
        }
        RegistryError::Status {
            status: 429 | 503, ..
        } => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_GATEWAY,
    };
    ApiError::new(status, "UNKNOWN", format!("upstream {host}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        assert_eq!(
            MirrorSpec::parse("docker.io").unwrap(),
            MirrorSpec {
                host: "docker.io".into(),
                url: None
            }
        );
        assert_eq!(
            MirrorSpec::parse("local=http://127.0.0.1:5000/").unwrap(),
            MirrorSpec {
                host: "local".into(),
                url: Some("http://127.0.0.1:5000".into())
            }
        );
        assert!(MirrorSpec::parse("a/b").is_err());
        assert!(MirrorSpec::parse("x=ftp://y").is_err());
        assert!(MirrorSpec::parse("").is_err());
    }
}
