//! Referrers on a registry: the referrers API (`GET /v2/<name>/referrers/<digest>`), and the
//! distribution spec's tag schema for registries without it (distribution 2.8 among them): an
//! index tagged `<alg>-<hex>` of the subject, listing its referrers.

use oci_spec::image::Descriptor;
use ureq::http::Method;

use super::client::{Payload, RegistryClient};
use super::error::{RegistryError, RegistryResult};
use super::manifests::{get_manifest, pull_scope, put_manifest, OCI_INDEX};
use super::reference::{Reference, Target};
use crate::stores::oci::MAX_DOCUMENT_SIZE;
use crate::traits::Digest;

/// The tag-schema tag of `subject`: `sha256-<hex>`.
pub fn fallback_tag(subject: &Digest) -> String {
    subject.dashed()
}

fn manifests_of(bytes: &[u8], url: &str) -> RegistryResult<Vec<Descriptor>> {
    #[derive(serde::Deserialize)]
    struct Listing {
        #[serde(default)]
        manifests: Vec<Descriptor>,
    }
    let listing: Listing = serde_json::from_slice(bytes).map_err(|e| RegistryError::Protocol {
        url: url.to_string(),
        reason: format!("the referrers listing is not an index: {e}"),
    })?;
    Ok(listing.manifests)
}

/// The referrers of `subject` in `repository`: from the API, else from the tag schema.
pub fn list_referrers(
    client: &RegistryClient,
    repository: &str,
    registry_reference: &Reference,
    subject: &Digest,
) -> RegistryResult<Vec<Descriptor>> {
    let url = client.url(&format!("{repository}/referrers/{subject}"));
    let mut response = client.send(
        Method::GET,
        &url,
        &pull_scope(repository),
        &[("Accept", OCI_INDEX.to_string())],
        Payload::Empty,
    )?;
    match response.status().as_u16() {
        200 => {
            let bytes = response
                .body_mut()
                .with_config()
                .limit(MAX_DOCUMENT_SIZE)
                .read_to_vec()
                .map_err(|e| RegistryError::Transport {
                    method: "GET".to_string(),
                    url: url.clone(),
                    source: Box::new(e),
                })?;
            manifests_of(&bytes, &url)
        }
        // No referrers API: the tag schema.
        404 | 405 => {
            let tagged = registry_reference.with_target(Target::Tag(fallback_tag(subject)));
            match get_manifest(client, &tagged)? {
                Some(index) => manifests_of(&index.bytes, &tagged.to_string()),
                None => Ok(Vec::new()),
            }
        }
        _ => Err(client.status_error("GET", &url, response)),
    }
}

/// Adds `referrer` to the tag-schema index of `subject` (creating it), for a registry that did
/// not take the subject itself (no `OCI-Subject` in its answer to the manifest's PUT).
pub fn add_to_fallback_index(
    client: &RegistryClient,
    destination: &Reference,
    subject: &Digest,
    referrer: &Descriptor,
) -> RegistryResult<()> {
    let tagged = destination.with_target(Target::Tag(fallback_tag(subject)));
    let mut manifests = match get_manifest(client, &tagged)? {
        Some(index) => manifests_of(&index.bytes, &tagged.to_string())?,
        None => Vec::new(),
    };
    if manifests.iter().any(|d| d.digest() == referrer.digest()) {
        return Ok(());
    }
    manifests.push(referrer.clone());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    });
    let bytes = serde_json::to_vec(&index).expect("JSON values serialize");
    put_manifest(
        client,
        &destination.repository,
        &tagged.target,
        OCI_INDEX,
        &bytes,
    )?;
    Ok(())
}
