//! Space per ref: the bytes each ref reaches, split into bytes no other ref reaches (what
//! removing the ref alone would let gc free) and bytes shared with other refs.

use std::collections::HashMap;

use serde::Serialize;

use super::graph::{Child, Walker};
use super::source::StoreSource;
use super::{OciResult, OciStore};
use crate::traits::Digest;

/// The blobs and bytes one ref reaches.
#[derive(Clone, Debug, Serialize)]
pub struct RefUsage {
    /// The ref.
    pub name: String,
    /// Blobs the ref reaches that the store has, and their bytes.
    pub blobs: u64,
    /// Bytes of those blobs.
    pub bytes: u64,
    /// Bytes of the blobs no other ref reaches.
    pub unique_bytes: u64,
    /// Bytes of the blobs some other ref reaches too.
    pub shared_bytes: u64,
}

/// What every ref reaches, from [`OciStore::refs_usage`].
#[derive(Clone, Debug, Serialize)]
pub struct RefsUsage {
    /// One entry per ref, in name order.
    pub refs: Vec<RefUsage>,
    /// Blobs and bytes reached by at least one ref, each blob once.
    pub reached_blobs: u64,
    /// Bytes of those blobs.
    pub reached_bytes: u64,
}

impl OciStore<'_> {
    /// Walks every ref (holding the GC lock shared, so nothing goes meanwhile).
    pub fn refs_usage(&self) -> OciResult<RefsUsage> {
        let _gc_lock = self.mutation_lock()?;
        let mut reached_by_ref: Vec<(String, Vec<(Digest, u64)>)> = Vec::new();
        let mut refs_reaching: HashMap<Digest, (u32, u64)> = HashMap::new();
        for (name, descriptor) in self.ref_descriptors()? {
            let mut walker = Walker::new();
            walker.visit(
                vec![Child::required(descriptor)],
                &mut StoreSource { store: self.store },
            )?;
            let blobs: Vec<(Digest, u64)> = walker
                .reached
                .iter()
                .map(|reached| (reached.digest.clone(), reached.descriptor.size()))
                .collect();
            for (digest, size) in &blobs {
                refs_reaching.entry(digest.clone()).or_insert((0, *size)).0 += 1;
            }
            reached_by_ref.push((name, blobs));
        }
        let refs = reached_by_ref
            .into_iter()
            .map(|(name, blobs)| {
                let mut usage = RefUsage {
                    name,
                    blobs: blobs.len() as u64,
                    bytes: 0,
                    unique_bytes: 0,
                    shared_bytes: 0,
                };
                for (digest, size) in &blobs {
                    usage.bytes += size;
                    if refs_reaching
                        .get(digest)
                        .is_some_and(|(count, _)| *count > 1)
                    {
                        usage.shared_bytes += size;
                    } else {
                        usage.unique_bytes += size;
                    }
                }
                usage
            })
            .collect();
        Ok(RefsUsage {
            refs,
            reached_blobs: refs_reaching.len() as u64,
            reached_bytes: refs_reaching.values().map(|(_, size)| size).sum(),
        })
    }
}
