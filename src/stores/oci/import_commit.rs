//! The end of an import and of a pull, written once: the referrer-index entries of everything
//! reached and the refs land in one key/value batch, as the operation's commit, which passes
//! the hold on everything reached to `owner.oci` (with each document's recorded links, see
//! `links`) and lets go of the rest.

use oci_spec::image::Descriptor;

use super::descriptor::{digest_of, without_ref_name};
use super::error::{OciError, OciResult};
use super::graph::Reached;
use super::layout_import::ImportedRef;
use super::links::links_record;
use super::ref_name::RefName;
use super::{OciStore, REF_DATA_TYPE};
use crate::store::{Operation, OperationCommit, StoreError};
use crate::traits::{Digest, ExtraOp, KvOp};

/// Key/value data type of the entries that recorded running imports before imports became
/// base-store operations ([`crate::store::Operation`]); the OCI GC still clears crashed ones.
pub const IMPORT_DATA_TYPE: &str = "oci.import";
/// Holder kind of those imports ([`crate::store::Holder::scoped`]): their blobs carry
/// `owner.oci-import.<id>`.
pub const IMPORT_HOLDER_KIND: &str = "oci-import";

#[cfg(any(test, feature = "test-support"))]
/// The holder of the (older versions') import recorded under `id`.
pub fn import_holder(id: &str) -> crate::store::Holder {
    crate::store::Holder::scoped(IMPORT_HOLDER_KIND, id)
}

impl OciStore<'_> {
    /// Everything `reached` is stored and held by `operation`: commits it with the refs (each
    /// to its descriptor, without a layout's ref-name annotation) and the referrer-index
    /// entries of what was reached, all or nothing. Returns the refs written.
    pub(crate) fn commit_import(
        &self,
        operation: Operation<'_>,
        reached: &[Reached],
        refs: &[(RefName, Descriptor)],
    ) -> OciResult<Vec<ImportedRef>> {
        self.commit_import_with(operation, reached, refs, Vec::new())
    }

    /// [`OciStore::commit_import`], with `entries` (such as a lease on what is committed)
    /// landing in the same key/value batch as the refs.
    pub(crate) fn commit_import_with(
        &self,
        operation: Operation<'_>,
        reached: &[Reached],
        refs: &[(RefName, Descriptor)],
        entries: Vec<KvOp>,
    ) -> OciResult<Vec<ImportedRef>> {
        let mut batch = entries;
        for reached in reached {
            batch.extend(Self::referrer_entry(reached)?);
        }
        let mut imported = Vec::with_capacity(refs.len());
        for (name, descriptor) in refs {
            let descriptor = without_ref_name(descriptor);
            let digest = digest_of(&descriptor, &format!("ref {name}"))?;
            batch.push(KvOp::Put {
                data_type: REF_DATA_TYPE.to_string(),
                key: name.to_string(),
                value: self.ref_value(&descriptor),
                blob: Some(digest.clone()),
            });
            imported.push(ImportedRef {
                name: name.to_string(),
                digest,
            });
        }
        let keep: Vec<Digest> = reached.iter().map(|r| r.digest.clone()).collect();
        // Each document's links, so walks of the whole store need not read it back.
        let links: Vec<ExtraOp> = reached
            .iter()
            .filter_map(|r| links_record(&r.digest, r.links.as_ref()?))
            .collect();
        let commit = OperationCommit {
            keep: &keep,
            data: &batch,
            extra: &links,
        };
        operation.commit(commit).map_err(|error| match error {
            // Our own hold keeps every reached blob; only an explicit delete can take it.
            StoreError::BlobVanished { digest } => OciError::BlobVanished {
                digest,
                reason: "deleted explicitly during the import; nothing was imported".to_string(),
            },
            other => other.into(),
        })?;
        Ok(imported)
    }
}
