//! A third store flavour in under 200 lines: named files with tags (`notes.txt:v1`), kept in
//! the same store as OCI and appc images. It follows docs/FLAVOURS.md: its own owner mark,
//! key/value entries that reference what they name, the flavour GC lock with its turnstile,
//! and a GC that lets go of its own blobs only.
//!
//! Run it: `cargo run --example tagged_files [STORE_DIR]` (a temporary store by default).
//! `tests/appc_example_flavour.rs` builds and runs it, so this guide cannot rot.

use std::io::Read;

use oci_store::store::{LockGuard, LockMode, Store, StoreResult, WriteOptions};
use oci_store::traits::{BlobStore, Digest, ExtraData, Index, KvStore};

/// The owner mark (`owner.files`) on every blob this flavour holds.
pub const FLAVOUR: &str = "files";
/// Key/value data type of tags: key `name:tag`, value empty, referencing the file's blob.
pub const TAG_DATA_TYPE: &str = "files.tag";
const GC_LOCK: &str = "gc-files";
const GC_TURNSTILE: &str = "gc-files-turnstile";

/// The flavour over a borrowed base store, generic like the real ones (it never names a
/// backend).
pub struct TaggedFiles<'s, B, I, X, K> {
    store: &'s Store<B, I, X, K>,
}

impl<'s, B: BlobStore, I: Index, X: ExtraData, K: KvStore> TaggedFiles<'s, B, I, X, K> {
    pub fn new(store: &'s Store<B, I, X, K>) -> Self {
        TaggedFiles { store }
    }

    /// Shared by every mutation, entered through the turnstile so a waiting GC is not starved.
    fn mutation_lock(&self) -> StoreResult<LockGuard> {
        let turnstile = self.store.named_lock(GC_TURNSTILE, LockMode::Shared)?;
        let lock = self.store.named_lock(GC_LOCK, LockMode::Shared)?;
        drop(turnstile);
        Ok(lock)
    }

    /// Exclusive, for GC: the turnstile is held until running mutations have drained.
    fn gc_lock(&self) -> StoreResult<LockGuard> {
        let turnstile = self.store.named_lock(GC_TURNSTILE, LockMode::Exclusive)?;
        let lock = self.store.named_lock(GC_LOCK, LockMode::Exclusive)?;
        drop(turnstile);
        Ok(lock)
    }

    /// Stores `content` (marked as ours in the same step as its commit) and points
    /// `name:tag` at it, replacing what the tag named before.
    pub fn put(&self, name: &str, tag: &str, content: impl Read) -> StoreResult<Digest> {
        let _mutation = self.mutation_lock()?;
        let record = self
            .store
            .write_owned(content, &WriteOptions::default(), FLAVOUR)?;
        self.store.put_data(
            TAG_DATA_TYPE,
            &tag_key(name, tag),
            b"",
            Some(&record.digest),
        )?;
        Ok(record.digest)
    }

    /// The content `name:tag` names.
    pub fn get(&self, name: &str, tag: &str) -> StoreResult<Option<Vec<u8>>> {
        let Some(entry) = self.store.get_data(TAG_DATA_TYPE, &tag_key(name, tag))? else {
            return Ok(None);
        };
        let digest = entry.blob.expect("tags reference their blob");
        Ok(Some(self.store.read_to_vec(&digest, 1 << 30)?))
    }

    /// Every `name:tag` of a name.
    pub fn tags(&self, name: &str) -> StoreResult<Vec<String>> {
        let entries = self.store.list_data(TAG_DATA_TYPE, &format!("{name}:"))?;
        Ok(entries.into_iter().map(|(key, _)| key).collect())
    }

    /// Removes a tag; its blob goes at the next GC unless another tag names it.
    pub fn untag(&self, name: &str, tag: &str) -> StoreResult<bool> {
        let _mutation = self.mutation_lock()?;
        self.store.remove_data(TAG_DATA_TYPE, &tag_key(name, tag))
    }

    /// Lets go of every blob of ours that no tag names. `release` deletes it only when no
    /// other holder (another flavour's mark, a `blob put`, another entry) is left. Returns the
    /// digests this flavour let go of.
    pub fn gc(&self) -> StoreResult<Vec<Digest>> {
        let _gc = self.gc_lock()?;
        let mut released = Vec::new();
        for digest in self.store.owned_by(FLAVOUR)? {
            let tagged = self
                .store
                .data_referencing(&digest)?
                .iter()
                .any(|key| key.data_type == TAG_DATA_TYPE);
            if !tagged {
                self.store.release(&digest, FLAVOUR)?;
                released.push(digest);
            }
        }
        Ok(released)
    }
}

fn tag_key(name: &str, tag: &str) -> String {
    format!("{name}:{tag}")
}

/// The guide's walk-through: two versions of a file, a tag moved, GC, and an OCI-owned blob
/// with the same content that the files GC must not delete.
pub fn demo(store_dir: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let store = oci_store::open_store(store_dir, &oci_store::BackendChoice::default())?;
    let files = TaggedFiles::new(&store);
    let v1 = files.put("notes.txt", "v1", &b"first draft"[..])?;
    files.put("notes.txt", "latest", &b"first draft"[..])?;
    let v2 = files.put("notes.txt", "v2", &b"second draft"[..])?;
    files.put("notes.txt", "latest", &b"second draft"[..])?;
    assert_eq!(
        files.get("notes.txt", "latest")?.as_deref(),
        Some(&b"second draft"[..])
    );
    assert_eq!(files.tags("notes.txt")?.len(), 3);

    // Another flavour holds v2's content too: the files GC must leave it.
    store.mark_owner(&v2, "oci")?;
    files.untag("notes.txt", "v1")?;
    files.untag("notes.txt", "v2")?;
    files.untag("notes.txt", "latest")?;
    let released = files.gc()?;
    assert_eq!(released.len(), 2, "both blobs were ours and untagged");
    assert!(!store.contains(&v1)?, "v1 had no other holder and went");
    assert!(store.contains(&v2)?, "v2 is still held by the oci mark");
    println!(
        "tagged_files: released {} blobs, kept {v2} (held by oci)",
        released.len()
    );
    Ok(())
}

#[allow(dead_code)] // run as an example; included as a module by its test
fn main() -> Result<(), Box<dyn std::error::Error>> {
    match std::env::args_os().nth(1) {
        Some(dir) => demo(std::path::Path::new(&dir)),
        None => demo(tempfile::tempdir()?.path()),
    }
}
