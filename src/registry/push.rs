//! `push`: a ref of the store to a registry. Everything the ref reaches is walked in the store
//! (and, with referrers, what refers to it); blobs go first, on several threads of the
//! transfer pipeline ([`crate::store::Pipeline`]), each skipped when the registry has it
//! (HEAD), mounted from another repository when asked, else uploaded (POST, then one PUT or
//! PATCH chunks), hashed as it leaves the store; then the manifests, children before the
//! indexes that name them, the root last under the tag. Referrers are
//! pushed after their subject; a registry without the referrers API (no `OCI-Subject` in its
//! answer) gets the tag-schema index.

use serde::Serialize;

use super::blobs::{blob_size, finish_upload, start_upload, UploadStart};
use super::error::{RegistryError, RegistryResult};
use super::manifests::{push_scope, put_manifest};
use super::origins;
use super::progress::ObservedReader;
use super::reference::{Reference, Target};
use super::referrers::add_to_fallback_index;
use super::verify::VerifiedContent;
use super::RegistryClient;
use crate::store::Pipeline;
use crate::store::{Direction, Progress, SkipReason, TransferEvent};
use crate::stores::oci::{digest_of, media_type_of, Child, OciStore, Reached, StoreSource, Walker};
use crate::traits::Digest;

/// How [`push()`] uploads an image.
#[derive(Clone, Debug)]
pub struct PushOptions {
    /// Blobs uploaded at once.
    pub jobs: usize,
    /// Upload in PATCH chunks of this many bytes (default: one PUT per blob).
    pub chunk_size: Option<u64>,
    /// Also push the referrers of what is pushed that the store has.
    pub with_referrers: bool,
    /// Ask the registry to mount blobs from this repository (same registry) first.
    pub mount_from: Option<String>,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            jobs: super::pull::DEFAULT_JOBS,
            chunk_size: None,
            with_referrers: false,
            mount_from: None,
        }
    }
}

/// What [`push()`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PushReport {
    /// The destination reference, as pushed to.
    pub reference: String,
    /// Digest of the root manifest or index pushed.
    pub digest: Option<Digest>,
    /// Blobs uploaded.
    pub blobs_uploaded: u64,
    /// Bytes uploaded.
    pub bytes_uploaded: u64,
    /// Blobs the registry had.
    pub blobs_present: u64,
    /// Blobs mounted from another repository of the registry (`mount_from`) instead of uploaded.
    pub blobs_mounted: u64,
    /// Manifests and indexes put, referrers included.
    pub manifests: u64,
    /// Of those, referrers (manifests with a subject).
    pub referrers: u64,
}

/// Pushes the image of ref `source_ref` of the OCI store to `destination`: its blobs (those the
/// registry lacks), then its manifests bottom-up, the root under the destination's tag (or digest);
/// with `with_referrers`, their referrers too. Fails when the ref is absent, a blob it reaches
/// is missing from the store, or the registry refuses a request.
pub fn push(
    oci: &OciStore<'_>,
    client: &RegistryClient,
    source_ref: &str,
    destination: &Reference,
    options: &PushOptions,
    progress: &dyn Progress,
) -> RegistryResult<PushReport> {
    let store = oci.store();
    // Shared: a GC waits, so nothing the push reads is swept under it.
    let _gc_lock = oci.mutation_lock()?;
    let resolved = oci.resolve_image(source_ref)?;
    let source_ref = &resolved.label();
    let (root, root_digest) = (resolved.descriptor, resolved.digest);
    let mut source = StoreSource { store };
    let mut walker = Walker::new();
    walker.visit(vec![Child::required(root.clone())], &mut source)?;
    walker.require_complete(&format!("ref {source_ref} in the store"))?;
    let image_end = walker.reached.len();
    if options.with_referrers {
        loop {
            let mut roots = Vec::new();
            for reached in walker.reached.iter().filter(|r| r.document.is_some()) {
                for referrer in oci.referrers(&reached.digest, None)? {
                    let digest = digest_of(&referrer, "a referrer")?;
                    if !walker.is_visited(&digest)
                        && !roots
                            .iter()
                            .any(|c: &Child| c.descriptor.digest() == referrer.digest())
                    {
                        roots.push(Child::required(referrer));
                    }
                }
            }
            if roots.is_empty() {
                break;
            }
            walker.visit(roots, &mut source)?;
        }
        walker.require_complete(&format!("the referrers of ref {source_ref}"))?;
    }
    let mut report = PushReport {
        reference: destination.to_string(),
        digest: Some(root_digest.clone()),
        ..PushReport::default()
    };
    let leaves: Vec<&Reached> = walker
        .reached
        .iter()
        .filter(|r| r.document.is_none())
        .collect();
    progress.transfer(TransferEvent::Planned {
        blobs: leaves.len() as u64,
        bytes: leaves.iter().map(|r| r.descriptor.size()).sum(),
        direction: Direction::Upload,
    });
    upload_blobs(
        oci,
        client,
        destination,
        &leaves,
        options,
        progress,
        &mut report,
    )?;

    // Pre-order reversed: every document after everything it names. The image first, then
    // the referrers (after their subjects).
    let (image, referrers) = walker.reached.split_at(image_end);
    for part in [image, referrers] {
        for reached in part.iter().rev().filter(|r| r.document.is_some()) {
            let is_root = reached.digest == root_digest;
            let target = match (&destination.target, is_root) {
                (Target::Tag(tag), true) => Target::Tag(tag.clone()),
                _ => Target::Digest(reached.digest.clone()),
            };
            let media_type = media_type_of(&reached.descriptor);
            let bytes = reached.document.as_deref().expect("filtered on documents");
            let accepted_subject =
                put_manifest(client, &destination.repository, &target, &media_type, bytes)?;
            report.manifests += 1;
            let subject = reached.links.as_ref().and_then(|l| l.subject.as_ref());
            if let Some(subject) = subject {
                report.referrers += 1;
                if accepted_subject.is_none() {
                    let subject =
                        digest_of(subject, &format!("the subject of {}", reached.digest))?;
                    let mut descriptor = reached.descriptor.clone();
                    let links = reached.links.as_ref().expect("documents have links");
                    descriptor.set_artifact_type(
                        links
                            .artifact_type
                            .as_deref()
                            .map(oci_spec::image::MediaType::from),
                    );
                    descriptor.set_annotations(links.annotations.clone().filter(|a| !a.is_empty()));
                    descriptor.set_platform(None);
                    add_to_fallback_index(client, destination, &subject, &descriptor)?;
                }
            }
        }
    }
    // The registry has them all now: a hint for later pushes to its other repositories.
    let blobs: Vec<Digest> = leaves.iter().map(|r| r.digest.clone()).collect();
    let _ = origins::record(
        store,
        &destination.registry,
        &destination.repository,
        &blobs,
    );
    progress.transfer(TransferEvent::Done);
    Ok(report)
}

