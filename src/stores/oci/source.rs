//! The store as a [`ContentSource`]: what export, check and GC walk over.

use oci_spec::image::Descriptor;

use super::graph::{verify_document, ContentSource, Fetched, MAX_DOCUMENT_SIZE};
use super::OciResult;
use crate::store::{Store, StoreError};
use crate::traits::Digest;

pub struct StoreSource<'a> {
    pub store: &'a Store,
}

impl ContentSource for StoreSource<'_> {
    fn name(&self) -> String {
        format!("the store {}", self.store.dir().display())
    }

    fn fetch(
        &mut self,
        digest: &Digest,
        descriptor: &Descriptor,
        document: bool,
    ) -> OciResult<Fetched> {
        if !self.store.contains(digest)? {
            return Ok(Fetched::Absent);
        }
        if !document {
            return Ok(Fetched::Present);
        }
        let bytes = match self.store.read_to_vec(digest, MAX_DOCUMENT_SIZE) {
            Ok(bytes) => bytes,
            // Deleted since the check above: absent, like any missing blob.
            Err(StoreError::NotFound(_)) => return Ok(Fetched::Absent),
            Err(error) => return Err(error.into()),
        };
        Ok(match verify_document(digest, descriptor.size(), &bytes) {
            Ok(()) => Fetched::Document(bytes),
            Err(reason) => Fetched::Corrupt(reason),
        })
    }
}
