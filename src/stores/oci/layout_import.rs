//! Importing an image layout (v1.x directory, pre-1.0 directory, or `oci-archive` tar) or a
//! Docker archive (Docker ≥ 25 or legacy, see [`super::docker_archive`]), any archive also
//! from a stream such as standard input.
//!
//! All or nothing (DESIGN.md, "An import is all or nothing"), under the shared flavour GC
//! lock, inside a base-store [`Operation`] that holds every blob the import touches:
//! 1. read the layout and choose the refs (names validated before anything is stored);
//! 2. verify and store content: from a directory, walk everything the refs reach (every
//!    manifest and index verified: digest, size, 4 MiB limit; every other blob's presence and
//!    size), hold what the store has in one step, then stage the rest on several threads,
//!    each verified as it streams, committed in batches ([`super::import_staging`]); from an
//!    archive, stage every blob member as the archive is read once (committed in batches of
//!    the same size; members named by digest verified as they stream, the others hashed and
//!    named by the store), convert a Docker archive's images into layout entries, then walk
//!    over what it held;
//! 3. commit ([`super::import_commit`], shared with pull): the referrer-index entries and the
//!    refs land in one atomic key/value batch, the hold on everything reached passes to
//!    `owner.oci` in one batch, then the operation lets go of what it touched but did not
//!    reach.
//!
//! A refusal anywhere before the commit lets go of everything the import touched, deleting
//! what nothing else holds: the store's full dump is what it was, without a GC.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use oci_spec::image::Descriptor;
use serde::Serialize;

use super::archive::{read_archive, ArchiveLimits, SinkMember};
use super::archive_source::ArchiveSource;
use super::descriptor::{digest_of, media_type_of};
use super::docker_archive::{docker_entries, normalise_repo_tag, standard_input_name};
use super::error::{OciError, OciResult};
use super::graph::{Child, ContentSource, DocumentKind, Fetched, Reached, Walker};
use super::import_staging::{blob_import_error, stage_and_commit};
use super::layout::{open_regular, Layout, LayoutEntry, LayoutSource};
use super::ref_name::RefName;
use super::{OciStore, HOLDER};
use crate::store::{
    commit_batch, validate_media_type, Arrival, Operation, ProgressRead, StoreError, Totals,
    WriteOptions,
};
use crate::traits::Digest;
use crate::util::io_context::IoResultExt;

/// Which refs of a layout to import, under which names, and how much of an archive to read.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// Import only this ref of the layout.
    pub sref: Option<String>,
    /// Store the (single) imported ref under this name instead.
    pub dref: Option<String>,
    /// Import every named ref of the layout under its own name.
    pub all: bool,
    /// Most tar entries an archive may have (default 1,000,000).
    pub max_archive_entries: u64,
    /// Most bytes of member content an archive may declare (default 1 TiB).
    pub max_archive_bytes: u64,
}

impl Default for ImportOptions {
    fn default() -> Self {
        let limits = ArchiveLimits::default();
        ImportOptions {
            sref: None,
            dref: None,
            all: false,
            max_archive_entries: limits.max_entries,
            max_archive_bytes: limits.max_bytes,
        }
    }
}

/// A ref an import wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImportedRef {
    /// The ref's name in the store.
    pub name: String,
    /// Digest of the manifest or index it names.
    pub digest: Digest,
}

/// What [`OciStore::import_layout`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// The refs written.
    pub refs: Vec<ImportedRef>,
    /// Blobs streamed into the store.
    pub blobs_written: u64,
    /// Bytes of those blobs.
    pub bytes_written: u64,
    /// Blobs the store already had (not read again).
    pub blobs_skipped: u64,
    /// Manifests in the layout that refer to an imported one (`subject`), imported with it.
    pub referrers: u64,
}

