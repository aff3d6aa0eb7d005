//! Manifests and indexes: GET/HEAD by tag or digest, PUT (push), DELETE.

use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::mirror;
use super::names;
use super::routes::Request;
use super::state::blocking;
use crate::store::Store;
use crate::stores::oci::{DocumentKind, OciError, OciStore, RefName};
use crate::traits::Digest;

/// A manifest reference: a tag, or a digest.
enum Reference {
    Tag(String),
    Digest(Digest),
}

fn reference_of(reference: &str) -> Result<Reference, ApiError> {
    if reference.contains(':') {
        Digest::parse(reference)
            .map(Reference::Digest)
            .map_err(|e| ApiError::digest_invalid(format!("invalid digest {reference:?}: {e}")))
    } else if names::is_tag(reference) {
        Ok(Reference::Tag(reference.to_string()))
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "TAG_INVALID",
            format!("invalid tag {reference:?}: a tag is up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'"),
        ))
    }
}

/// What a manifest GET or HEAD answers with.
struct Found {
    digest: Digest,
    media_type: String,
    size: u64,
    /// The ref that answered a tag.
    ref_name: Option<String>,
}

/// The ref that answers `repository:tag` (see `names`), with what it names.
pub fn find_tag(
    store: &Store,
    repository: &str,
    tag: &str,
    namespace: Option<&str>,
) -> Result<Option<(String, oci_spec::image::Descriptor)>, ApiError> {
    let oci = OciStore::new(store);
    for name in names::candidates(repository, tag, namespace) {
        match oci.get_ref(&name) {
            Ok(descriptor) => return Ok(Some((name, descriptor))),
            Err(OciError::RefNotFound(_)) => {}
            Err(error) => return Err(error.into()),
        }
    }
    // `HOST/REPO:TAG` asked for as `REPO:TAG` without `?ns=`.
    let refs = oci.ref_descriptors()?;
    let listed = names::repositories(refs.iter().map(|(name, _)| name.clone()));
    let Some(name) = listed.get(repository).and_then(|tags| tags.get(tag)) else {
        return Ok(None);
    };
    Ok(refs.into_iter().find(|(candidate, _)| candidate == name))
}

fn find(
    store: &Store,
    repository: &str,
    reference: &Reference,
    namespace: Option<&str>,
) -> Result<Found, ApiError> {
    match reference {
        Reference::Tag(tag) => {
            let (name, descriptor) =
                find_tag(store, repository, tag, namespace)?.ok_or_else(|| {
                    ApiError::manifest_unknown(format!(
                        "no tag {tag:?} in repository {repository:?}"
                    ))
                })?;
            let digest = Digest::parse(descriptor.digest().as_ref())
                .map_err(|e| ApiError::internal(format!("ref {name}: {e}")))?;
            Ok(Found {
                digest,
                media_type: descriptor.media_type().to_string(),
                size: descriptor.size(),
                ref_name: Some(name),
            })
        }
        Reference::Digest(digest) => {
            let record = store
                .record(digest)?
                .ok_or_else(|| ApiError::manifest_unknown(digest))?;
            let media_type = if DocumentKind::of(&record.media_type).is_document() {
                record.media_type
            } else {
                // Stored without its media type (`blob put`): the document says.
                document_media_type(store, digest)?.ok_or_else(|| {
                    ApiError::manifest_unknown(format!("{digest} is a blob, not a manifest"))
                })?
            };
            Ok(Found {
                digest: digest.clone(),
                media_type,
                size: record.size,
                ref_name: None,
            })
        }
    }
}

/// With a mirror for the request (its `?ns=`, or the first mirror): brings the manifest in
/// from the upstream when the store cannot answer, and revalidates a cached tag after its TTL
/// (blocking). Returns the namespace to look the tag up in: the mirror's host. A tag the store
/// has under its own name (`REPO:TAG`, pushed here) is served as it is.
fn mirrored(
    store: &Store,
    upstreams: &mirror::Upstreams,
    repository: &str,
    reference: &Reference,
    namespace: Option<String>,
) -> Result<Option<String>, ApiError> {
    let Some(upstream) = upstreams.for_namespace(namespace.as_deref()) else {
        return Ok(namespace);
    };
    match reference {
        Reference::Tag(tag) => {
            let own = OciStore::new(store).get_ref(&names::ref_for_push(repository, tag));
            if namespace.is_none() && own.is_ok() {
                return Ok(None);
            }
            mirror::refresh_tag(store, upstreams, upstream, repository, tag)?;
        }
        Reference::Digest(digest) => {
            mirror::fetch_manifest_by_digest(store, upstream, repository, digest)?;
        }
    }
    Ok(Some(upstream.host.clone()))
}

