//! Where the store's blobs are known to be in registries, so a push can mount a blob from a
//! repository of the same registry instead of uploading it: extra data `registry.origin` on
//! each blob a pull brought in or a push sent, a JSON array of `registry/repository`, the most
//! recent first, at most [`MAX_ORIGINS`]. Extra data goes with its blob and holds nothing, so
//! GC is unchanged. Only a hint: a registry that no longer has the blob answers the mount
//! with an upload session (202), which the push then uses.

use crate::store::{LockMode, Store, StoreResult};
use crate::traits::{BlobStore, Digest, ExtraData, ExtraOp, Index, KvStore};

pub const ORIGIN_DATA_TYPE: &str = "registry.origin";
/// Origins kept per blob.
pub const MAX_ORIGINS: usize = 8;

fn origins_of<B: BlobStore, I: Index, X: ExtraData, K: KvStore>(
    store: &Store<B, I, X, K>,
    digest: &Digest,
) -> StoreResult<Vec<String>> {
    Ok(store
        .get_extra(digest, ORIGIN_DATA_TYPE)?
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default())
}

/// Records that `registry/repository` has each of `digests` (those still stored), in one
/// extra-data batch under their shared digest locks.
pub fn record<B: BlobStore, I: Index, X: ExtraData, K: KvStore>(
    store: &Store<B, I, X, K>,
    registry: &str,
    repository: &str,
    digests: &[Digest],
) -> StoreResult<()> {
    if digests.is_empty() {
        return Ok(());
    }
    let origin = format!("{registry}/{repository}");
    let _locks = store.lock_paths().lock_digests(digests, LockMode::Shared)?;
    let mut ops = Vec::new();
    for digest in digests {
        if store.index().get(digest)?.is_none() {
            continue;
        }
        let mut origins = origins_of(store, digest)?;
        if origins.first() == Some(&origin) {
            continue;
        }
        origins.retain(|known| known != &origin);
        origins.insert(0, origin.clone());
        origins.truncate(MAX_ORIGINS);
        ops.push(ExtraOp::Set {
            digest: digest.clone(),
            data_type: ORIGIN_DATA_TYPE.to_string(),
            value: serde_json::to_vec(&origins).expect("strings serialize"),
        });
    }
    Ok(store.extra_data().write_batch(&ops)?)
}

/// A repository of `registry` other than `destination` known to have `digest`.
pub fn mount_source<B: BlobStore, I: Index, X: ExtraData, K: KvStore>(
    store: &Store<B, I, X, K>,
    registry: &str,
    destination: &str,
    digest: &Digest,
) -> StoreResult<Option<String>> {
    let prefix = format!("{registry}/");
    Ok(origins_of(store, digest)?.into_iter().find_map(|origin| {
        origin
            .strip_prefix(&prefix)
            .filter(|repository| *repository != destination)
            .map(str::to_string)
    }))
}
