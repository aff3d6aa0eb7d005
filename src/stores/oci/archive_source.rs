//! An `oci-archive` that has been read as a [`ContentSource`]: the walk from the selected refs
//! runs over what the archive held. Its blobs are in the store by then (streamed in, verified,
//! under the import's hold), so documents are read back from the store, not kept in memory:
//! memory stays bounded by one document whatever the archive holds.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oci_spec::image::Descriptor;

use super::archive::ArchiveBlob;
use super::error::{OciError, OciResult};
use super::graph::{verify_document, ContentSource, Fetched, MAX_DOCUMENT_SIZE};
use crate::store::Store;
use crate::traits::Digest;

pub struct ArchiveSource<'a> {
    pub archive: &'a Path,
    pub blobs: &'a HashMap<Digest, ArchiveBlob>,
    pub store: &'a Store,
}

impl ContentSource for ArchiveSource<'_> {
    fn name(&self) -> String {
        format!("archive {}", self.archive.display())
    }

    /// What is being imported is validated to the image-spec as it is walked.
    fn strict(&self) -> bool {
        true
    }

    fn fetch(
        &mut self,
        digest: &Digest,
        descriptor: &Descriptor,
        document: bool,
    ) -> OciResult<Fetched> {
        let Some(blob) = self.blobs.get(digest) else {
            return Ok(Fetched::Absent);
        };
        let bad = |reason: String| OciError::BadBlob {
            digest: digest.clone(),
            path: PathBuf::from(format!("{}:{}", self.archive.display(), blob.member)),
            reason,
        };
        if blob.size != descriptor.size() {
            return Err(bad(format!(
                "size is {} bytes, the descriptor says {}",
                blob.size,
                descriptor.size()
            )));
        }
        if !document {
            return Ok(Fetched::Present);
        }
        let bytes = self.store.read_to_vec(digest, MAX_DOCUMENT_SIZE)?;
        verify_document(digest, descriptor.size(), &bytes).map_err(bad)?;
        Ok(Fetched::Document(bytes))
    }
}