/// The `mediaType` a stored JSON document declares, if it is a manifest or index.
fn document_media_type(store: &Store, digest: &Digest) -> Result<Option<String>, ApiError> {
    let bytes = store.read_to_vec(digest, crate::stores::oci::MAX_DOCUMENT_SIZE)?;
    let declared = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("mediaType")?.as_str().map(str::to_string));
    Ok(declared.filter(|t| DocumentKind::of(t).is_document()))
}

fn manifest_headers(found: &Found) -> Result<[(header::HeaderName, HeaderValue); 3], ApiError> {
    let value = |text: &str| {
        HeaderValue::from_str(text)
            .map_err(|_| ApiError::internal(format!("media type {text:?} is not a header value")))
    };
    Ok([
        (header::CONTENT_TYPE, value(&found.media_type)?),
        (
            header::HeaderName::from_static("docker-content-digest"),
            value(found.digest.as_str())?,
        ),
        (header::CONTENT_LENGTH, HeaderValue::from(found.size)),
    ])
}

/// GET or HEAD of a manifest. A HEAD reads no content: the ref entry or the index record has
/// the digest, size and media type.
pub async fn get(
    request: &Request,
    repository: &str,
    reference: &str,
) -> Result<Response, ApiError> {
    let reference = reference_of(reference).map_err(|error| match error.code {
        // A GET of a name that cannot exist: nothing by that name.
        "TAG_INVALID" => ApiError::manifest_unknown(error.message),
        _ => error,
    })?;
    let store = request.state.store;
    let head = request.method == axum::http::Method::HEAD;
    let (repository_owned, namespace) = (
        repository.to_string(),
        request.param("ns").map(str::to_string),
    );
    let limit = request.state.options.max_manifest_bytes;
    let state = request.state.clone();
    let (found, bytes) = blocking(move || -> Result<_, ApiError> {
        let namespace = mirrored(
            store,
            &state.upstreams,
            &repository_owned,
            &reference,
            namespace,
        )?;
        let found = find(store, &repository_owned, &reference, namespace.as_deref())?;
        record_use(store, found.ref_name.clone(), found.digest.clone());
        if head {
            return Ok((found, Vec::new()));
        }
        if found.size > limit {
            return Err(ApiError::size_invalid(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "manifest {} is {} bytes, over this server's limit of {limit}",
                    found.digest, found.size
                ),
            ));
        }
        let bytes = store.read_to_vec(&found.digest, limit)?;
        Ok((found, bytes))
    })
    .await?;
    let headers = manifest_headers(&found)?;
    Ok((StatusCode::OK, headers, bytes).into_response())
}

/// Records a use of what a request read, off the request's path (a write, when the throttle
/// lets one through, must not delay the answer).
pub fn record_use(store: &'static Store, ref_name: Option<String>, digest: Digest) {
    tokio::task::spawn_blocking(move || match ref_name {
        Some(name) => OciStore::new(store).used(&name, &digest),
        None => store.record_use(&crate::stores::oci::HOLDER, None, &[digest]),
    });
}

