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
        // One index read: the record says whether the blob is there and how large it is.
        let size = match self.store.info(digest) {
            Ok(record) => record.size,
            Err(StoreError::NotFound(_)) => return Ok(Fetched::Absent),
            Err(error) => return Err(error.into()),
        };
        if !document {
            return Ok(Fetched::Present);
        }
        read_document(self.store, digest, descriptor, size)
    }
}

/// A document whose index record (its size `indexed_size`) was read: its verified bytes, or
/// absent when its content went since the record was read, or corrupt.
fn read_document(
    store: &Store,
    digest: &Digest,
    descriptor: &Descriptor,
    indexed_size: u64,
) -> OciResult<Fetched> {
    let bytes = match store.read_indexed_to_vec(digest, indexed_size, MAX_DOCUMENT_SIZE) {
        Ok(bytes) => bytes,
        Err(StoreError::NotFound(_)) => return Ok(Fetched::Absent),
        Err(error) => return Err(error.into()),
    };
    Ok(match verify_document(digest, descriptor.size(), &bytes) {
        Ok(()) => Fetched::Document(bytes),
        Err(reason) => Fetched::Corrupt(reason),
    })
}

/// The store with its index read once up front, for walks that look up every blob many refs
/// reach (the GC's mark, a prune's inventory): one paged pass over the index instead of an
/// index read per blob. Sound where nothing of the flavour is removed during the walk (the
/// GC lock is held); a blob whose content went since the pass reads as absent.
pub struct IndexedStoreSource<'a> {
    store: &'a Store,
    index: &'a IndexSnapshot,
}

/// Every indexed blob's size, read in one paged pass; shared by the sources of several
/// threads walking at once.
pub struct IndexSnapshot {
    sizes: std::collections::HashMap<Digest, u64>,
}

impl IndexSnapshot {
    pub fn read(store: &Store) -> OciResult<Self> {
        let mut sizes = std::collections::HashMap::new();
        for record in store.records() {
            let record = record.map_err(StoreError::from)?;
            sizes.insert(record.digest, record.size);
        }
        Ok(IndexSnapshot { sizes })
    }
}

impl<'a> IndexedStoreSource<'a> {
    pub fn new(store: &'a Store, index: &'a IndexSnapshot) -> Self {
        IndexedStoreSource { store, index }
    }
}

impl ContentSource for IndexedStoreSource<'_> {
    fn name(&self) -> String {
        format!("the store {}", self.store.dir().display())
    }

    fn fetch(
        &mut self,
        digest: &Digest,
        descriptor: &Descriptor,
        document: bool,
    ) -> OciResult<Fetched> {
        let Some(&size) = self.index.sizes.get(digest) else {
            return Ok(Fetched::Absent);
        };
        if !document {
            return Ok(Fetched::Present);
        }
        read_document(self.store, digest, descriptor, size)
    }
}
