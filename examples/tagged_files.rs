//! A third flavour over the base store, built by the recipe of docs/FLAVOURS.md on the public
//! API only: named files with tags. Generic over `Store`: it never names a backend.
//! `cargo run --example tagged_files -- STORE put NAME FILE [TAG...] | tag NAME TAG... |
//! get TAG | rm TAG | gc` (`get` writes the content to stdout; `gc` releases untagged files).
//! State: key/value `tagged.file/NAME` and `tagged.tag/TAG` (value NAME), each referencing the
//! content blob; owner mark `tagged`; a put is a base-store operation (holder `tagged-op.ID`).
//! GC lock `gc-tagged`, entered through `gc-tagged-turnstile`.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_store::{open_store, BackendChoice, Holder, LockGuard, Store, StoreError};
use oci_store::{Digest, IoContext, IoResultExt, KvOp, StorageError};
use oci_store::{OperationCommit, WriteOptions};

pub const FLAVOUR: &str = "tagged";
/// The holder of the files' blobs: owner mark `owner.tagged`.
pub const HOLDER: Holder = Holder::flavour(FLAVOUR);
pub const FILE_TYPE: &str = "tagged.file";
pub const TAG_TYPE: &str = "tagged.tag";
/// The names `Store::flavour_lock(FLAVOUR)` gives its lock files (`gc-<flavour>`, and the
/// turnstile `gc-<flavour>-turnstile`), for tools and tests that look at them.
pub const GC_LOCK: &str = "gc-tagged";
pub const GC_TURNSTILE: &str = "gc-tagged-turnstile";

#[derive(Debug, thiserror::Error)]
pub enum TaggedError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no {0}")]
    NotFound(String),
    #[error("tag {0:?} exists: rm it first")]
    TagExists(String),
    #[error("gc: {lock} still held after {waited:?} by a running put or tag; retry later")]
    GcLockTimeout { lock: PathBuf, waited: Duration },
    #[error("usage: tagged_files STORE put NAME FILE [TAG...] | tag NAME TAG... | get TAG | rm TAG | gc")]
    Usage,
}
pub type Result<T> = std::result::Result<T, TaggedError>;

pub struct TaggedFiles<'s> {
    pub store: &'s Store,
}

