//! Importing an image layout (v1.x directory, pre-1.0 directory, or `oci-archive` tar).
//!
//! All or nothing (DESIGN.md, "An import is all or nothing"), under the shared flavour GC
//! lock, inside a base-store [`Operation`] that holds every blob the import touches:
//! 1. read the layout and choose the refs (names validated before anything is stored);
//! 2. verify and store content: from a directory, walk everything the refs reach (every
//!    manifest and index verified: digest, size, 4 MiB limit; every other blob's presence and
//!    size), hold what the store has in one step, then stage the rest on several threads,
//!    each verified as it streams, committed in batches ([`super::import_staging`]); from an
//!    archive, stage every blob member as the archive is read once (committed in batches of
//!    the same size), then walk over what it held;
//! 3. commit ([`super::import_commit`], shared with pull): the referrer-index entries and the
//!    refs land in one atomic key/value batch, the hold on everything reached passes to
//!    `owner.oci` in one batch, then the operation lets go of what it touched but did not
//!    reach.
//!
//! A refusal anywhere before the commit lets go of everything the import touched, deleting
//! what nothing else holds: the store's full dump is what it was, without a GC.

use std::path::{Path, PathBuf};

use oci_spec::image::Descriptor;
use serde::Serialize;

use super::archive::{read_archive, ArchiveLimits};
use super::archive_source::ArchiveSource;
use super::descriptor::{digest_of, media_type_of};
use super::error::{OciError, OciResult};
use super::graph::{Child, ContentSource, DocumentKind, Fetched, Reached, Walker};
use super::import_staging::{blob_import_error, stage_and_commit};
use super::layout::{Layout, LayoutEntry, LayoutSource};
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
    /// Imports a layout directory or an `oci-archive` tar (plain or gzip) of one. A ref that
    /// already exists under an imported name is replaced.
    pub fn import_layout(&self, path: &Path, options: &ImportOptions) -> OciResult<ImportReport> {
        let metadata = path.metadata().io_context("opening", path)?;
        // Held for the whole import, so the OCI GC (which also clears the holds of crashed
        // imports) waits for us. Taken once here: taking it again inside would deadlock
        // against a GC waiting at the turnstile.
        let _gc_lock = self.mutation_lock()?;
        if metadata.is_dir() {
            self.import_directory(path, options)
        } else {
            self.import_archive(path, options)
        }
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

    /// The caller holds the mutation lock.
    fn import_archive(&self, path: &Path, options: &ImportOptions) -> OciResult<ImportReport> {
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
        let contents = read_archive(path, &limits, &mut |digest, size, member, content| {
            let member_path = || PathBuf::from(format!("{}:{member}", path.display()));
            let content = ProgressRead::new(content, progress);
            progress.item_done();
            if operation.has(digest, size)? {
                // Held with the next batch; its content is skipped, not read.
                pending.push(Arrival::Present {
                    digest: digest.clone(),
                    size,
                });
                report.blobs_skipped += 1;
            } else {
                let options = WriteOptions {
                    media_type: None,
                    expected_digest: Some(digest.clone()),
                    expected_size: Some(size),
                    ..WriteOptions::default()
                };
                let staged = operation
                    .stage(content, &options)
                    .map_err(|source| blob_import_error(digest, member_path(), source))?;
                pending.push(Arrival::Staged(staged));
            }
            if pending.len() >= batch_size {
                commit_archive_batch(&mut operation, std::mem::take(&mut pending), &mut report)?;
            }
            Ok(())
        })?;
        commit_archive_batch(&mut operation, pending, &mut report)?;
        self.progress.finish();
        let entries = contents.entries(path)?;
        let selected = select_refs(&entries, path, options)?;
        let mut source = ArchiveSource {
            archive: path,
            blobs: &contents.blobs,
            store: self.store,
        };
        let (walker, referrers) = walk_selected(&selected, &entries, &mut source)?;
        report.referrers = referrers;
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

/// Commits one batch of an archive's blobs: the present ones held, the staged ones committed,
/// each in one locked step.
fn commit_archive_batch<'s>(
    operation: &mut Operation<'s>,
    batch: Vec<Arrival<'s>>,
    report: &mut ImportReport,
) -> OciResult<()> {
    let committed = operation
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
    report.blobs_written += committed.blobs_written;
    report.bytes_written += committed.bytes_written;
    Ok(())
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
