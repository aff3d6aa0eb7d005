//! `pull`: a registry image into the store, all or nothing, the way an import is (DESIGN.md,
//! "An import is all or nothing"), through the same base-store operation, walker and commit:
//!
//! 1. Under the OCI flavour's GC lock (shared) for the whole pull, the manifest the reference
//!    names is fetched and verified; from an index, the platform's manifest (unless every
//!    platform is wanted). If the ref already names it and the store has all it reaches,
//!    the pull is done, having written nothing.
//! 2. An operation ([`crate::store::Operation`]) begins, and the walker follows the manifest over a
//!    [`RegistrySource`]: manifests and indexes are read whole (from the store when it has
//!    them, else from the registry by digest), each verified and validated against the
//!    image-spec like an import; image configs too, each fetched under its fetch lock (below)
//!    and committed under the operation's hold at once. Layers are not read yet. With
//!    referrers, the referrers of every manifest reached join the walk.
//! 3. What the store has is held in one step and not downloaded. The rest moves through the
//!    transfer pipeline ([`crate::store::Pipeline`]) on [`PullOptions::jobs`] threads, each
//!    blob streamed through the store's resumable staging writer (hashed and checked against
//!    digest and size as it arrives, never whole in memory), resumed with Range when a
//!    connection breaks, and committed in batches, as a layout import commits. When a killed
//!    pull, in any process, left part of the blob staged, the writer takes that part over
//!    (hashed again, so the digest check covers it) and only the rest is asked for. A blob is
//!    fetched under the store's fetch lock of its digest (`locks/fetch-NN.lock`, held until
//!    the blob is committed), which also keeps two pulls from taking over one part: a second
//!    pull of the same blob waits for the first, then finds it stored and holds that copy
//!    instead of downloading it again. A worker that finds a fetch lock
//!    taken waits through [`Worker::while_waiting`]: its pipeline commits each blob as it
//!    arrives while anyone waits, so two pulls never wait on each other's uncommitted blobs.
//! 4. The operation commits through the import's commit ([`OciStore::commit_import`]): the
//!    referrer entries and the ref land in one key/value batch, the holds pass to
//!    `owner.oci`. A failure or a kill before that leaves no ref; what the pull committed is
//!    held by its operation, which the next GC clears. A failed pull discards its half-written
//!    downloads; a killed one's stay staged, for the next pull of the blob to take over, or
//!    for GC to remove as the dead writes they are.

use std::collections::HashMap;

use oci_spec::image::Descriptor;
use serde::Serialize;

use super::blobs::{get_blob_bytes, stage_download, BlobDownload};
use super::error::{RegistryError, RegistryResult};
use super::manifests::get_manifest;
use super::platform;
use super::progress::ObservedReader;
use super::reference::{Reference, Target};
use super::referrers::list_referrers;
use super::RegistryClient;
use crate::store::{
    validate_media_type, Arrival, LockGuard, LockMode, Operation, Pipeline, StagedBlob, Store,
    StoreError, StoreResult, StoreWriter, Worker, WriteOptions,
};
use crate::store::{Direction, Progress, SkipReason, TransferEvent};
use crate::stores::oci::StoreSource;
use crate::stores::oci::{
    digest_of, media_type_of, new_descriptor, verify_document, Child, ContentSource, DocumentKind,
    Fetched, OciError, OciResult, OciStore, Platform, Reached, RefName, Walker, HOLDER,
    MAX_DOCUMENT_SIZE,
};
use crate::traits::{Digest, StorageError};

/// Default number of blobs moved at once.
pub const DEFAULT_JOBS: usize = 4;

/// How [`pull()`] fetches an image.
#[derive(Clone, Debug)]
pub struct PullOptions {
    /// The platform to take from an index (default: this machine's).
    pub platform: Option<Platform>,
    /// Take the whole index, every platform.
    pub all_platforms: bool,
    /// Also pull the referrers (signatures, SBOMs) of what is pulled.
    pub with_referrers: bool,
    /// Store the ref under this name (default: the reference as given).
    pub dref: Option<String>,
    /// Blobs downloaded at once.
    pub jobs: usize,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            platform: None,
            all_platforms: false,
            with_referrers: false,
            dref: None,
            jobs: DEFAULT_JOBS,
        }
    }
}

