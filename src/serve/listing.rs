//! Lists: `/v2/_catalog`, `/v2/<name>/tags/list` (both paged with `n` and `last`, with a
//! `Link` header to the next page) and the referrers API.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::error::ApiError;
use super::manifests::header_value;
use super::names;
use super::routes::Request;
use super::state::blocking;
use crate::stores::oci::OciStore;
use crate::traits::Digest;

/// The media type of the referrers API's answer.
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Every repository with its tags, from the refs.
async fn listed(
    request: &Request,
) -> Result<std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>, ApiError>
{
    let store = request.state.store;
    blocking(move || -> Result<_, ApiError> {
        let refs = OciStore::new(store).ref_descriptors()?;
        Ok(names::repositories(refs.into_iter().map(|(name, _)| name)))
    })
    .await
}

/// One page of a sorted list: after `last`, at most `n`; with the `Link` to the next page
/// when there is more.
fn page(
    request: &Request,
    path: &str,
    field: &str,
    name: Option<&str>,
    all: Vec<String>,
) -> Result<Response, ApiError> {
    let n = match request.param("n") {
        Some(text) => Some(text.parse::<usize>().map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "PAGINATION_NUMBER_INVALID",
                format!("n={text:?} is not a number"),
            )
        })?),
        None => None,
    };
    let last = request.param("last");
    let after: Vec<String> = all
        .into_iter()
        .filter(|item| last.is_none_or(|last| item.as_str() > last))
        .collect();
    let (shown, more) = match n {
        Some(n) if after.len() > n => (after[..n].to_vec(), true),
        _ => (after, false),
    };
    let mut body = serde_json::Map::new();
    if let Some(name) = name {
        body.insert("name".to_string(), json!(name));
    }
    body.insert(field.to_string(), json!(shown));
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::Value::Object(body).to_string(),
    )
        .into_response();
    if let (true, Some(n), Some(last_shown)) = (more, n, shown.last()) {
        let link = format!(
            "<{path}?n={n}&last={}>; rel=\"next\"",
            percent_encode(last_shown)
        );
        response
            .headers_mut()
            .insert(header::LINK, header_value(&link)?);
    }
    Ok(response)
}

/// Escapes what a query value may not hold as is (repository names and tags need little).
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `GET /v2/_catalog`.
pub async fn catalog(request: &Request) -> Result<Response, ApiError> {
    let repositories: Vec<String> = listed(request).await?.into_keys().collect();
    page(request, "/v2/_catalog", "repositories", None, repositories)
}

/// `GET /v2/<name>/tags/list`.
pub async fn tags(request: &Request, repository: &str) -> Result<Response, ApiError> {
    let mut listed = listed(request).await?;
    let tags: Vec<String> = listed
        .remove(repository)
        .ok_or_else(|| ApiError::name_unknown(repository))?
        .into_keys()
        .collect();
    page(
        request,
        &format!("/v2/{repository}/tags/list"),
        "tags",
        Some(repository),
        tags,
    )
}

/// `GET /v2/<name>/referrers/<digest>[?artifactType=...]`: an image index of the manifests
/// whose subject is the digest (an empty one when there are none, as the spec asks).
pub async fn referrers(
    request: &Request,
    repository: &str,
    digest: &str,
) -> Result<Response, ApiError> {
    let subject = Digest::parse(digest)
        .map_err(|e| ApiError::digest_invalid(format!("invalid digest {digest:?}: {e}")))?;
    let artifact_type = request.param("artifactType").map(str::to_string);
    let store = request.state.store;
    let filter = artifact_type.clone();
    let (state, namespace, repository) = (
        request.state.clone(),
        request.param("ns").map(str::to_string),
        repository.to_string(),
    );
    let found = blocking(move || -> Result<_, ApiError> {
        // Mirrored: what the upstream lists is brought in first (once per TTL).
        if let Some(upstream) = state.upstreams.for_namespace(namespace.as_deref()) {
            super::mirror::refresh_referrers(
                store,
                &state.upstreams,
                upstream,
                &repository,
                &subject,
            )?;
        }
        Ok(OciStore::new(store).referrers(&subject, filter.as_deref())?)
    })
    .await?;
    let body = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": found,
    });
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, OCI_INDEX)],
        body.to_string(),
    )
        .into_response();
    if artifact_type.is_some() {
        response
            .headers_mut()
            .insert("OCI-Filters-Applied", header_value("artifactType")?);
    }
    Ok(response)
}
