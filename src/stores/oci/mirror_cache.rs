//! What a pull-through mirror stores of an upstream's image as clients ask for it: a manifest
//! or index validated as a document and committed with its ref in one operation, before its
//! blobs (they come as clients ask for them). Such a ref may be incomplete until every blob
//! was asked for: `check` says what is missing, the GC keeps what is there. A document with a
//! subject is indexed as its referrer, so the referrers API answers for it.

use oci_spec::image::Descriptor;

use super::descriptor::new_descriptor;
use super::error::{OciError, OciResult};
use super::graph::{parse_document, DocumentKind, Reached};
use super::links::links_record;
use super::ref_name::RefName;
use super::validate::validate_document;
use super::{OciStore, HOLDER, REF_DATA_TYPE};
use crate::store::{OperationCommit, StagedBlob, WriteOptions};
use crate::traits::{Algorithm, Digest, ExtraOp, KvOp};

impl OciStore<'_> {
    /// Stores a manifest or index fetched from an upstream registry, valid as a document
    /// (shape and limits, as `import` checks it; children are not required), and names it
    /// `tag` when given, in one operation. Returns its descriptor. A document fetched by
    /// digest without a tag is kept as long as a ref reaches it (an index's platform
    /// manifests) and collected by the next GC otherwise.
    pub(crate) fn cache_manifest(
        &self,
        bytes: &[u8],
        media_type: &str,
        expected: Option<&Digest>,
        tag: Option<&RefName>,
    ) -> OciResult<Descriptor> {
        let kind = DocumentKind::of(media_type);
        let algorithm = expected.map_or(Algorithm::Sha256, Digest::algorithm);
        let digest = Digest::of_bytes(algorithm, bytes);
        if let Some(expected) = expected {
            if &digest != expected {
                return Err(OciError::Invalid(format!(
                    "the upstream sent a manifest that hashes to {digest}, not {expected}"
                )));
            }
        }
        if !kind.is_document() {
            return Err(OciError::Invalid(format!(
                "{digest}: media type {media_type:?} is not a manifest or index"
            )));
        }
        validate_document(kind, media_type, &digest, bytes)?;
        let descriptor = new_descriptor(media_type, &digest, bytes.len() as u64);
        // A referrer (it has a subject) is indexed as one, in the same batch as its ref.
        let reached = Reached {
            digest: digest.clone(),
            descriptor: descriptor.clone(),
            document: None,
            links: Some(parse_document(kind, media_type, &digest, bytes)?),
            linked: false,
        };
        let referrer = Self::referrer_entry(&reached)?;
        let _mutation = self.mutation_lock()?;
        let mut operation = self.store.begin_operation(&HOLDER)?;
        let size = bytes.len() as u64;
        if !operation.hold_present(&[(digest.clone(), size)])?[0] {
            let options = WriteOptions {
                media_type: Some(media_type.to_string()),
                expected_digest: Some(digest.clone()),
                expected_size: Some(size),
                ..WriteOptions::default()
            };
            operation.write(bytes, &options)?;
        }
        let entries: Vec<KvOp> = tag
            .map(|tag| KvOp::Put {
                data_type: REF_DATA_TYPE.to_string(),
                key: tag.to_string(),
                value: self.ref_value(&descriptor),
                blob: Some(digest.clone()),
            })
            .into_iter()
            .chain(referrer)
            .collect();
        let links: Vec<ExtraOp> = reached
            .links
            .as_ref()
            .and_then(|links| links_record(&digest, links))
            .into_iter()
            .collect();
        operation.commit(OperationCommit {
            keep: std::slice::from_ref(&digest),
            data: &entries,
            extra: &links,
        })?;
        Ok(descriptor)
    }

    /// Commits a blob fetched from an upstream (staged and verified) as the OCI flavour's,
    /// under the mutation lock so a running OCI GC, whose mark came before, does not sweep
    /// it; it stays as long as a cached ref reaches it.
    pub(crate) fn commit_fetched(&self, staged: StagedBlob<'_>) -> OciResult<()> {
        let _mutation = self.mutation_lock()?;
        self.store.commit_staged(vec![staged], &HOLDER)?;
        Ok(())
    }
}
