//! Receiving what a registry client pushes: the library calls behind `oci-store serve`'s push
//! API, so the server stays a thin HTTP face (DESIGN.md, "Serving, mirroring and retention").
//!
//! - A blob ([`OciStore::begin_upload`], then [`OciStore::receive_blob`]): an upload is one
//!   base-store operation for its whole life. It begins when the client starts the upload
//!   (recorded, with its liveness lock, before a byte is staged); the server streams the bytes
//!   into staging ([`Store::writer`](crate::store::Store::writer), then `stage`) across as many
//!   requests as the client needs, holding no lock, and hands the staged blob over with the
//!   operation. The same operation commits it under the flavour's mutation lock: the blob
//!   becomes `owner.oci`'s and an upload lease on it (an `oci.lease` entry that references the
//!   blob) lands in the same commit batch, so no GC can come between the hold and the lease. A
//!   blob no manifest claims before the lease expires is swept by the first OCI GC after that.
//!   An upload abandoned (cancelled, timed out, failed) is the operation dropped: nothing
//!   becomes visible; one whose process died is an operation the next GC clears, and its
//!   staged file a dead writer's, which the base GC removes.
//! - A manifest or index ([`OciStore::receive_manifest`]): validated as an import validates a
//!   document (media type, 4 MiB limit, the image-spec rules), then walked by the graph walker
//!   over the received bytes and the store, so every required blob it names must already be
//!   stored ([`OciError::ManifestBlobUnknown`] otherwise; a `subject` may be absent). Then one
//!   operation holds what it reaches, writes the document and commits through the import's
//!   commit: the ref (when tagged), the referrer entries and, for a manifest pushed by digest
//!   only, a lease, in one key/value batch.
//!
//! A refusal stores nothing (the store's full dump is unchanged); a process that dies
//! mid-operation leaves an operation that the next GC rolls back (or forward, once its batch
//! landed), as for an import.

use std::time::Duration;

use oci_spec::image::Descriptor;

use super::descriptor::{digest_of, media_type_of, new_descriptor};
use super::error::{OciError, OciResult};
use super::graph::{
    verify_document, Child, ContentSource, DocumentKind, Fetched, Walker, DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST, OCI_ARTIFACT_MANIFEST, OCI_INDEX, OCI_MANIFEST,
};
use super::lease::new_lease;
use super::ref_name::RefName;
use super::source::StoreSource;
use super::{OciStore, HOLDER};
use crate::store::{
    validate_media_type, Holder, Operation, OperationCommit, StagedBlob, StoreError, WriteOptions,
};
use crate::traits::{Algorithm, BlobRecord, Digest, KvOp};

/// What [`OciStore::receive_manifest`] stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedManifest {
    /// The digest of the manifest or index (sha256 of the bytes received).
    pub digest: Digest,
    /// The digest its `subject` names, if it has one (for the `OCI-Subject` header).
    pub subject: Option<Digest>,
}

/// A blob upload in progress: the one base-store operation it is, from the client's first
/// request to [`OciStore::receive_blob`]. Dropping it abandons the upload: the operation lets go
/// of whatever it held and removes its entry, leaving the store as it was.
pub struct UploadOperation<'s> {
    operation: Operation<'s>,
}

impl UploadOperation<'_> {
    /// The operation's holder (`oci-op.<id>`): its entry in `store.operation` names it.
    pub fn holder(&self) -> &Holder {
        self.operation.holder()
    }
}

