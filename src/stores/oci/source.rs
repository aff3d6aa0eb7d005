//! The store as a [`ContentSource`]: what export, check and GC walk over.

use std::sync::Arc;

use foldhash::{HashMap, HashMapExt};

use oci_spec::image::Descriptor;

use super::graph::{verify_document, ContentSource, Fetched, MAX_DOCUMENT_SIZE};
use super::links::LinksSnapshot;
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

/// Every indexed blob's size, read in one paged pass, and every document's recorded links
/// (see `links`), read in one listing; shared by the sources of several threads walking at
/// once.
pub struct IndexSnapshot {
    /// Size and media type (one shared copy per distinct type) of every indexed blob.
    records: HashMap<Digest, (u64, Arc<str>)>,
    links: LinksSnapshot,
}

impl IndexSnapshot {
    pub fn read(store: &Store) -> OciResult<Self> {
        // The two listings are independent reads: one on another core.
        std::thread::scope(|scope| {
            let links = scope.spawn(|| LinksSnapshot::read(store));
            let records = Self::read_records(store)?;
            let links = links
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
            Ok(IndexSnapshot { records, links })
        })
    }

    fn read_records(store: &Store) -> OciResult<HashMap<Digest, (u64, Arc<str>)>> {
        let mut records = HashMap::new();
        let mut media_types: HashMap<String, Arc<str>> = HashMap::new();
        for record in store.records() {
            let record = record.map_err(StoreError::from)?;
            let media_type = match media_types.get(&record.media_type) {
                Some(shared) => shared.clone(),
                None => {
                    let shared: Arc<str> = Arc::from(record.media_type.as_str());
                    media_types.insert(record.media_type, shared.clone());
                    shared
                }
            };
            records.insert(record.digest, (record.size, media_type));
        }
        Ok(records)
    }

    /// The size and media type `digest` was indexed with when the snapshot was read.
    pub fn record(&self, digest: &Digest) -> Option<(u64, &str)> {
        self.records
            .get(digest)
            .map(|(size, media_type)| (*size, &**media_type))
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
        let Some((size, _)) = self.index.record(digest) else {
            return Ok(Fetched::Absent);
        };
        if !document {
            return Ok(Fetched::Present);
        }
        // Recorded at commit from the verified bytes: no need to read them back. A descriptor
        // that disagrees with the indexed size is damage, as a read would find it.
        if let Some(children) = self.index.links.children(digest) {
            if size != descriptor.size() {
                return Ok(Fetched::Corrupt(format!(
                    "size is {size} bytes, the descriptor says {}",
                    descriptor.size()
                )));
            }
            return Ok(Fetched::Linked(children));
        }
        read_document(self.store, digest, descriptor, size)
    }
}
