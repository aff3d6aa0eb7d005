//! Fetching through, for a pull-through mirror (`serve --mirror`): one manifest, or one blob,
//! from an upstream into the store, as a client asks for it. A blob is fetched under the same
//! per-digest fetch lock `pull` takes, so however many clients, servers and pulls ask for a
//! cold blob at once, one downloads it and the others find it stored; it is streamed into
//! staging and verified before it is committed.

use super::blobs::{blob_size, stage_download, BlobDownload};
use super::client::RegistryClient;
use super::error::{RegistryError, RegistryResult};
use super::manifests::{get_manifest, head_manifest_digest, pull_scope};
use super::pull::fetch_lock;
use super::reference::{Reference, Target};
use super::referrers::list_referrers;
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

/// Whether the upstream's `repository:tag` is still `cached` (a HEAD, no body).
pub fn tag_unchanged(
    client: &RegistryClient,
    registry: &str,
    repository: &str,
    tag: &str,
    cached: &Digest,
) -> RegistryResult<bool> {
    let reference = Reference {
        registry: registry.to_string(),
        repository: repository.to_string(),
        target: Target::Tag(tag.to_string()),
        kept_tag: None,
    };
    Ok(head_manifest_digest(client, &reference)?.as_ref() == Some(cached))
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
        kept_tag: None,
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

/// Stores the referrer manifests the upstream lists for `subject` (the referrers API, else
/// the tag schema), each as a document indexed under its subject. Returns how many it lists.
pub fn fetch_referrers(
    oci: &OciStore<'_>,
    client: &RegistryClient,
    registry: &str,
    repository: &str,
    subject: &Digest,
) -> RegistryResult<usize> {
    let reference = Reference {
        registry: registry.to_string(),
        repository: repository.to_string(),
        target: Target::Digest(subject.clone()),
        kept_tag: None,
    };
    let listed = list_referrers(client, repository, &reference, subject)?;
    for descriptor in &listed {
        let digest =
            Digest::parse(descriptor.digest().as_ref()).map_err(|e| RegistryError::Protocol {
                url: client.url(&format!("{repository}/referrers/{subject}")),
                reason: format!("a referrer's digest: {e}"),
            })?;
        if oci.store().record(&digest)?.is_none() {
            fetch_manifest(
                oci,
                client,
                registry,
                repository,
                Target::Digest(digest),
                None,
            )?;
        }
    }
    Ok(listed.len())
}

/// How [`fetch_blob`] ended.
#[derive(Debug, PartialEq, Eq)]
pub enum FetchedBlob {
    /// The store had it (or another process stored it while this one waited its turn).
    AlreadyStored,
    /// Downloaded, verified and stored.
    Stored,
    /// The upstream does not have it.
    NotFound,
}

/// Passes each piece of a download on to `observe` as the store's writer reads it.
struct Tee<R, F> {
    inner: R,
    observe: F,
}

impl<R: std::io::Read, F: FnMut(&[u8])> std::io::Read for Tee<R, F> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        (self.observe)(&buf[..read]);
        Ok(read)
    }
}

/// Brings blob `digest` of `repository` from `client`'s registry into the store, unless it
/// is there already or another process stores it while this one waits for its fetch lock.
/// While downloading, `started` learns the size and `observe` sees every piece as it arrives
/// (before it is verified: a mismatch at the end is this call's error, and nothing is
/// stored), so a server can stream it on to its first client.
pub fn fetch_blob(
    oci: &OciStore<'_>,
    client: &RegistryClient,
    repository: &str,
    digest: &Digest,
    started: impl FnOnce(u64),
    observe: impl FnMut(&[u8]),
) -> RegistryResult<FetchedBlob> {
    let store = oci.store();
    let _fetching = fetch_lock(store, digest, |acquire| acquire())?;
    if store.record(digest)?.is_some() && store.contains(digest)? {
        return Ok(FetchedBlob::AlreadyStored);
    }
    let Some(size) = blob_size(client, repository, digest, &pull_scope(repository))? else {
        return Ok(FetchedBlob::NotFound);
    };
    started(size);
    let download = Tee {
        inner: BlobDownload::new(client, repository, digest, size),
        observe,
    };
    let options = WriteOptions {
        expected_digest: Some(digest.clone()),
        expected_size: Some(size),
        ..WriteOptions::default()
    };
    // A plain writer, not a resumable one: the first client is streamed the blob from its
    // first byte as it arrives, which a download that goes on from a killed pull's part
    // would not give it.
    let staged = stage_download(store.writer(&options)?, download, repository, digest)?;
    oci.commit_fetched(staged)?;
    Ok(FetchedBlob::Stored)
}