impl<'s> OciStore<'s> {
    /// Begins a blob upload: an operation of the OCI flavour, recorded before anything is
    /// staged. It holds nothing until [`OciStore::receive_blob`] commits the blob, so it needs
    /// no lock meanwhile: an upload may stay open for as long as its client takes without
    /// keeping any GC waiting.
    pub fn begin_upload(&self) -> OciResult<UploadOperation<'s>> {
        Ok(UploadOperation {
            operation: self.store.begin_operation(&HOLDER)?,
        })
    }

    /// Commits a blob a client uploaded (streamed into staging and staged by the caller)
    /// through the upload's own operation, as the OCI flavour's, protected from the OCI GC by
    /// an upload lease for `keep_for`: a manifest received meanwhile claims it; otherwise the
    /// first GC after the lease expires reclaims it. A blob the store already has is held the
    /// same way (its protection renewed). Nothing becomes a ref. Returns the blob's record.
    pub fn receive_blob<'u>(
        &self,
        upload: UploadOperation<'u>,
        staged: StagedBlob<'u>,
        keep_for: Duration,
    ) -> OciResult<BlobRecord> {
        debug_assert!(std::ptr::eq(upload.operation.store(), self.store));
        let mut operation = upload.operation;
        // Taken only now, for the commit: an OCI GC that marked before the hold waits, so it
        // never sweeps the blob between its hold and its lease.
        let _mutation = self.mutation_lock()?;
        let record = operation.commit_staged(vec![staged])?.remove(0);
        let keep = [record.digest.clone()];
        let (_, lease) = new_lease(keep_for, &keep, Some(&record.digest));
        operation
            .commit(OperationCommit::new(&keep, &[lease]))
            .map_err(|error| match error {
                // Our own hold keeps it; only an explicit delete can take it.
                StoreError::BlobVanished { digest } => OciError::BlobVanished {
                    digest,
                    reason: "deleted explicitly while it was received; upload it again".to_string(),
                },
                other => other.into(),
            })?;
        Ok(record)
    }

    /// Stores a manifest or index a client pushed, as `media_type` (one of the manifest and
    /// index types the store reads), after validating it as an import validates a document.
    /// Every required blob it names must be in the store already
    /// ([`OciError::ManifestBlobUnknown`] names the first that is not); a `subject` may be
    /// absent. With `tag`, the ref `tag` names it (replacing what it named); without, a lease
    /// keeps it (and what it reaches) for `keep_untagged_for`, for a tag or an index to claim
    /// it. A manifest with a subject is recorded as its referrer. All or nothing: a refusal
    /// stores nothing.
    pub fn receive_manifest(
        &self,
        bytes: &[u8],
        media_type: &str,
        tag: Option<&RefName>,
        keep_untagged_for: Duration,
    ) -> OciResult<ReceivedManifest> {
        if !DocumentKind::of(media_type).is_document() {
            return Err(OciError::UnsupportedManifestMediaType {
                media_type: media_type.to_string(),
                accepted: [
                    OCI_MANIFEST,
                    OCI_INDEX,
                    DOCKER_MANIFEST,
                    DOCKER_MANIFEST_LIST,
                    OCI_ARTIFACT_MANIFEST,
                ]
                .join(", "),
            });
        }
        let digest = Digest::of_bytes(Algorithm::Sha256, bytes);
        let descriptor = new_descriptor(media_type, &digest, bytes.len() as u64);
        // Held to the commit: the OCI GC does not sweep what the walk found present.
        let _mutation = self.mutation_lock()?;

        // Validate and walk first, before anything is stored.
        let mut source = ReceivedSource {
            digest: &digest,
            bytes,
            store: StoreSource { store: self.store },
        };
        let mut walker = Walker::new();
        walker.visit(vec![Child::required(descriptor.clone())], &mut source)?;
        if let Some((missing, child)) = walker.missing.first() {
            return Err(blob_unknown(&digest, missing, child));
        }
        walker.require_complete(&source.name())?;
        let subject = walker
            .reached
            .iter()
            .find(|reached| reached.digest == digest)
            .and_then(|root| root.links.as_ref()?.subject.as_ref())
            .map(|subject| digest_of(subject, &format!("the subject of {digest}")))
            .transpose()?;

        let mut operation = self.store.begin_operation(&HOLDER)?;
        let wanted: Vec<(Digest, u64)> = walker
            .reached
            .iter()
            .map(|reached| (reached.digest.clone(), reached.descriptor.size()))
            .collect();
        let held = operation.hold_present(&wanted)?;
        let mut document_stored = false;
        for (reached, held) in walker.reached.iter().zip(held) {
            match (held, reached.digest == digest) {
                (true, true) => document_stored = true,
                (true, false) | (false, true) => {}
                // Found by the walk, gone since (an explicit delete or another flavour's GC):
                // missing now, as if it had never been pushed.
                (false, false) => {
                    return Err(blob_unknown(&digest, &reached.digest, &reached.descriptor))
                }
            }
        }
        if !document_stored {
            let options = WriteOptions {
                media_type: Some(media_type.to_string()),
                expected_digest: Some(digest.clone()),
                expected_size: Some(bytes.len() as u64),
                ..WriteOptions::default()
            };
            operation.write(bytes, &options)?;
        }
        // Uploads arrive without a media type: they get the one the manifest gives them (only
        // records still at the default change), so a leased manifest is walked as one.
        let named: Vec<(Digest, String)> = walker
            .reached
            .iter()
            .map(|reached| (reached.digest.clone(), media_type_of(&reached.descriptor)))
            .filter(|(_, media_type)| validate_media_type(media_type).is_ok())
            .collect();
        self.store.name_media_types(&named)?;

        let refs: Vec<(RefName, Descriptor)> = tag
            .map(|tag| (tag.clone(), descriptor.clone()))
            .into_iter()
            .collect();
        // Pushed by digest only: a lease keeps it until a tag or an index claims it.
        let entries: Vec<KvOp> = match tag {
            Some(_) => Vec::new(),
            None => {
                let only = std::slice::from_ref(&digest);
                vec![new_lease(keep_untagged_for, only, Some(&digest)).1]
            }
        };
        self.commit_import_with(operation, &walker.reached, &refs, entries)?;
        Ok(ReceivedManifest { digest, subject })
    }
}