fn upload_blobs(
    oci: &OciStore<'_>,
    client: &RegistryClient,
    destination: &Reference,
    leaves: &[&Reached],
    options: &PushOptions,
    progress: &dyn Progress,
    report: &mut PushReport,
) -> RegistryResult<()> {
    // Nothing to commit: the "commit" step only counts, on this thread.
    let mut totals = PushReport::default();
    Pipeline::new(options.jobs).run(
        leaves,
        |reached, _| upload_one(oci, client, destination, reached, options, progress),
        |outcomes| {
            for outcome in outcomes {
                match outcome {
                    Outcome::Present => totals.blobs_present += 1,
                    Outcome::Mounted => totals.blobs_mounted += 1,
                    Outcome::Uploaded(bytes) => {
                        totals.blobs_uploaded += 1;
                        totals.bytes_uploaded += bytes;
                    }
                }
            }
            Ok(())
        },
    )?;
    report.blobs_present += totals.blobs_present;
    report.blobs_mounted += totals.blobs_mounted;
    report.blobs_uploaded += totals.blobs_uploaded;
    report.bytes_uploaded += totals.bytes_uploaded;
    Ok(())
}

enum Outcome {
    Present,
    Mounted,
    Uploaded(u64),
}

/// One blob: HEAD, else mount, else upload; an upload that fails on the way (reset, 5xx) is
/// started again from the beginning, with backoff, up to the client's retries.
fn upload_one(
    oci: &OciStore<'_>,
    client: &RegistryClient,
    destination: &Reference,
    reached: &Reached,
    options: &PushOptions,
    progress: &dyn Progress,
) -> RegistryResult<Outcome> {
    let repository = &destination.repository;
    let digest = &reached.digest;
    let size = reached.descriptor.size();
    if blob_size(client, repository, digest, &push_scope(repository))?.is_some() {
        progress.transfer(TransferEvent::Skipped {
            digest: digest.clone(),
            reason: SkipReason::AlreadyInRegistry,
        });
        return Ok(Outcome::Present);
    }
    // The repository asked for, else one of this registry the store knows has the blob.
    let mount_from = match &options.mount_from {
        Some(from) => Some(from.clone()),
        None => origins::mount_source(oci.store(), &destination.registry, repository, digest)?,
    };
    let mut attempt = 0;
    loop {
        let session = match start_upload(client, repository, digest, mount_from.as_deref())? {
            UploadStart::Mounted => {
                progress.transfer(TransferEvent::Skipped {
                    digest: digest.clone(),
                    reason: SkipReason::Mounted,
                });
                return Ok(Outcome::Mounted);
            }
            UploadStart::Session(location) => location,
        };
        progress.transfer(TransferEvent::Started {
            digest: digest.clone(),
            size,
            direction: Direction::Upload,
        });
        let content = oci.store().read(digest)?;
        let verified = VerifiedContent::new(content, digest.clone(), size);
        let mut observed = ObservedReader::new(verified, progress, digest.clone());
        let result = finish_upload(
            client,
            repository,
            session,
            digest,
            size,
            &mut observed,
            options.chunk_size,
        );
        match result {
            Ok(()) => {
                progress.transfer(TransferEvent::Finished {
                    digest: digest.clone(),
                });
                return Ok(Outcome::Uploaded(size));
            }
            Err(error) if attempt < client.options().retries && retryable(&error) => {
                attempt += 1;
                std::thread::sleep(client.options().backoff * 2u32.pow(attempt.min(10)));
            }
            Err(error) => return Err(error),
        }
    }
}

/// A failed upload worth starting again: the connection broke, or the registry failed.
fn retryable(error: &RegistryError) -> bool {
    match error {
        RegistryError::Transport { source, .. } => {
            // Our own refusal of damaged content is no reason to try again.
            !matches!(source.as_ref(), ureq::Error::Io(e) if e.kind() == std::io::ErrorKind::InvalidData)
                && super::client::is_transient(source)
        }
        // 401 on an upload: its token expired between the POST and the PUT (an upload body
        // is sent once, so the client could not answer the challenge itself); the new POST
        // gets a fresh token.
        RegistryError::Status { status, .. } => *status == 401 || *status == 429 || *status >= 500,
        _ => false,
    }
}