/// What [`pull()`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PullReport {
    /// The reference pulled.
    pub reference: String,
    /// The ref written.
    pub name: String,
    /// Digest of the root manifest or index.
    pub digest: Digest,
    /// Media type of the root manifest or index.
    pub media_type: String,
    /// Blobs downloaded.
    pub blobs_downloaded: u64,
    /// Bytes downloaded.
    pub bytes_downloaded: u64,
    /// Blobs the store had (or another pull stored meanwhile), not downloaded.
    pub blobs_present: u64,
    /// Referrer manifests pulled (with `with_referrers`).
    pub referrers: u64,
}

/// The fetch lock of a digest: one stripe per first hex byte, like the digest locks, but its
/// own files, held for a whole download and until the blob is committed (the digest locks are
/// for short commit steps). When it is taken, the pull waits through `wait` (a transfer
/// worker waits without holding up its pipeline's commits, which may hold the lock).
pub(crate) fn fetch_lock(
    store: &Store,
    digest: &Digest,
    wait: impl FnOnce(&dyn Fn() -> StoreResult<LockGuard>) -> StoreResult<LockGuard>,
) -> RegistryResult<LockGuard> {
    let path = store
        .lock_paths()
        .named(&format!("fetch-{}", &digest.hex()[..2]));
    if let Some(lock) = LockGuard::try_acquire(&path, LockMode::Exclusive)? {
        return Ok(lock);
    }
    Ok(wait(&|| LockGuard::acquire(&path, LockMode::Exclusive))?)
}

/// The registry (and the store, for what it has) as the walker's content source.
struct RegistrySource<'a, 's> {
    client: &'a RegistryClient,
    reference: &'a Reference,
    store: &'s Store,
    /// Configs read whole in the walk are committed at once, under their fetch lock, so a
    /// concurrent pull of the same image reuses them instead of downloading them again.
    operation: &'a mut Operation<'s>,
    /// Documents already fetched (the root), by digest.
    known: HashMap<Digest, Vec<u8>>,
    /// Blobs the walk downloaded and committed, with their sizes.
    committed: HashMap<Digest, u64>,
}

impl RegistrySource<'_, '_> {
    fn read(&mut self, digest: &Digest, descriptor: &Descriptor) -> RegistryResult<Fetched> {
        if let Some(bytes) = self.known.get(digest) {
            return Ok(Fetched::Document(bytes.clone()));
        }
        let kind = DocumentKind::of(&media_type_of(descriptor));
        // A config is fetched under its fetch lock (a manifest is not a blob of the store yet:
        // it is staged with the rest).
        let _lock = match kind.is_document() {
            true => None,
            false => Some(fetch_lock(self.store, digest, |acquire| acquire())?),
        };
        if let Some(bytes) = stored_document(self.store, digest, descriptor)? {
            return Ok(Fetched::Document(bytes));
        }
        if kind.is_document() {
            let by_digest = self.reference.with_target(Target::Digest(digest.clone()));
            return Ok(match get_manifest(self.client, &by_digest)? {
                Some(manifest) => Fetched::Document(manifest.bytes),
                None => Fetched::Absent,
            });
        }
        let bytes = get_blob_bytes(
            self.client,
            &self.reference.repository,
            digest,
            descriptor.size(),
            MAX_DOCUMENT_SIZE,
        )?;
        let staged = self
            .store
            .stage(bytes.as_slice(), &write_options(digest, descriptor))?;
        self.operation.commit_staged(vec![staged])?;
        self.committed.insert(digest.clone(), bytes.len() as u64);
        Ok(Fetched::Document(bytes))
    }
}

/// A document the store has intact, read whole.
fn stored_document(
    store: &Store,
    digest: &Digest,
    descriptor: &Descriptor,
) -> RegistryResult<Option<Vec<u8>>> {
    if !store.contains(digest)? {
        return Ok(None);
    }
    Ok(store
        .read_to_vec(digest, MAX_DOCUMENT_SIZE)
        .ok()
        .filter(|bytes| verify_document(digest, descriptor.size(), bytes).is_ok()))
}