impl TaggedFiles<'_> {
    /// Shared GC lock `gc-tagged` for a mutation (the base store's flavour-lock protocol:
    /// entered through the turnstile, so a waiting GC is not starved). Once per call chain.
    fn mutation_lock(&self) -> Result<LockGuard> {
        Ok(self.store.flavour_lock(FLAVOUR).mutation()?)
    }

    /// Exclusive GC lock: mutations arriving meanwhile queue behind us; gives up after `wait`.
    fn gc_lock(&self, wait: Duration) -> Result<LockGuard> {
        match self.store.flavour_lock(FLAVOUR).gc(wait) {
            Err(StoreError::FlavourLockTimeout { lock, .. }) => {
                Err(TaggedError::GcLockTimeout { lock, waited: wait })
            }
            other => Ok(other?),
        }
    }

    /// New tags of `blob` (each must not exist yet), and `more`.
    fn new_tags(name: &str, tags: &[&str], blob: &Digest, more: Vec<KvOp>) -> Vec<KvOp> {
        let tag = |tag: &&str| KvOp::CompareAndSet {
            data_type: TAG_TYPE.into(),
            key: tag.to_string(),
            value: name.as_bytes().to_vec(),
            blob: Some(blob.clone()),
            expected_version: None, // the tag must be new
        };
        tags.iter().map(tag).chain(more).collect()
    }

    /// Stores `content` as file `name` with `tags`, all or nothing, as one base-store operation:
    /// the blob is committed under its hold, then the entries land in one batch as the hold
    /// passes to `owner.tagged`; a refusal (a taken tag) or a crash lets go of the blob.
    pub fn put(&self, name: &str, content: impl Read, tags: &[&str]) -> Result<Digest> {
        let _lock = self.mutation_lock()?;
        let mut operation = self.store.begin_operation(&HOLDER)?;
        let digest = operation.write(content, &WriteOptions::default())?.digest;
        let file = KvOp::Put {
            data_type: FILE_TYPE.into(),
            key: name.into(),
            value: Vec::new(),
            blob: Some(digest.clone()),
        };
        let (keep, data) = (
            [digest.clone()],
            Self::new_tags(name, tags, &digest, vec![file]),
        );
        operation
            .commit(OperationCommit::new(&keep, &data))
            .map_err(refused_tag)?;
        Ok(digest)
    }

    fn blob_of(&self, data_type: &str, key: &str) -> Result<Digest> {
        let blob = self.store.get_data(data_type, key)?.and_then(|e| e.blob);
        blob.ok_or_else(|| TaggedError::NotFound(format!("{data_type} {key:?}")))
    }

    /// Tags file `name`'s current content with every one of `tags`, or with none.
    pub fn tag(&self, name: &str, tags: &[&str]) -> Result<()> {
        let _lock = self.mutation_lock()?;
        let batch = Self::new_tags(name, tags, &self.blob_of(FILE_TYPE, name)?, Vec::new());
        self.store
            .write_data_batch(&batch)
            .map_err(refused_tag)
            .map(drop)
    }

    /// Copies the tagged content to `out`, under the shared lock so no GC takes it meanwhile.
    pub fn get(&self, tag: &str, out: &mut impl Write) -> Result<u64> {
        let _lock = self.mutation_lock()?;
        let mut reader = self.store.read(&self.blob_of(TAG_TYPE, tag)?)?;
        std::io::copy(&mut reader, out)
            .map_err(|e| StoreError::from(IoContext::new("copying", tag, e)).into())
    }

    /// Removes a tag; the file stays (its name and `owner.tagged` hold it) until a GC.
    pub fn rm(&self, tag: &str) -> Result<()> {
        let _lock = self.mutation_lock()?;
        self.blob_of(TAG_TYPE, tag)?; // names a missing tag
        Ok(self.store.remove_data(TAG_TYPE, tag).map(drop)?)
    }

    /// Clears crashed puts (the base store's operations), marks what tags reach, drops names of
    /// unreached content and releases `owner.tagged` from unreached blobs: other holders
    /// (`blob put`, OCI) keep theirs.
    pub fn gc(&self, lock_wait: Duration) -> Result<Vec<Digest>> {
        let _lock = self.gc_lock(lock_wait)?;
        self.store.clear_dead_operations()?;
        let tags = self.store.list_data(TAG_TYPE, "")?;
        let marked: HashSet<Digest> = tags.into_iter().filter_map(|(_, e)| e.blob).collect();
        for (name, entry) in self.store.list_data(FILE_TYPE, "")? {
            if !entry.blob.is_some_and(|blob| marked.contains(&blob)) {
                self.store.remove_data(FILE_TYPE, &name)?;
            }
        }
        let mut deleted = Vec::new();
        for digest in self.store.owned_by(&HOLDER)? {
            if !marked.contains(&digest) && self.store.release(&digest, &HOLDER)?.is_deleted() {
                deleted.push(digest);
            }
        }
        Ok(deleted)
    }
}

/// A taken tag refuses the whole batch: say which.
fn refused_tag(error: StoreError) -> TaggedError {
    match error {
        StoreError::Storage(StorageError::VersionConflict { key, .. }) => {
            TaggedError::TagExists(key)
        }
        other => other.into(),
    }
}

fn run(words: &[&str]) -> Result<()> {
    let ([dir, "put" | "tag", _, _, ..] | [dir, "get" | "rm", _] | [dir, "gc"]) = words else {
        return Err(TaggedError::Usage); // before the store is opened, or created
    };
    let store = open_store(Path::new(dir), &BackendChoice::default())?;
    let files = TaggedFiles { store: &store };
    match words {
        [_, "put", name, file, tags @ ..] => {
            let content = std::fs::File::open(file)
                .io_context("opening", file)
                .map_err(StoreError::from)?;
            println!("{}", files.put(name, content, tags)?);
        }
        [_, "tag", name, tags @ ..] => files.tag(name, tags)?,
        [_, "get", tag] => drop(files.get(tag, &mut std::io::stdout().lock())?),
        [_, "rm", tag] => files.rm(tag)?,
        _ => println!("{} blobs deleted", files.gc(Duration::from_secs(60))?.len()),
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let result = run(&arguments.iter().map(String::as_str).collect::<Vec<_>>());
    if let Err(error) = &result {
        eprintln!("tagged_files: {error}");
    }
    std::process::ExitCode::from(u8::from(result.is_err()))
}