impl OciStore<'_> {
    /// Imports a layout directory, an `oci-archive` tar of one or a Docker archive (each plain,
    /// gzip or zstd). A ref that already exists under an imported name is replaced.
    pub fn import_layout(&self, path: &Path, options: &ImportOptions) -> OciResult<ImportReport> {
        let metadata = path.metadata().io_context("opening", path)?;
        // Held for the whole import, so the OCI GC (which also clears the holds of crashed
        // imports) waits for us. Taken once here: taking it again inside would deadlock
        // against a GC waiting at the turnstile.
        let _gc_lock = self.mutation_lock()?;
        if metadata.is_dir() {
            self.import_directory(path, options)
        } else {
            let file = open_regular(path)?;
            self.import_archive(path, file, options)
        }
    }

    /// Imports an archive (any that [`OciStore::import_layout`] reads from a file) from a
    /// stream such as standard input: read once, in one pass, with the memory of a file import
    /// (every member streams into the store's staging area as it arrives, verified or hashed
    /// there; only the small layout documents are kept in memory).
    pub fn import_archive_stream(
        &self,
        input: impl Read,
        options: &ImportOptions,
    ) -> OciResult<ImportReport> {
        let _gc_lock = self.mutation_lock()?;
        self.import_archive(&standard_input_name(), input, options)
    }

    /// The caller holds the mutation lock.
    fn import_directory(&self, path: &Path, options: &ImportOptions) -> OciResult<ImportReport> {
        let layout = Layout::open(path)?;
        let selected = select_refs(&layout.entries, path, options)?;
        let mut source = LayoutSource { layout: &layout };
        let (walker, referrers) = walk_selected(&selected, &layout.entries, &mut source)?;

        let mut operation = self.store.begin_operation(&HOLDER)?;
        let mut report = ImportReport {
            referrers,
            ..ImportReport::default()
        };
        let (documents, leaves): (Vec<&Reached>, Vec<&Reached>) =
            walker.reached.iter().partition(|r| r.document.is_some());
        let ordered: Vec<&Reached> = leaves.into_iter().chain(documents).collect();
        // What the store has already is held in one step and not read again.
        let wanted: Vec<(Digest, u64)> = ordered
            .iter()
            .map(|r| (r.digest.clone(), r.descriptor.size()))
            .collect();
        let held = operation.hold_present(&wanted)?;
        report.blobs_skipped = held.iter().filter(|h| **h).count() as u64;
        let missing: Vec<&Reached> = ordered
            .into_iter()
            .zip(held)
            .filter_map(|(reached, held)| (!held).then_some(reached))
            .collect();
        let bytes = missing.iter().map(|r| r.descriptor.size()).sum();
        self.progress.start(
            "importing",
            Totals::items_and_bytes(missing.len() as u64, bytes),
        );
        let stored = stage_and_commit(&mut operation, &layout, &missing, self.progress)?;
        self.progress.finish();
        report.blobs_written = stored.blobs_written;
        report.bytes_written = stored.bytes_written;
        report.refs = self.commit_import(operation, &walker.reached, &selected)?;
        for imported in &report.refs {
            self.used(&imported.name, &imported.digest);
        }
        Ok(report)
    }

    /// The caller holds the mutation lock. `path` names the archive in messages.
    fn import_archive(
        &self,
        path: &Path,
        input: impl Read,
        options: &ImportOptions,
    ) -> OciResult<ImportReport> {
        let limits = ArchiveLimits {
            max_entries: options.max_archive_entries,
            max_bytes: options.max_archive_bytes,
        };
        let mut operation = self.store.begin_operation(&HOLDER)?;
        let mut report = ImportReport::default();
        let mut pending = Vec::new();
        // The batches of the transfer pipeline: each staged blob holds its staging file open.
        let batch_size = commit_batch(1);
        self.progress.start("importing", Totals::UNKNOWN);
        let progress = self.progress;
        // Every blob that arrived, and whether this import wrote it (else the store had it).
        let mut arrived: HashMap<Digest, bool> = HashMap::new();
        let sink = &mut |member: &SinkMember<'_>, content: &mut dyn Read| -> OciResult<Digest> {
            let SinkMember {
                expected,
                size,
                name,
            } = *member;
            let member_path = || PathBuf::from(format!("{}:{name}", path.display()));
            let content = ProgressRead::new(content, progress);
            progress.item_done();
            if let Some(digest) = expected {
                if arrived.contains_key(digest) {
                    return Ok(digest.clone());
                }
                if operation.has(digest, size)? {
                    // Held with the next batch; its content is skipped, not read.
                    pending.push(Arrival::Present {
                        digest: digest.clone(),
                        size,
                    });
                    arrived.insert(digest.clone(), false);
                    commit_when_full(&mut operation, &mut pending, batch_size)?;
                    return Ok(digest.clone());
                }
            }
            let options = WriteOptions {
                media_type: None,
                expected_digest: expected.cloned(),
                expected_size: Some(size),
                ..WriteOptions::default()
            };
            let staged = operation
                .stage(content, &options)
                .map_err(|source| match expected {
                    Some(digest) => blob_import_error(digest, member_path(), source),
                    None => OciError::MemberImport {
                        path: member_path(),
                        source: Box::new(source),
                    },
                })?;
            let digest = staged.digest().clone();
            // A member not named by digest is known only now: one the import or the store
            // already has is held, not written again (the staged copy is dropped).
            if arrived.contains_key(&digest) {
                return Ok(digest);
            }
            if expected.is_none() && operation.has(&digest, size)? {
                pending.push(Arrival::Present {
                    digest: digest.clone(),
                    size,
                });
                arrived.insert(digest.clone(), false);
            } else {
                pending.push(Arrival::Staged(staged));
                arrived.insert(digest.clone(), true);
            }
            commit_when_full(&mut operation, &mut pending, batch_size)?;
            Ok(digest)
        };
        let mut contents = read_archive(path, input, &limits, sink)?;
        commit_archive_batch(&mut operation, pending)?;
        self.progress.finish();
        let docker = contents.docker_manifest.is_some();
        let entries = match docker {
            true => docker_entries(&mut contents, path, &mut operation)?,
            false => contents.entries(path)?,
        };
        let options = match docker {
            true => docker_selection(&entries, options),
            false => options.clone(),
        };
        let selected = select_refs(&entries, path, &options)?;
        let mut source = ArchiveSource {
            archive: path,
            blobs: &contents.blobs,
            store: self.store,
        };
        let (walker, referrers) = walk_selected(&selected, &entries, &mut source)?;
        report.referrers = referrers;
        for reached in &walker.reached {
            match arrived.get(&reached.digest) {
                Some(false) => report.blobs_skipped += 1,
                // Written from the archive, or made from it (a Docker archive's manifests).
                Some(true) | None => {
                    report.blobs_written += 1;
                    report.bytes_written += reached.descriptor.size();
                }
            }
        }
        // Streamed before any descriptor was read: the records get their media types now.
        let named: Vec<(Digest, String)> = walker
            .reached
            .iter()
            .map(|reached| (reached.digest.clone(), media_type_of(&reached.descriptor)))
            .filter(|(_, media_type)| validate_media_type(media_type).is_ok())
            .collect();
        self.store.name_media_types(&named)?;
        report.refs = self.commit_import(operation, &walker.reached, &selected)?;
        for imported in &report.refs {
            self.used(&imported.name, &imported.digest);
        }
        Ok(report)
    }
}