/// The store's write options for a blob met under `descriptor`: verified against it; its media
/// type recorded when the base store takes it (the descriptor keeps the exact one).
fn write_options(digest: &Digest, descriptor: &Descriptor) -> WriteOptions {
    let media_type = media_type_of(descriptor);
    WriteOptions {
        media_type: validate_media_type(&media_type).ok().map(|()| media_type),
        expected_digest: Some(digest.clone()),
        expected_size: Some(descriptor.size()),
        ..WriteOptions::default()
    }
}

impl ContentSource for RegistrySource<'_, '_> {
    fn name(&self) -> String {
        format!("{}/{}", self.reference.registry, self.reference.repository)
    }

    fn fetch(
        &mut self,
        digest: &Digest,
        descriptor: &Descriptor,
        document: bool,
    ) -> OciResult<Fetched> {
        if !document {
            // Layers are checked as they stream in; a missing one fails the download.
            return Ok(Fetched::Present);
        }
        let fetched = self
            .read(digest, descriptor)
            .map_err(|e| OciError::Invalid(e.to_string()))?;
        Ok(match fetched {
            Fetched::Document(bytes) => match verify_document(digest, descriptor.size(), &bytes) {
                Ok(()) => Fetched::Document(bytes),
                Err(reason) => Fetched::Corrupt(reason),
            },
            other => other,
        })
    }

    fn strict(&self) -> bool {
        true
    }
}

/// One blob to bring in: its digest, descriptor, and its bytes when already read.
struct Wanted<'r> {
    reached: &'r Reached,
    bytes: Option<&'r [u8]>,
}

/// What a transfer thread hands the committing thread: a staged blob, or one another pull
/// stored while we waited for its fetch lock, with the fetch lock it holds until the blob is
/// committed (or held).
struct Ready<'s> {
    arrival: Arrival<'s>,
    lock: Option<LockGuard>,
}

