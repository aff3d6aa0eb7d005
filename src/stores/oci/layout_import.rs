//! Importing an image layout (v1.x directory, pre-1.0 directory, or `oci-archive` tar).
//!
//! Order, so a failure leaves no ref and nothing half-written:
//! 1. read the layout and choose the refs (names validated before anything is stored);
//! 2. walk everything the refs reach, verifying every manifest and index (digest, size,
//!    4 MiB limit) and the presence and size of every other blob;
//! 3. under the shared flavour GC lock: stream leaf blobs in (digests verified as they
//!    stream; blobs already stored are not read), then the manifests and indexes, each marked
//!    as owned by `oci`; then referrer-index entries; then the refs, last.
//!
//! A corrupt layer therefore stops the import before any manifest is stored; blobs already
//! written by then carry the `oci` mark and no ref, so the OCI GC sweeps them.

use std::fs::File;
use std::path::Path;

use oci_spec::image::Descriptor;
use serde::Serialize;

use super::archive::extract_archive;
use super::descriptor::{digest_of, media_type_of};
use super::error::{OciError, OciResult};
use super::graph::{Child, ContentSource, DocumentKind, Fetched, Reached, Walker};
use super::layout::{Layout, LayoutEntry, LayoutSource};
use super::ref_name::RefName;
use super::{OciStore, FLAVOUR, REF_DATA_TYPE};
use crate::store::{validate_media_type, WriteOptions};
use crate::traits::{BlobStore, Digest, ExtraData, Index, KvStore};

/// Which refs of a layout to import, under which names.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Import only this ref of the layout.
    pub sref: Option<String>,
    /// Store the (single) imported ref under this name instead.
    pub dref: Option<String>,
    /// Import every named ref of the layout under its own name.
    pub all: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImportedRef {
    pub name: String,
    pub digest: Digest,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    pub refs: Vec<ImportedRef>,
    /// Blobs streamed into the store.
    pub blobs_written: u64,
    pub bytes_written: u64,
    /// Blobs the store already had (not read again).
    pub blobs_skipped: u64,
    /// Manifests in the layout that refer to an imported one (`subject`), imported with it.
    pub referrers: u64,
}

