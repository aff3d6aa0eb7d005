//! Where the store's blobs are known to be in registries, so a push can mount a blob from a
//! repository of the same registry instead of uploading it: extra data `registry.origin` on
//! each blob a pull brought in or a push sent, a JSON array of `registry/repository`, the most
//! recent first, at most [`MAX_ORIGINS`]. Extra data goes with its blob and holds nothing, so
//! GC is unchanged. Only a hint: a registry that no longer has the blob answers the mount
//! with an upload session (202), which the push then uses.

use crate::store::{Store, StoreResult};
use crate::traits::Digest;

pub const ORIGIN_DATA_TYPE: &str = "registry.origin";
/// Origins kept per blob.
pub const MAX_ORIGINS: usize = 8;

fn origins_of(store: &Store, digest: &Digest) -> StoreResult<Vec<String>> {
    Ok(parse_origins(store.get_extra(digest, ORIGIN_DATA_TYPE)?))
}

/// A blob's stored list; a missing or unreadable one is empty (origins are only a hint).
fn parse_origins(value: Option<Vec<u8>>) -> Vec<String> {
    value
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Records that `registry/repository` has each of `digests` (those still stored), in one
/// extra-data batch.
///
/// Each blob's list is read, changed and written back under its exclusive digest lock
/// ([`Store::update_extra_many`]): two pulls finishing at once never both read the old list
/// (the second write would drop the first one's origin). Only local reads and one write happen
/// under the locks, no network I/O; callers hold no digest lock of their own when they call
/// this.
pub fn record(
    store: &Store,
    registry: &str,
    repository: &str,
    digests: &[Digest],
) -> StoreResult<()> {
    let origin = format!("{registry}/{repository}");
    store.update_extra_many(digests, ORIGIN_DATA_TYPE, |_, value| {
        let mut origins = parse_origins(value);
        if origins.first() == Some(&origin) {
            return None;
        }
        origins.retain(|known| known != &origin);
        origins.insert(0, origin.clone());
        origins.truncate(MAX_ORIGINS);
        Some(serde_json::to_vec(&origins).expect("strings serialize"))
    })
}

/// A repository of `registry` other than `destination` known to have `digest`.
pub fn mount_source(
    store: &Store,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{open_store, BackendChoice, WriteOptions};

    /// Pulls of one image from several repositories finish at once: each records its origin
    /// for the same blobs. Every origin must survive (there are no more than MAX_ORIGINS), in
    /// every round.
    #[test]
    fn concurrent_records_lose_no_origin() {
        const WRITERS: usize = MAX_ORIGINS;
        const BLOBS: usize = 32;
        const ROUNDS: usize = 10;
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path(), &BackendChoice::default()).unwrap();
        for round in 0..ROUNDS {
            let digests: Vec<Digest> = (0..BLOBS)
                .map(|n| {
                    let content = format!("round {round} blob {n}");
                    store
                        .write_bytes(content.as_bytes(), &WriteOptions::default())
                        .unwrap()
                        .digest
                })
                .collect();
            let start = std::sync::Barrier::new(WRITERS);
            std::thread::scope(|scope| {
                for writer in 0..WRITERS {
                    let (store, digests, start) = (&store, &digests, &start);
                    scope.spawn(move || {
                        start.wait();
                        record(store, "registry.test", &format!("repo-{writer}"), digests).unwrap();
                    });
                }
            });
            for digest in &digests {
                let mut origins = origins_of(&store, digest).unwrap();
                origins.sort();
                let expected: Vec<String> = (0..WRITERS)
                    .map(|writer| format!("registry.test/repo-{writer}"))
                    .collect();
                assert_eq!(
                    origins, expected,
                    "round {round}: origins of {digest} after {WRITERS} concurrent records"
                );
            }
        }
    }
}