/// Pulls `reference` into the store under [`PullOptions::dref`] (default: the reference).
pub fn pull(
    oci: &OciStore<'_>,
    client: &RegistryClient,
    reference: &Reference,
    options: &PullOptions,
    progress: &dyn Progress,
) -> RegistryResult<PullReport> {
    let default_name = reference.ref_name();
    let name = RefName::parse(options.dref.as_deref().unwrap_or(&default_name))?;
    let store = oci.store();
    // Held to the end, so a concurrent OCI GC waits and never sweeps what we hold.
    let _gc_lock = oci.mutation_lock()?;

    let root = resolve_root(client, reference, options)?;
    let root_descriptor = new_descriptor(&root.media_type, &root.digest, root.bytes.len() as u64);
    if !options.with_referrers {
        if let Some((report, present)) =
            already_pulled(oci, reference, &name, &root, &root_descriptor)?
        {
            progress.transfer(TransferEvent::Planned {
                blobs: present.len() as u64,
                bytes: 0,
                direction: Direction::Download,
            });
            for digest in present {
                progress.transfer(TransferEvent::Skipped {
                    digest,
                    reason: SkipReason::AlreadyStored,
                });
            }
            progress.transfer(TransferEvent::Done);
            return Ok(report);
        }
    }
    let mut operation = store.begin_operation(&HOLDER)?;
    let mut source = RegistrySource {
        client,
        reference,
        store,
        operation: &mut operation,
        known: HashMap::from([(root.digest.clone(), root.bytes.clone())]),
        committed: HashMap::new(),
    };
    let mut walker = Walker::new();
    walker.visit(vec![Child::required(root_descriptor.clone())], &mut source)?;
    let referrers = if options.with_referrers {
        add_referrers(&mut walker, &mut source)?
    } else {
        0
    };
    walker.require_complete(&source.name())?;
    let committed = std::mem::take(&mut source.committed);
    // Non-distributable layers (with `urls`) are not the registry's to give: left out unless
    // the store has them, as `check` and GC treat them (optional), and as skopeo copies.
    let mut foreign = Vec::new();
    for reached in &walker.reached {
        let has_urls = reached
            .descriptor
            .urls()
            .as_ref()
            .is_some_and(|urls| !urls.is_empty());
        if has_urls && reached.document.is_none() && !store.contains(&reached.digest)? {
            foreign.push(reached.digest.clone());
        }
    }
    walker.reached.retain(|r| !foreign.contains(&r.digest));

    let wanted: Vec<(Digest, u64)> = walker
        .reached
        .iter()
        .map(|r| (r.digest.clone(), r.descriptor.size()))
        .collect();
    let held = operation.hold_present(&wanted)?;
    let mut report = PullReport {
        reference: reference.to_string(),
        name: name.to_string(),
        digest: root.digest.clone(),
        media_type: root.media_type.clone(),
        blobs_downloaded: committed.len() as u64,
        bytes_downloaded: committed.values().sum(),
        blobs_present: 0,
        referrers,
    };
    let mut missing = Vec::new();
    let mut present = Vec::new();
    for (reached, held) in walker.reached.iter().zip(held) {
        if committed.contains_key(&reached.digest) {
            continue;
        }
        if held {
            report.blobs_present += 1;
            present.push(reached.digest.clone());
            continue;
        }
        missing.push(Wanted {
            reached,
            bytes: reached.document.as_deref(),
        });
    }
    // What will stream from the registry (documents already read are only stored).
    let to_download = missing.iter().filter(|w| w.bytes.is_none());
    progress.transfer(TransferEvent::Planned {
        blobs: (to_download.clone().count() + present.len()) as u64,
        bytes: to_download.map(|w| w.reached.descriptor.size()).sum(),
        direction: Direction::Download,
    });
    for digest in present {
        progress.transfer(TransferEvent::Skipped {
            digest,
            reason: SkipReason::AlreadyStored,
        });
    }
    transfer(
        &mut operation,
        client,
        &reference.repository,
        &missing,
        options.jobs,
        progress,
        &mut report,
    )?;

    let imported = oci.commit_import(operation, &walker.reached, &[(name, root_descriptor)])?;
    for imported in &imported {
        oci.used(&imported.name, &imported.digest);
    }
    // A hint for later pushes (cross-repository mounts); the pull has happened either way.
    let blobs: Vec<Digest> = walker
        .reached
        .iter()
        .filter(|r| r.document.is_none())
        .map(|r| r.digest.clone())
        .collect();
    let _ = super::origins::record(store, &reference.registry, &reference.repository, &blobs);
    progress.transfer(TransferEvent::Done);
    Ok(report)
}

/// The report of a pull with nothing to do, if the ref already names the registry's manifest
/// and the store has everything it reaches, intact as far as the documents go: nothing is
/// written (a re-pull costs the manifest request and index lookups, not a transaction).
fn already_pulled(
    oci: &OciStore<'_>,
    reference: &Reference,
    name: &RefName,
    root: &super::manifests::FetchedManifest,
    root_descriptor: &Descriptor,
) -> RegistryResult<Option<(PullReport, Vec<Digest>)>> {
    let current = match oci.get_ref(name.as_str()) {
        Ok(descriptor) => descriptor,
        Err(OciError::RefNotFound(_)) => return Ok(None),
        Err(error) => return Err(error.into()),
    };
    if current.digest() != root_descriptor.digest()
        || current.size() != root_descriptor.size()
        || current.media_type() != root_descriptor.media_type()
    {
        return Ok(None);
    }
    let mut walker = Walker::new();
    let mut source = StoreSource { store: oci.store() };
    walker.visit(vec![Child::required(root_descriptor.clone())], &mut source)?;
    if !walker.missing.is_empty() || !walker.corrupt.is_empty() {
        return Ok(None);
    }
    let report = PullReport {
        reference: reference.to_string(),
        name: name.to_string(),
        digest: root.digest.clone(),
        media_type: root.media_type.clone(),
        blobs_downloaded: 0,
        bytes_downloaded: 0,
        blobs_present: walker.reached.len() as u64,
        referrers: 0,
    };
    let present = walker.reached.into_iter().map(|r| r.digest).collect();
    Ok(Some((report, present)))
}

