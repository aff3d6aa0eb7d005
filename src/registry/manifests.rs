//! Manifest requests: GET/HEAD by tag or digest with an `Accept` for every manifest and index
//! type we read, the bytes verified against the digest asked for and `Docker-Content-Digest`;
//! PUT. Docker schema 1 is refused with a clear message.

use ureq::http::Method;

use super::client::{header, Payload, RegistryClient};
use super::error::{RegistryError, RegistryResult};
use super::reference::{Reference, Target};
use crate::stores::oci::MAX_DOCUMENT_SIZE;
use crate::traits::{Algorithm, Digest};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_ARTIFACT_MANIFEST: &str = "application/vnd.oci.artifact.manifest.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// What we ask for; schema 1 last, so a registry that has only that sends it and we can say
/// why we refuse it (instead of a bare 404).
pub fn accept_header() -> String {
    format!(
        "{OCI_INDEX}, {OCI_MANIFEST}, {DOCKER_MANIFEST_LIST}, {DOCKER_MANIFEST}, \
         {OCI_ARTIFACT_MANIFEST}, {DOCKER_SCHEMA1_SIGNED};q=0.1, {DOCKER_SCHEMA1};q=0.1"
    )
}

/// A manifest or index as the registry sent it, verified.
#[derive(Clone, Debug)]
pub struct FetchedManifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: Digest,
}

pub fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

pub fn push_scope(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

/// The URL of the manifest `reference` names.
fn manifest_url(client: &RegistryClient, reference: &Reference) -> String {
    client.url(&format!(
        "{}/manifests/{}",
        reference.repository,
        reference.target.as_path()
    ))
}

/// The digest the registry gives for `reference` (HEAD, `Docker-Content-Digest`), `None`
/// when it does not have it or does not say: revalidating a cached tag without its body.
pub fn head_manifest_digest(
    client: &RegistryClient,
    reference: &Reference,
) -> RegistryResult<Option<Digest>> {
    let target = manifest_url(client, reference);
    let response = client.send(
        Method::HEAD,
        &target,
        &pull_scope(&reference.repository),
        &[("Accept", accept_header())],
        Payload::Empty,
    )?;
    match response.status().as_u16() {
        200 => Ok(header(&response, "docker-content-digest")
            .and_then(|value| Digest::parse(value.trim()).ok())),
        404 => Ok(None),
        _ => Err(client.status_error("HEAD", &target, response)),
    }
}

/// GETs the manifest `reference` names and verifies it: against the digest asked for, and
/// against `Docker-Content-Digest` when the registry sends one. Returns `None` on 404.
pub fn get_manifest(
    client: &RegistryClient,
    reference: &Reference,
) -> RegistryResult<Option<FetchedManifest>> {
    let target = manifest_url(client, reference);
    let mut response = client.send(
        Method::GET,
        &target,
        &pull_scope(&reference.repository),
        &[("Accept", accept_header())],
        Payload::Empty,
    )?;
    match response.status().as_u16() {
        200 => {}
        404 => return Ok(None),
        _ => return Err(client.status_error("GET", &target, response)),
    }
    let too_large = |size| RegistryError::TooLarge {
        reference: reference.to_string(),
        what: "the manifest",
        size,
        limit: MAX_DOCUMENT_SIZE,
    };
    if let Some(length) = response.body().content_length() {
        if length > MAX_DOCUMENT_SIZE {
            return Err(too_large(length));
        }
    }
    let content_type = header(&response, "content-type");
    let header_digest = header(&response, "docker-content-digest");
    let bytes = response
        .body_mut()
        .with_config()
        .limit(MAX_DOCUMENT_SIZE)
        .read_to_vec()
        .map_err(|error| match error {
            ureq::Error::BodyExceedsLimit(_) => too_large(MAX_DOCUMENT_SIZE + 1),
            other => RegistryError::Transport {
                method: "GET".to_string(),
                url: target.clone(),
                source: Box::new(other),
            },
        })?;
    let media_type = media_type_of(&bytes, content_type.as_deref());
    if media_type == DOCKER_SCHEMA1 || media_type == DOCKER_SCHEMA1_SIGNED || is_schema1(&bytes) {
        return Err(RegistryError::Schema1 {
            reference: reference.to_string(),
            media_type,
        });
    }
    let digest = match &reference.target {
        Target::Digest(digest) => digest.clone(),
        Target::Tag(_) => match &header_digest {
            Some(value) => Digest::parse(value.trim()).map_err(|e| RegistryError::Protocol {
                url: target.clone(),
                reason: format!("Docker-Content-Digest {value:?}: {e}"),
            })?,
            None => Digest::of_bytes(Algorithm::Sha256, &bytes),
        },
    };
    verify(reference, "the manifest", &digest, &bytes)?;
    if let Some(value) = &header_digest {
        if let Ok(said) = Digest::parse(value.trim()) {
            verify(
                reference,
                "a manifest whose Docker-Content-Digest",
                &said,
                &bytes,
            )?;
        }
    }
    Ok(Some(FetchedManifest {
        bytes,
        media_type,
        digest,
    }))
}

fn verify(
    reference: &Reference,
    what: &'static str,
    expected: &Digest,
    bytes: &[u8],
) -> RegistryResult<()> {
    let actual = Digest::of_bytes(expected.algorithm(), bytes);
    if &actual != expected {
        return Err(RegistryError::DigestMismatch {
            reference: reference.to_string(),
            what,
            expected: expected.clone(),
            actual,
        });
    }
    Ok(())
}

/// The document's own `mediaType`, else the `Content-Type` (without parameters), else what
/// its shape says (image-spec 1.0 documents may omit it).
fn media_type_of(bytes: &[u8], content_type: Option<&str>) -> String {
    let value: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
    if let Some(own) = value["mediaType"].as_str() {
        return own.to_string();
    }
    let content_type = content_type
        .map(|c| c.split(';').next().unwrap_or(c).trim().to_string())
        .filter(|c| !c.is_empty() && c != "application/json" && c != "text/plain");
    if let Some(content_type) = content_type {
        return content_type;
    }
    if value.get("manifests").is_some() {
        OCI_INDEX.to_string()
    } else {
        OCI_MANIFEST.to_string()
    }
}

fn is_schema1(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .is_ok_and(|value| value["schemaVersion"].as_u64() == Some(1))
}

/// PUTs a manifest under a tag or its digest. Returns the `OCI-Subject` header the registry
/// sends when it has the referrers API and processed the manifest's subject.
pub fn put_manifest(
    client: &RegistryClient,
    repository: &str,
    target: &Target,
    media_type: &str,
    bytes: &[u8],
) -> RegistryResult<Option<String>> {
    let url = client.url(&format!("{repository}/manifests/{}", target.as_path()));
    let response = client.send(
        Method::PUT,
        &url,
        &push_scope(repository),
        &[("Content-Type", media_type.to_string())],
        Payload::Bytes(bytes),
    )?;
    if response.status().as_u16() != 201 {
        return Err(client.status_error("PUT", &url, response));
    }
    Ok(header(&response, "oci-subject"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_comes_from_the_document_first() {
        let doc = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        assert_eq!(media_type_of(doc, Some("application/json")), OCI_INDEX);
        let bare = br#"{"schemaVersion":2,"config":{},"layers":[]}"#;
        assert_eq!(
            media_type_of(bare, Some(&format!("{DOCKER_MANIFEST}; charset=utf-8"))),
            DOCKER_MANIFEST
        );
        assert_eq!(media_type_of(bare, None), OCI_MANIFEST);
        assert!(is_schema1(br#"{"schemaVersion":1,"fsLayers":[]}"#));
    }
}