impl<B: BlobStore, I: Index, X: ExtraData, K: KvStore> OciStore<'_, B, I, X, K> {
    /// Imports a layout directory or an `oci-archive` tar (plain or gzip) of one. A ref that
    /// already exists under an imported name is replaced.
    pub fn import_layout(&self, path: &Path, options: &ImportOptions) -> OciResult<ImportReport> {
        let metadata = path
            .metadata()
            .map_err(|e| OciError::io("opening", path, e))?;
        // The GC lock is held for the whole import, archive extraction included, so the OCI
        // GC (which also clears scratch left by crashed imports) waits for us. Taken once
        // here: taking it again inside would deadlock against a GC waiting at the turnstile.
        let _gc_lock = self.mutation_lock()?;
        if metadata.is_dir() {
            return self.import_directory(path, options);
        }
        // Extract inside the store directory: same filesystem, cleaned up on drop, and never
        // somewhere a concurrent process could swap files under us.
        let scratch = self.store.dir().join("tmp");
        std::fs::create_dir_all(&scratch)
            .map_err(|e| OciError::io("creating scratch directory", &scratch, e))?;
        let extracted = tempfile::Builder::new()
            .prefix("oci-archive-")
            .tempdir_in(&scratch)
            .map_err(|e| OciError::io("creating scratch directory", &scratch, e))?;
        extract_archive(path, extracted.path())?;
        self.import_directory(extracted.path(), options)
            .map_err(|error| match error {
                OciError::NotALayout { reason, .. } => OciError::NotALayout {
                    path: path.to_path_buf(),
                    reason: format!("the archive holds no layout: {reason}"),
                },
                other => other,
            })
    }

    /// The caller holds the mutation lock.
    fn import_directory(&self, path: &Path, options: &ImportOptions) -> OciResult<ImportReport> {
        let layout = Layout::open(path)?;
        let selected = select_refs(&layout, path, options)?;

        let mut source = LayoutSource { layout: &layout };
        let mut walker = Walker::new();
        let roots = selected
            .iter()
            .map(|(_, descriptor)| Child::required(descriptor.clone()))
            .collect();
        walker.visit(roots, &mut source)?;
        let referrers = add_layout_referrers(&layout, &mut walker, &mut source)?;
        walker.require_complete(&source.name())?;

        let mut report = ImportReport {
            referrers,
            ..ImportReport::default()
        };
        let (documents, leaves): (Vec<&Reached>, Vec<&Reached>) =
            walker.reached.iter().partition(|r| r.document.is_some());
        for reached in leaves.into_iter().chain(documents) {
            self.import_blob(&layout, reached, &mut report)?;
        }
        for reached in &walker.reached {
            self.record_referrer(reached)?;
        }
        self.write_refs_all_or_nothing(&selected, &mut report)?;
        Ok(report)
    }

    /// Writes the imported refs; if one fails, the refs already written by this import get
    /// their earlier value back (or go), so `--all` either names every image or changes none.
    fn write_refs_all_or_nothing(
        &self,
        selected: &[(RefName, Descriptor)],
        report: &mut ImportReport,
    ) -> OciResult<()> {
        let mut replaced = Vec::new();
        for (name, descriptor) in selected {
            let result = self
                .store
                .get_data(REF_DATA_TYPE, name.as_str())
                .map_err(OciError::from)
                .and_then(|previous| {
                    replaced.push((name, previous));
                    self.write_ref(name, descriptor)
                })
                .and_then(|()| digest_of(descriptor, "a ref"));
            match result {
                Ok(digest) => report.refs.push(ImportedRef {
                    name: name.to_string(),
                    digest,
                }),
                Err(error) => {
                    for (name, previous) in replaced.into_iter().rev() {
                        // Best effort: the error that stopped the import is the one to report.
                        let _ = match previous {
                            Some(entry) => self
                                .store
                                .put_data(
                                    REF_DATA_TYPE,
                                    name.as_str(),
                                    &entry.value,
                                    entry.blob.as_ref(),
                                )
                                .map(drop),
                            None => self
                                .store
                                .remove_data(REF_DATA_TYPE, name.as_str())
                                .map(drop),
                        };
                    }
                    report.refs.clear();
                    return Err(error);
                }
            }
        }
        Ok(())
    }

    /// Stores one blob (unless the store has it) with the `oci` owner mark. Both paths mark
    /// under the blob's digest lock (`claim_existing`, `write_owned`), so another flavour's GC,
    /// which does not take our GC lock, can never delete a blob between our finding or writing
    /// it and our mark landing.
    fn import_blob(
        &self,
        layout: &Layout,
        reached: &Reached,
        report: &mut ImportReport,
    ) -> OciResult<()> {
        if self
            .store
            .claim_existing(&reached.digest, FLAVOUR)?
            .is_some()
        {
            report.blobs_skipped += 1;
            return Ok(());
        }
        let size = self.write_blob(layout, reached)?;
        report.blobs_written += 1;
        report.bytes_written += size;
        Ok(())
    }

    /// Streams one blob of the layout into the store, verified; returns its size.
    fn write_blob(&self, layout: &Layout, reached: &Reached) -> OciResult<u64> {
        let digest = &reached.digest;
        let media_type = media_type_of(&reached.descriptor);
        let options = WriteOptions {
            // The descriptor keeps the exact media type; the index record is informational,
            // so one the base store would refuse (parameters, odd characters) is left out.
            media_type: validate_media_type(&media_type).ok().map(|_| media_type),
            expected_digest: Some(digest.clone()),
            expected_size: Some(reached.descriptor.size()),
        };
        let path = layout
            .blob_path(digest)?
            .ok_or_else(|| OciError::MissingBlob {
                digest: digest.clone(),
                media_type: media_type_of(&reached.descriptor),
                source_name: layout.root.display().to_string(),
            })?;
        let written = match &reached.document {
            Some(bytes) => self.store.write_owned(bytes.as_slice(), &options, FLAVOUR),
            None => {
                let file = File::open(&path).map_err(|e| OciError::io("opening", &path, e))?;
                self.store.write_owned(file, &options, FLAVOUR)
            }
        };
        let record = written.map_err(|source| OciError::BlobImport {
            digest: digest.clone(),
            path: path.clone(),
            source: Box::new(source),
        })?;
        Ok(record.size)
    }
}

/// The refs to import and the names to store them under, all validated.
fn select_refs(
    layout: &Layout,
    path: &Path,
    options: &ImportOptions,
) -> OciResult<Vec<(RefName, Descriptor)>> {
    let selection_error = |reason: String| OciError::RefSelection {
        path: path.to_path_buf(),
        reason,
    };
    let names = || {
        let names: Vec<&str> = layout
            .entries
            .iter()
            .filter_map(|e| e.name.as_deref())
            .collect();
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
        let named: Vec<&LayoutEntry> = layout.entries.iter().filter(|e| e.name.is_some()).collect();
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
        Some(wanted) => layout
            .entries
            .iter()
            .find(|e| e.name.as_deref() == Some(wanted.as_str()))
            .ok_or_else(|| {
                selection_error(format!(
                    "no ref {wanted:?} in the layout (it has {})",
                    names()
                ))
            })?,
        None => match layout.entries.as_slice() {
            [only] => only,
            [] => return Err(selection_error("the layout's index is empty".to_string())),
            _ => {
                return Err(selection_error(format!(
                    "the layout has {} entries ({}): choose one with --sref or take all \
                     with --all",
                    layout.entries.len(),
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
    layout: &Layout,
    walker: &mut Walker,
    source: &mut LayoutSource<'_>,
) -> OciResult<u64> {
    let mut candidates: Vec<(Descriptor, Digest)> = Vec::new();
    for entry in &layout.entries {
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

fn subject_of_entry(descriptor: &Descriptor, source: &mut LayoutSource<'_>) -> Option<Digest> {
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