/// The manifest the pull stores a ref to: the one the reference names, or from an index the
/// platform's manifest (unless every platform is wanted).
fn resolve_root(
    client: &RegistryClient,
    reference: &Reference,
    options: &PullOptions,
) -> RegistryResult<super::manifests::FetchedManifest> {
    let not_found = || RegistryError::Status {
        method: "GET".to_string(),
        url: client.url(&format!(
            "{}/manifests/{}",
            reference.repository,
            reference.target.as_path()
        )),
        status: 404,
        detail: format!(": {reference} does not exist"),
    };
    let root = get_manifest(client, reference)?.ok_or_else(not_found)?;
    if DocumentKind::of(&root.media_type) != DocumentKind::Index || options.all_platforms {
        return Ok(root);
    }
    #[derive(serde::Deserialize)]
    struct Entries {
        manifests: Vec<Descriptor>,
    }
    let entries: Entries =
        serde_json::from_slice(&root.bytes).map_err(|e| RegistryError::Protocol {
            url: reference.to_string(),
            reason: format!("the index does not parse: {e}"),
        })?;
    let wanted = options.platform.clone().unwrap_or_else(Platform::host);
    let chosen =
        platform::choose(&entries.manifests, &wanted).ok_or_else(|| RegistryError::NoPlatform {
            reference: reference.to_string(),
            platform: wanted.to_string(),
            available: platform::listed(&entries.manifests),
        })?;
    let digest = digest_of(chosen, &format!("an entry of {reference}"))?;
    let by_digest = reference.with_target(Target::Digest(digest));
    let manifest = get_manifest(client, &by_digest)?.ok_or_else(not_found)?;
    if manifest.bytes.len() as u64 != chosen.size() {
        return Err(RegistryError::Protocol {
            url: by_digest.to_string(),
            reason: format!(
                "the manifest is {} bytes, the index says {}",
                manifest.bytes.len(),
                chosen.size()
            ),
        });
    }
    Ok(manifest)
}

/// Adds the referrers of every document reached, then theirs, until none is new. Returns how
/// many were added.
fn add_referrers(walker: &mut Walker, source: &mut RegistrySource<'_, '_>) -> RegistryResult<u64> {
    let mut asked = std::collections::HashSet::new();
    let mut added = 0;
    loop {
        let subjects: Vec<Digest> = walker
            .reached
            .iter()
            .filter(|r| r.document.is_some() && !asked.contains(&r.digest))
            .map(|r| r.digest.clone())
            .collect();
        let mut roots = Vec::new();
        for subject in subjects {
            asked.insert(subject.clone());
            for referrer in list_referrers(
                source.client,
                &source.reference.repository,
                source.reference,
                &subject,
            )? {
                let digest = digest_of(&referrer, "a referrer")?;
                if !walker.is_visited(&digest)
                    && !roots
                        .iter()
                        .any(|c: &Child| c.descriptor.digest() == referrer.digest())
                {
                    roots.push(Child::required(referrer));
                }
            }
        }
        if roots.is_empty() {
            return Ok(added);
        }
        added += roots.len() as u64;
        walker.visit(roots, source)?;
    }
}

/// Moves the missing blobs through the transfer pipeline on `jobs` threads, committed in
/// batches under the operation's hold; each fetch lock is let go once its blob is committed.
fn transfer<'s>(
    operation: &mut Operation<'s>,
    client: &RegistryClient,
    repository: &str,
    missing: &[Wanted<'_>],
    jobs: usize,
    progress: &dyn Progress,
    report: &mut PullReport,
) -> RegistryResult<()> {
    let store = operation.store();
    // Each waiting blob holds its staging file and its fetch lock open.
    Pipeline::new(jobs).holding_descriptors(2).run(
        missing,
        |wanted, worker| bring_in(store, client, repository, wanted, progress, worker),
        |batch: Vec<Ready<'s>>| {
            let (arrivals, _locks): (Vec<Arrival<'s>>, Vec<Option<LockGuard>>) = batch
                .into_iter()
                .map(|ready| (ready.arrival, ready.lock))
                .unzip();
            let committed = operation
                .commit_arrivals(arrivals)
                .map_err(|error| match error {
                    StoreError::BlobVanished { digest } => {
                        RegistryError::from(OciError::BlobVanished {
                            digest,
                            reason:
                                "deleted while the pull waited for it; nothing was pulled, try \
                                 again"
                                    .to_string(),
                        })
                    }
                    other => other.into(),
                })?;
            report.blobs_downloaded += committed.blobs_written;
            report.bytes_downloaded += committed.bytes_written;
            report.blobs_present += committed.blobs_held;
            Ok(())
        },
    )
}