/// Walks from the selected refs, then adds the layout's referrers of what was reached, and
/// requires everything required to be there. Returns the walk and how many referrers it added.
fn walk_selected(
    selected: &[(RefName, Descriptor)],
    entries: &[LayoutEntry],
    source: &mut impl ContentSource,
) -> OciResult<(Walker, u64)> {
    let mut walker = Walker::new();
    let roots = selected
        .iter()
        .map(|(_, descriptor)| Child::required(descriptor.clone()))
        .collect();
    walker.visit(roots, source)?;
    let referrers = add_layout_referrers(entries, &mut walker, source)?;
    walker.require_complete(&source.name())?;
    Ok((walker, referrers))
}

/// Commits the pending batch when it is full.
fn commit_when_full<'s>(
    operation: &mut Operation<'s>,
    pending: &mut Vec<Arrival<'s>>,
    batch_size: usize,
) -> OciResult<()> {
    if pending.len() >= batch_size {
        commit_archive_batch(operation, std::mem::take(pending))?;
    }
    Ok(())
}

/// Commits one batch of an archive's blobs: the present ones held, the staged ones committed,
/// each in one locked step.
fn commit_archive_batch<'s>(
    operation: &mut Operation<'s>,
    batch: Vec<Arrival<'s>>,
) -> OciResult<()> {
    operation
        .commit_arrivals(batch)
        .map_err(|error| match error {
            StoreError::BlobVanished { digest } => OciError::BlobVanished {
                digest,
                reason: "deleted or damaged in the store while the archive was read; nothing \
                         was imported, try again"
                    .to_string(),
            },
            other => other.into(),
        })?;
    Ok(())
}

/// A Docker archive imports as `docker load` loads it: every image under each of its names
/// (normalised `RepoTags`), unless `--sref` picks one (by its name as given or normalised) or
/// `--dref` names the only image.
fn docker_selection(entries: &[LayoutEntry], options: &ImportOptions) -> ImportOptions {
    let mut options = options.clone();
    if let Some(sref) = &options.sref {
        if !entries
            .iter()
            .any(|e| e.name.as_deref() == Some(sref.as_str()))
        {
            options.sref = Some(normalise_repo_tag(sref));
        }
    }
    let named = entries.iter().any(|e| e.name.is_some());
    if options.sref.is_none() && options.dref.is_none() && !options.all && named {
        options.all = true;
    }
    options
}

