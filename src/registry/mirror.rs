//! Fetching through, for a pull-through mirror (`serve --mirror`): one manifest, or one blob,
//! from an upstream into the store, as a client asks for it. A blob is fetched under the same
//! per-digest fetch lock `pull` takes, so however many clients, servers and pulls ask for a
//! cold blob at once, one downloads it and the others find it stored; it is streamed into
//! staging and verified before it is committed.

use super::blobs::{blob_size, BlobDownload};
use super::client::RegistryClient;
use super::error::{RegistryError, RegistryResult};
use super::manifests::{get_manifest, pull_scope};
use super::pull::fetch_lock;
use super::reference::{Reference, Target};
use crate::store::WriteOptions;
use crate::stores::oci::{OciStore, RefName};
use crate::traits::Digest;

/// What an upstream answered for a manifest.
pub enum UpstreamManifest {
    /// Stored (or already there).
    Stored,
    /// The upstream does not have it.
    NotFound,
}

/// Fetches the manifest `target` of `repository` from `client`'s registry and stores it,
/// named `ref_name` when given (a tag's local ref): the document alone, its blobs come when
/// asked for.
pub fn fetch_manifest(
    oci: &OciStore<'_>,
    client: &RegistryClient,
    registry: &str,
    repository: &str,
    target: Target,
    ref_name: Option<&RefName>,
) -> RegistryResult<UpstreamManifest> {
    let expected = match &target {
        Target::Digest(digest) => Some(digest.clone()),
        Target::Tag(_) => None,
    };
    let reference = Reference {
        registry: registry.to_string(),
        repository: repository.to_string(),
        target,
    };
    let Some(fetched) = get_manifest(client, &reference)? else {
        return Ok(UpstreamManifest::NotFound);
    };
    if let Some(expected) = &expected {
        if &fetched.digest != expected {
            return Err(RegistryError::DigestMismatch {
                reference: reference.to_string(),
                what: "the manifest",
                expected: expected.clone(),
                actual: fetched.digest,
            });
        }
    }
    oci.cache_manifest(
        &fetched.bytes,
        &fetched.media_type,
        Some(&fetched.digest),
        ref_name,
    )?;
    Ok(UpstreamManifest::Stored)
}

/// Brings blob `digest` of `repository` from `client`'s registry into the store, unless it
/// is there already or another process stores it while this one waits for its fetch lock.
/// Returns whether the store has it now (`false`: the upstream does not have it).
pub fn fetch_blob(
    oci: &OciStore<'_>,
    client: &RegistryClient,
    repository: &str,
    digest: &Digest,
) -> RegistryResult<bool> {
    let store = oci.store();
    let _fetching = fetch_lock(store, digest, |acquire| acquire())?;
    if store.record(digest)?.is_some() && store.contains(digest)? {
        return Ok(true);
    }
    let Some(size) = blob_size(client, repository, digest, &pull_scope(repository))? else {
        return Ok(false);
    };
    let download = BlobDownload::new(client, repository, digest, size);
    let options = WriteOptions {
        expected_digest: Some(digest.clone()),
        expected_size: Some(size),
        ..WriteOptions::default()
    };
    let staged = store
        .stage(download, &options)
        .map_err(|error| match error {
            crate::store::StoreError::Io(io)
                if io
                    .io_error()
                    .get_ref()
                    .is_some_and(|e| e.is::<RegistryError>()) =>
            {
                super::blobs::io_to_registry(repository, digest, io.into_io_error())
            }
            other => other.into(),
        })?;
    oci.commit_fetched(staged)?;
    Ok(true)
}