fn blob_unknown(manifest: &Digest, missing: &Digest, descriptor: &Descriptor) -> OciError {
    OciError::ManifestBlobUnknown {
        manifest: manifest.clone(),
        missing: missing.clone(),
        media_type: media_type_of(descriptor),
    }
}

/// What a received document's walk reads: the received bytes for its own digest, the store for
/// everything else. Strict: what is received is validated to the image-spec, as an import
/// validates what it brings in (and the configs and documents it names, which the store holds
/// as uploaded blobs, are checked with it).
struct ReceivedSource<'a> {
    digest: &'a Digest,
    bytes: &'a [u8],
    store: StoreSource<'a>,
}

impl ReceivedSource<'_> {
    fn mismatch(&self, blob: &Digest, reason: String) -> OciError {
        OciError::ManifestBlobMismatch {
            manifest: self.digest.clone(),
            blob: blob.clone(),
            reason,
        }
    }
}

impl ContentSource for ReceivedSource<'_> {
    fn name(&self) -> String {
        format!("manifest {} and {}", self.digest, self.store.name())
    }

    fn strict(&self) -> bool {
        true
    }

    fn fetch(
        &mut self,
        digest: &Digest,
        descriptor: &Descriptor,
        document: bool,
    ) -> OciResult<Fetched> {
        if digest == self.digest {
            // The walk starts here, so any later descriptor naming it (a cycle) is not fetched.
            verify_document(digest, descriptor.size(), self.bytes)
                .map_err(|reason| self.mismatch(digest, reason))?;
            return Ok(if document {
                Fetched::Document(self.bytes.to_vec())
            } else {
                Fetched::Present
            });
        }
        if !document {
            // Present means present with the size the manifest says (the store's record was
            // verified when the blob came in).
            return match self.store.store.record(digest)? {
                None => Ok(Fetched::Absent),
                Some(record) if record.size != descriptor.size() => Err(self.mismatch(
                    digest,
                    format!(
                        "the store has it with {} bytes, the manifest says {}",
                        record.size,
                        descriptor.size()
                    ),
                )),
                Some(_) => Ok(Fetched::Present),
            };
        }
        match self.store.fetch(digest, descriptor, true)? {
            Fetched::Corrupt(reason) => Err(self.mismatch(digest, reason)),
            fetched => Ok(fetched),
        }
    }
}