/// PUT of a manifest or index by tag or digest: validated as `import` validates it, every
/// blob it needs already in the store; then the tag names it.
pub async fn put(
    request: &Request,
    repository: &str,
    reference: &str,
    body: Body,
) -> Result<Response, ApiError> {
    let reference = reference_of(reference)?;
    let limit = request.state.options.max_manifest_bytes;
    let bytes = to_bytes(body, usize::try_from(limit).unwrap_or(usize::MAX))
        .await
        .map_err(|_| {
            ApiError::size_invalid(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("manifest body over this server's limit of {limit} bytes (or the client stopped sending)"),
            )
        })?;
    let declared = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("mediaType")?.as_str().map(str::to_string));
    let media_type = request
        .header(header::CONTENT_TYPE)
        .map(|t| t.split(';').next().unwrap_or(t).trim().to_string())
        .filter(|t| DocumentKind::of(t).is_document())
        .or(declared)
        .ok_or_else(|| {
            manifest_invalid(
                "no manifest media type: send it as Content-Type or in the document's mediaType",
            )
        })?;
    let tag = match &reference {
        Reference::Digest(claimed) => {
            let actual = Digest::of_bytes(claimed.algorithm(), &bytes);
            if &actual != claimed {
                return Err(ApiError::digest_invalid(format!(
                    "the manifest's digest is {actual}, not {claimed} as the URL says"
                )));
            }
            None
        }
        Reference::Tag(tag) => Some(
            RefName::parse(&names::ref_for_push(repository, tag))
                .map_err(|e| ApiError::name_invalid(repository, &e.to_string()))?,
        ),
    };
    let store = request.state.store;
    let keep_for: Duration = request.state.options.upload_timeout;
    let received = blocking(move || {
        OciStore::new(store)
            .receive_manifest(&bytes, &media_type, tag.as_ref(), keep_for)
            .map_err(receive_error)
    })
    .await?;
    let location = format!("/v2/{repository}/manifests/{}", received.digest);
    let mut response = (StatusCode::CREATED, "").into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, header_value(&location)?);
    headers.insert(
        "Docker-Content-Digest",
        header_value(received.digest.as_str())?,
    );
    if let Some(subject) = &received.subject {
        headers.insert("OCI-Subject", header_value(subject.as_str())?);
    }
    Ok(response)
}

fn manifest_invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "MANIFEST_INVALID", message)
}

fn receive_error(error: OciError) -> ApiError {
    match error {
        OciError::ManifestBlobUnknown { .. } => ApiError::new(
            StatusCode::BAD_REQUEST,
            "MANIFEST_BLOB_UNKNOWN",
            error.to_string(),
        ),
        OciError::Store(store) => (*store).into(),
        other @ (OciError::InvalidDocument { .. }
        | OciError::DocumentTooLarge { .. }
        | OciError::SpecViolation { .. }
        | OciError::InvalidDigest { .. }
        | OciError::MissingBlob { .. }
        | OciError::Invalid(_)) => manifest_invalid(other.to_string()),
        other => ApiError::internal(other.to_string()),
    }
}

/// DELETE of a manifest: by tag, the ref that answers it; by digest, every tag of the
/// repository naming it. The blobs go at the next gc.
pub async fn delete(
    request: &Request,
    repository: &str,
    reference: &str,
) -> Result<Response, ApiError> {
    let reference = reference_of(reference)?;
    let store = request.state.store;
    let repository = repository.to_string();
    blocking(move || -> Result<(), ApiError> {
        let oci = OciStore::new(store);
        let doomed: Vec<String> = match &reference {
            Reference::Tag(tag) => find_tag(store, &repository, tag, None)?
                .map(|(name, _)| vec![name])
                .unwrap_or_default(),
            Reference::Digest(digest) => {
                let refs = oci.ref_descriptors()?;
                let listed = names::repositories(refs.iter().map(|(name, _)| name.clone()));
                let tags = listed.get(&repository).cloned().unwrap_or_default();
                refs.into_iter()
                    .filter(|(name, descriptor)| {
                        descriptor.digest().as_ref() == digest.as_str()
                            && tags.values().any(|n| n == name)
                    })
                    .map(|(name, _)| name)
                    .collect()
            }
        };
        if doomed.is_empty() {
            return Err(ApiError::manifest_unknown(format!(
                "nothing to delete in repository {repository:?}"
            )));
        }
        let names: Vec<&str> = doomed.iter().map(String::as_str).collect();
        oci.remove_refs(&names)?;
        Ok(())
    })
    .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// A header value from text the server built.
pub fn header_value(text: &str) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(text)
        .map_err(|_| ApiError::internal(format!("{text:?} is not a header value")))
}