/// Brings one blob into staging: from bytes already read, else downloaded under its fetch
/// lock, unless another pull stored it while we waited for the lock.
fn bring_in<'s>(
    store: &'s Store,
    client: &RegistryClient,
    repository: &str,
    wanted: &Wanted<'_>,
    progress: &dyn Progress,
    worker: &Worker<'_, Ready<'s>, RegistryError>,
) -> RegistryResult<Ready<'s>> {
    let reached = wanted.reached;
    let digest = &reached.digest;
    let size = reached.descriptor.size();
    let options = write_options(digest, &reached.descriptor);
    if let Some(bytes) = wanted.bytes {
        let blob = store.stage(bytes, &options)?;
        return Ok(Ready {
            arrival: Arrival::Staged(blob),
            lock: None,
        });
    }
    // The lock may be one a blob waiting for its commit holds (of this pull, same stripe, or
    // of another pull that waits for one of ours): commits go on while this worker waits.
    let lock = fetch_lock(store, digest, |acquire| worker.while_waiting(acquire))?;
    if store
        .record(digest)?
        .is_some_and(|record| record.size == size)
        && store.contains(digest)?
    {
        progress.transfer(TransferEvent::Skipped {
            digest: digest.clone(),
            reason: SkipReason::AlreadyStored,
        });
        return Ok(Ready {
            arrival: Arrival::Present {
                digest: digest.clone(),
                size,
            },
            lock: Some(lock),
        });
    }
    progress.transfer(TransferEvent::Started {
        digest: digest.clone(),
        size,
        direction: Direction::Download,
    });
    let blob = download(store, client, repository, digest, size, &options, progress)?;
    progress.transfer(TransferEvent::Finished {
        digest: digest.clone(),
    });
    Ok(Ready {
        arrival: Arrival::Staged(blob),
        lock: Some(lock),
    })
}

/// Downloads a blob into staging under its fetch lock, through a resumable writer: when a
/// killed pull (in any process) staged a part of it, that part is taken over and hashed again,
/// and only the rest is asked for (`Range: bytes=N-`). A taken-over part that is not the blob's
/// start (the digest does not match in the end: a machine crash tore the staged file) is
/// discarded with the rest, and the blob is downloaded once more from its first byte.
fn download<'s>(
    store: &'s Store,
    client: &RegistryClient,
    repository: &str,
    digest: &Digest,
    size: u64,
    options: &WriteOptions,
    progress: &dyn Progress,
) -> RegistryResult<StagedBlob<'s>> {
    let from_kept = |writer: StoreWriter<'s>| {
        let kept = writer.written();
        let download = BlobDownload::new(client, repository, digest, size).resuming_from(kept);
        let content = ObservedReader::resumed(download, progress, digest.clone(), kept);
        stage_download(writer, content, repository, digest)
    };
    let writer = store.resumable_writer(options)?;
    let resumed = writer.written() > 0;
    match from_kept(writer) {
        Err(error) if resumed && is_digest_mismatch(&error) => {
            from_kept(store.resumable_writer(options)?)
        }
        other => other,
    }
}

/// Whether the store refused the content for not hashing to its digest.
fn is_digest_mismatch(error: &RegistryError) -> bool {
    matches!(
        error,
        RegistryError::Oci(oci) if matches!(
            &**oci,
            OciError::Store(store) if matches!(
                &**store,
                StoreError::Storage(StorageError::DigestMismatch { .. })
            )
        )
    )
}