/// The refs to import and the names to store them under, all validated.
fn select_refs(
    entries: &[LayoutEntry],
    path: &Path,
    options: &ImportOptions,
) -> OciResult<Vec<(RefName, Descriptor)>> {
    let selection_error = |reason: String| OciError::RefSelection {
        path: path.to_path_buf(),
        reason,
    };
    let names = || {
        let names: Vec<&str> = entries.iter().filter_map(|e| e.name.as_deref()).collect();
        if names.is_empty() {
            "no named refs".to_string()
        } else {
            format!("refs: {}", names.join(", "))
        }
    };
    if options.all {
        if options.sref.is_some() || options.dref.is_some() {
            return Err(OciError::Invalid(
                "--all imports every ref under its own name: it does not combine with --sref \
                 or --dref"
                    .to_string(),
            ));
        }
        let named: Vec<&LayoutEntry> = entries.iter().filter(|e| e.name.is_some()).collect();
        if named.is_empty() {
            return Err(selection_error("the layout has no named refs".to_string()));
        }
        return named
            .into_iter()
            .map(|e| {
                let name = RefName::parse(e.name.as_deref().unwrap_or_default())?;
                Ok((name, e.descriptor.clone()))
            })
            .collect();
    }
    let entry = match &options.sref {
        Some(wanted) => entries
            .iter()
            .find(|e| e.name.as_deref() == Some(wanted.as_str()))
            .ok_or_else(|| {
                selection_error(format!(
                    "no ref {wanted:?} in the layout (it has {})",
                    names()
                ))
            })?,
        None => match entries {
            [only] => only,
            // One image under several names (a Docker image with several tags), renamed.
            [first, rest @ ..]
                if options.dref.is_some()
                    && rest
                        .iter()
                        .all(|e| e.descriptor.digest() == first.descriptor.digest()) =>
            {
                first
            }
            [] => return Err(selection_error("the layout's index is empty".to_string())),
            _ => {
                return Err(selection_error(format!(
                    "the layout has {} entries ({}): choose one with --sref or take all \
                     with --all",
                    entries.len(),
                    names()
                )))
            }
        },
    };
    let name = match (&options.dref, &entry.name) {
        (Some(dref), _) => dref.as_str(),
        (None, Some(name)) => name.as_str(),
        (None, None) => {
            return Err(selection_error(
                "the entry has no ref name: give one with --dref".to_string(),
            ))
        }
    };
    Ok(vec![(RefName::parse(name)?, entry.descriptor.clone())])
}

/// Adds the layout's other index entries whose `subject` is something already reached
/// (signatures, SBOMs stored beside an image), until no more are found. Entries that cannot
/// be read as manifests are not referrers and are left alone. Returns how many were added.
fn add_layout_referrers(
    entries: &[LayoutEntry],
    walker: &mut Walker,
    source: &mut impl ContentSource,
) -> OciResult<u64> {
    let mut candidates: Vec<(Descriptor, Digest)> = Vec::new();
    for entry in entries {
        if let Some(subject) = subject_of_entry(&entry.descriptor, source) {
            candidates.push((entry.descriptor.clone(), subject));
        }
    }
    let mut added = 0;
    loop {
        let mut new_roots = Vec::new();
        candidates.retain(|(descriptor, subject)| {
            let reached_subject = walker.is_visited(subject);
            let already = digest_of(descriptor, "").is_ok_and(|d| walker.is_visited(&d));
            if reached_subject && !already {
                new_roots.push(Child::required(descriptor.clone()));
            }
            !reached_subject && !already
        });
        if new_roots.is_empty() {
            return Ok(added);
        }
        added += new_roots.len() as u64;
        walker.visit(new_roots, source)?;
    }
}

fn subject_of_entry(descriptor: &Descriptor, source: &mut impl ContentSource) -> Option<Digest> {
    let media_type = media_type_of(descriptor);
    let kind = DocumentKind::of(&media_type);
    if !kind.is_document() || descriptor.size() > super::graph::MAX_DOCUMENT_SIZE {
        return None;
    }
    let digest = digest_of(descriptor, "").ok()?;
    let Ok(Fetched::Document(bytes)) = source.fetch(&digest, descriptor, true) else {
        return None;
    };
    let links = super::graph::parse_document(kind, &media_type, &digest, &bytes).ok()?;
    digest_of(links.subject.as_ref()?, "").ok()
}
