//! Exporting a ref as an image-spec v1.x layout directory, or as an `oci-archive` tar of one.
//!
//! Into a directory, export adds to what is there: blobs are written under `blobs/<alg>/<hex>`
//! if absent (temp file, fsync, rename: a concurrent writer of the same blob writes the same
//! bytes), then `index.json` is merged — entries of other refs are kept as they are, an entry
//! with the same ref name is replaced — under an exclusive `flock` on the layout directory
//! itself, and replaced atomically (temp, fsync, rename, fsync the directory). Locking the
//! directory rather than `index.json` matters: the rename gives `index.json` a new inode, so a
//! lock on the old file would not exclude the next writer; and no lock file is left behind in
//! the layout for other tools to trip over. So two exports into one layout at once lose
//! nothing.
//!
//! `index.json` is merged as `serde_json::Value`, not oci-spec's `ImageIndex`: entries written
//! by other tools may carry fields oci-spec does not know, and a merge must not drop them.
//!
//! An archive is a plain (uncompressed) tar, written to a temp file beside the target and
//! renamed over it (an existing archive is replaced, not merged), or to a stream such as
//! standard output, where a blob found damaged midway stops the stream short: the reader
//! sees a truncated tar and the export fails.
//!
//! A `docker-archive` is what Docker 25 `docker save` writes: the same OCI layout (its
//! `index.json` entry annotated with the image's full name and its tag, as Docker's), plus
//! the legacy `manifest.json` naming the config and layers by their `blobs/` names and the
//! ref's name as its `RepoTags`, which `docker load` (any version) and `podman load` read. A
//! ref to an index is exported with the manifest of this machine's platform in
//! `manifest.json`.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use oci_spec::image::Descriptor;
use serde::Serialize;
use serde_json::{json, Value};

use super::archive::DOCKER_MANIFEST_FILE;
use super::descriptor::{digest_of, media_type_of, with_ref_name, REF_NAME_ANNOTATION};
use super::docker_archive::{docker_index_entry, docker_manifest_json, familiar_repo_tag};
use super::error::{OciError, OciResult};
use super::graph::{Child, DocumentKind, Reached, Walker, OCI_INDEX};
use super::layout::{read_limited, BLOBS_DIR, INDEX_FILE, LAYOUT_FILE};
use super::ref_name::RefName;
use super::source::StoreSource;
use super::OciStore;
use crate::store::fsutil::{write_atomically, AtomicFile, ContentMismatch, VerifyingReader};
use crate::store::{Progress, ProgressRead, Store, StoreError, Totals};
use crate::traits::Digest;
use crate::util::fsync::fsync_dir;
use crate::util::io_context::{IoContext, IoResultExt};

const LAYOUT_VERSION_JSON: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
/// An `index.json` larger than this is not one we merge into.
const MAX_INDEX_FILE: u64 = 64 * 1024 * 1024;

/// What [`OciStore::export`] wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExportReport {
    /// The ref name written into the layout.
    pub name: String,
    /// Digest of the manifest or index the ref names.
    pub digest: Digest,
    /// Blobs the ref reaches (all of them are in the layout afterwards).
    pub blobs: u64,
    /// Bytes of those blobs.
    pub bytes: u64,
    /// Blobs a directory layout did not have yet.
    pub blobs_written: u64,
}

/// What an export writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// An OCI image layout (a directory, or an `oci-archive` tar of one).
    Oci,
    /// A `docker-archive` tar: the OCI layout plus `manifest.json`, as Docker 25 writes it.
    DockerArchive,
}

/// Where an export goes.
pub enum ExportTarget<'w> {
    /// A layout directory, created or added to.
    Directory(&'w Path),
    /// An archive file, replaced whole.
    ArchiveFile(&'w Path),
    /// An archive written to a stream (such as standard output), named in messages.
    ArchiveStream {
        /// The stream.
        out: &'w mut dyn Write,
        /// What stands for it in messages, such as `<standard output>`.
        name: &'w Path,
    },
}

impl OciStore<'_> {
    /// Writes ref `sref` (as `dref`, if given) to `path`: a layout directory, created or added
    /// to, or with `archive` an `oci-archive` tar file.
    pub fn export(
        &self,
        sref: &str,
        dref: Option<&str>,
        path: &Path,
        archive: bool,
    ) -> OciResult<ExportReport> {
        let target = match archive {
            true => ExportTarget::ArchiveFile(path),
            false => ExportTarget::Directory(path),
        };
        self.export_to(sref, dref, target, ExportFormat::Oci)
    }

    /// Writes ref `sref` (as `dref`, if given) to `target` in `format`; every blob verified
    /// as it is copied. A `docker-archive` is an archive: a directory target is refused.
    pub fn export_to(
        &self,
        sref: &str,
        dref: Option<&str>,
        target: ExportTarget<'_>,
        format: ExportFormat,
    ) -> OciResult<ExportReport> {
        if let (ExportFormat::DockerArchive, ExportTarget::Directory(path)) = (format, &target) {
            return Err(OciError::Invalid(format!(
                "a docker-archive is a tar file: export it with --archive to a file or to - \
                 (standard output), not to the directory {}",
                path.display()
            )));
        }
        if let Some(dref) = dref {
            RefName::parse(dref)?;
        }
        // Shared: no GC runs while the blobs are copied out.
        let _gc_lock = self.mutation_lock()?;
        let resolved = self.resolve_image(sref)?;
        if let Some(name) = &resolved.name {
            self.used(name, &resolved.digest);
        }
        // A digest exported without --dref is named by its full digest in the layout.
        let label = resolved.label();
        let name = RefName::parse(dref.unwrap_or(&label))?;
        let sref = label.as_str();
        let descriptor = resolved.descriptor;
        let mut walker = Walker::new();
        let mut source = StoreSource { store: self.store };
        walker.visit(vec![Child::required(descriptor.clone())], &mut source)?;
        // A document the walk found damaged: the same error as a leaf found damaged while it
        // is copied, before anything names it.
        if let Some((digest, descriptor, reason)) = walker.first_corrupt() {
            return Err(OciError::DamagedInStore {
                digest: digest.clone(),
                media_type: media_type_of(descriptor),
                reference: sref.to_string(),
                reason: reason.to_string(),
            });
        }
        walker.require_complete(&super::graph::ContentSource::name(&source))?;

        let docker_manifest = match format {
            ExportFormat::Oci => None,
            ExportFormat::DockerArchive => Some(docker_manifest_for(
                &walker,
                &descriptor,
                sref,
                name.as_str(),
            )?),
        };
        let entry = match format {
            ExportFormat::Oci => with_ref_name(&descriptor, name.as_str()),
            ExportFormat::DockerArchive => docker_index_entry(&descriptor, Some(name.as_str())),
        };
        let mut report = ExportReport {
            name: name.to_string(),
            digest: digest_of(&descriptor, &format!("ref {sref}"))?,
            blobs: walker.reached.len() as u64,
            bytes: walker.reached.iter().map(|r| r.descriptor.size()).sum(),
            blobs_written: 0,
        };
        let copier = BlobCopier {
            store: self.store,
            reference: sref,
            progress: self.progress,
        };
        self.progress.start(
            "exporting",
            Totals::items_and_bytes(report.blobs, report.bytes),
        );
        let docker_manifest = docker_manifest.as_deref();
        match target {
            ExportTarget::Directory(path) => {
                report.blobs_written =
                    copier.write_directory(path, &walker.reached, &entry, &name)?;
            }
            ExportTarget::ArchiveFile(path) => {
                let mut file = AtomicFile::new(path)?;
                copier.write_archive(
                    file.file_mut(),
                    path,
                    &walker.reached,
                    &entry,
                    docker_manifest,
                )?;
                crate::crash_point!("oci.export.archive.before-commit");
                file.commit()?;
                report.blobs_written = report.blobs;
            }
            ExportTarget::ArchiveStream { out, name } => {
                copier.write_archive(out, name, &walker.reached, &entry, docker_manifest)?;
                out.flush()
                    .map_err(|e| OciError::from(IoContext::new("writing archive", name, e)))?;
                report.blobs_written = report.blobs;
            }
        }
        self.progress.finish();
        Ok(report)
    }
}

/// Copies the blobs of one ref out of the store, each through a [`VerifyingReader`]: what
/// leaves the store is hashed and counted as it is written, and a blob that is not what its
/// digest and size say fails the export ([`OciError::DamagedInStore`]) before any
/// `index.json` names it.
struct BlobCopier<'a> {
    store: &'a Store,
    /// The stored ref being exported, for messages.
    reference: &'a str,
    /// Told of every byte copied and every blob done (an intact blob already there counts).
    progress: &'a dyn Progress,
}

impl BlobCopier<'_> {
    /// Into a layout directory: each blob into a temp file in its `blobs/<alg>/` directory,
    /// verified while it is copied, fsynced and renamed into place; `index.json` merged last.
    fn write_directory(
        &self,
        root: &Path,
        reached: &[Reached],
        entry: &Descriptor,
        name: &RefName,
    ) -> OciResult<u64> {
        std::fs::create_dir_all(root).io_context("creating layout", root)?;
        ensure_layout_file(root)?;
        let mut written = 0;
        let mut blob_dirs = Vec::new();
        for blob in reached {
            let dir = root.join(BLOBS_DIR).join(blob.digest.algorithm().name());
            let target = dir.join(blob.digest.hex());
            if layout_blob_is_intact(&target, blob)? {
                self.progress.bytes(blob.descriptor.size());
                self.progress.item_done();
                continue;
            }
            std::fs::create_dir_all(&dir).io_context("creating", &dir)?;
            let mut file = AtomicFile::new(&target)?;
            self.copy(blob, file.file_mut(), &target)?;
            file.persist()?;
            self.progress.item_done();
            crate::crash_point!("oci.export.after-blob");
            if !blob_dirs.contains(&dir) {
                blob_dirs.push(dir);
            }
            written += 1;
        }
        for dir in &blob_dirs {
            fsync_dir(dir)
                .io_context("syncing directory", dir)
                .map_err(StoreError::from)?;
        }
        crate::crash_point!("oci.export.before-index");
        merge_into_index(root, entry, name)?;
        crate::crash_point!("oci.export.after-index");
        Ok(written)
    }

    /// The tar into `out` (a temp file beside the target, renamed over it by the caller only
    /// when every member is complete and verified; or a stream); `path` names it in messages.
    /// With `docker_manifest`, a `manifest.json` of those bytes too.
    fn write_archive(
        &self,
        out: &mut dyn Write,
        path: &Path,
        reached: &[Reached],
        entry: &Descriptor,
        docker_manifest: Option<&[u8]>,
    ) -> OciResult<()> {
        let tar_error =
            |e: std::io::Error| OciError::from(IoContext::new("writing archive", path, e));
        let mut builder = tar::Builder::new(std::io::BufWriter::with_capacity(1 << 16, out));
        append_bytes(&mut builder, LAYOUT_FILE, LAYOUT_VERSION_JSON).map_err(tar_error)?;
        let index = merge_index_value(None, entry, entry_ref_name(entry))?;
        append_bytes(&mut builder, INDEX_FILE, &index).map_err(tar_error)?;
        if let Some(manifest) = docker_manifest {
            append_bytes(&mut builder, DOCKER_MANIFEST_FILE, manifest).map_err(tar_error)?;
        }
        append_directory(&mut builder, "blobs/").map_err(tar_error)?;
        let mut algorithms: Vec<&str> = reached
            .iter()
            .map(|r| r.digest.algorithm().name())
            .collect();
        algorithms.sort_unstable();
        algorithms.dedup();
        for algorithm in algorithms {
            append_directory(&mut builder, &format!("blobs/{algorithm}/")).map_err(tar_error)?;
        }
        for blob in reached {
            let member = format!(
                "blobs/{}/{}",
                blob.digest.algorithm().name(),
                blob.digest.hex()
            );
            // The header's size is the descriptor's; the reader fails rather than yield more
            // or fewer bytes, so a member is never padded or cut to fit it.
            let mut header = file_header(blob.descriptor.size());
            let reader = self.open_verified(blob)?;
            builder
                .append_data(&mut header, &member, reader)
                .map_err(|e| self.copy_error(blob, path, e))?;
            self.progress.item_done();
        }
        let mut buffered = builder.into_inner().map_err(tar_error)?;
        buffered.flush().map_err(tar_error)?;
        Ok(())
    }

    /// The blob's content through a [`VerifyingReader`] of its digest and descriptor size.
    fn open_verified<'b>(&'b self, blob: &'b Reached) -> OciResult<Box<dyn Read + 'b>> {
        let content: Box<dyn Read + 'b> = match &blob.document {
            // Read and verified by the walk; verified again for the one path out.
            Some(bytes) => Box::new(bytes.as_slice()),
            None => match self.store.read(&blob.digest) {
                Ok(reader) => Box::new(reader),
                Err(StoreError::NotFound(_)) => {
                    return Err(self.damaged(blob, "its content is missing".to_string()))
                }
                Err(error) => return Err(error.into()),
            },
        };
        let verified = VerifyingReader::new(content, &blob.digest, blob.descriptor.size());
        Ok(Box::new(ProgressRead::new(verified, self.progress)))
    }

    fn copy(&self, blob: &Reached, out: &mut File, target: &Path) -> OciResult<()> {
        let mut reader = self.open_verified(blob)?;
        std::io::copy(&mut reader, out).map_err(|e| self.copy_error(blob, target, e))?;
        Ok(())
    }

    fn copy_error(&self, blob: &Reached, target: &Path, error: std::io::Error) -> OciError {
        match ContentMismatch::find(&error) {
            Some(mismatch) => self.damaged(blob, mismatch.reason.clone()),
            None => OciError::from(IoContext::new(
                format!("copying blob {} to", blob.digest),
                target,
                error,
            )),
        }
    }

    fn damaged(&self, blob: &Reached, reason: String) -> OciError {
        OciError::DamagedInStore {
            digest: blob.digest.clone(),
            media_type: media_type_of(&blob.descriptor),
            reference: self.reference.to_string(),
            reason,
        }
    }
}

/// Whether the layout already holds `blob` intact at `target`. A blob of the right size is
/// rehashed, not trusted: the export is about to name it in `index.json`, and a file of the
/// right size may still be corrupt (damaged, or written by a tool that did not verify). Only a
/// regular file is read (a symlink, FIFO or directory there is never opened: no hang, no
/// reading outside the layout); anything else is replaced by a verified copy.
fn layout_blob_is_intact(target: &Path, blob: &Reached) -> OciResult<bool> {
    let metadata = match target.symlink_metadata() {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(OciError::from(IoContext::new("reading", target, e))),
    };
    if !metadata.is_file() || metadata.len() != blob.descriptor.size() {
        return Ok(false);
    }
    let file = File::open(target).io_context("opening", target)?;
    let mut reader = VerifyingReader::new(file, &blob.digest, blob.descriptor.size());
    match std::io::copy(&mut reader, &mut std::io::sink()) {
        Ok(_) => Ok(true),
        Err(e) if ContentMismatch::find(&e).is_some() => Ok(false),
        Err(e) => Err(OciError::from(IoContext::new("reading", target, e))),
    }
}

/// The `manifest.json` of a docker-archive of `root` (reached by `walker`): its manifest's, or
/// for an index the manifest of this machine's platform (or its only one).
fn docker_manifest_for(
    walker: &Walker,
    root: &Descriptor,
    sref: &str,
    name: &str,
) -> OciResult<Vec<u8>> {
    let document = |digest: &Digest| -> Option<&[u8]> {
        walker
            .reached
            .iter()
            .find(|r| &r.digest == digest)
            .and_then(|r| r.document.as_deref())
    };
    let context = format!("ref {sref}");
    let root_digest = digest_of(root, &context)?;
    let not_an_image = |reason: String| {
        OciError::Invalid(format!(
            "ref {sref} cannot be exported as a docker-archive: {reason}"
        ))
    };
    let mut manifest = root_digest.clone();
    if DocumentKind::of(&media_type_of(root)) == DocumentKind::Index {
        let bytes = document(&root_digest).unwrap_or_default();
        let index: Value =
            serde_json::from_slice(bytes).map_err(|e| OciError::document(&context, e))?;
        let children: Vec<&Value> = index["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .collect();
        let (os, architecture) = host_platform();
        let chosen = children
            .iter()
            .find(|child| {
                child["platform"]["os"] == os && child["platform"]["architecture"] == architecture
            })
            .or(match children.as_slice() {
                [only] => Some(only),
                _ => None,
            })
            .ok_or_else(|| {
                not_an_image(format!(
                    "it names an index with no manifest for {os}/{architecture}, and a \
                     docker-archive holds one platform's image"
                ))
            })?;
        manifest = chosen["digest"]
            .as_str()
            .and_then(|digest| Digest::parse(digest).ok())
            .ok_or_else(|| OciError::document(&context, "an index entry without a digest"))?;
    }
    let bytes = document(&manifest)
        .ok_or_else(|| not_an_image(format!("{manifest} is not an image manifest")))?;
    docker_manifest_json(
        bytes,
        familiar_repo_tag(name).as_deref(),
        &format!("manifest {manifest}"),
    )
}

/// The OCI platform of this machine: `linux` and Go's name for the architecture.
fn host_platform() -> (&'static str, &'static str) {
    let architecture = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    };
    ("linux", architecture)
}

fn entry_ref_name(entry: &Descriptor) -> &str {
    super::descriptor::ref_name_of(entry).unwrap_or_default()
}

/// Writes `oci-layout` if absent; an existing one must be of version 1.x.
fn ensure_layout_file(root: &Path) -> OciResult<()> {
    let path = root.join(LAYOUT_FILE);
    if path.exists() {
        let bytes = read_limited(&path, 64 * 1024)?;
        let layout: Value = serde_json::from_slice(&bytes)
            .map_err(|e| OciError::document(path.display().to_string(), e))?;
        let version = layout["imageLayoutVersion"].as_str().unwrap_or_default();
        if !version.starts_with("1.") {
            return Err(OciError::NotALayout {
                path: root.to_path_buf(),
                reason: format!("imageLayoutVersion {version:?} is not 1.x"),
            });
        }
        return Ok(());
    }
    write_atomically(&path, |file| file.write_all(LAYOUT_VERSION_JSON))?;
    Ok(())
}

/// Merges `entry` into `<root>/index.json` under an exclusive flock on the layout directory.
fn merge_into_index(root: &Path, entry: &Descriptor, name: &RefName) -> OciResult<()> {
    let directory = File::open(root).io_context("opening", root)?;
    // Through the trait on purpose: std's inherent method of the same name would shadow it.
    fs2::FileExt::lock_exclusive(&directory).io_context("locking layout", root)?;
    let path = root.join(INDEX_FILE);
    let existing = match path.exists() {
        true => Some(read_limited(&path, MAX_INDEX_FILE)?),
        false => None,
    };
    let merged =
        merge_index_value(existing.as_deref(), entry, name.as_str()).map_err(|e| match e {
            OciError::InvalidDocument { reason, .. } => {
                OciError::document(path.display().to_string(), reason)
            }
            other => other,
        })?;
    write_atomically(&path, |file| file.write_all(&merged))?;
    // Released when `directory` closes.
    drop(directory);
    Ok(())
}

/// The index JSON with every entry named `name` replaced by `entry`; other entries untouched.
fn merge_index_value(
    existing: Option<&[u8]>,
    entry: &Descriptor,
    name: &str,
) -> OciResult<Vec<u8>> {
    let mut index = match existing {
        Some(bytes) => {
            serde_json::from_slice::<Value>(bytes).map_err(|e| OciError::document(INDEX_FILE, e))?
        }
        None => json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [] }),
    };
    let object = index
        .as_object_mut()
        .ok_or_else(|| OciError::document(INDEX_FILE, "not a JSON object"))?;
    let manifests = object
        .entry("manifests")
        .or_insert_with(|| Value::Array(Vec::new()))
        .as_array_mut()
        .ok_or_else(|| OciError::document(INDEX_FILE, "manifests is not an array"))?;
    manifests
        .retain(|existing| existing["annotations"][REF_NAME_ANNOTATION].as_str() != Some(name));
    manifests.push(serde_json::to_value(entry).expect("a descriptor always serializes"));
    Ok(serde_json::to_vec_pretty(&index).expect("JSON values always serialize"))
}

fn file_header(size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    header
}

fn append_bytes<W: Write>(
    builder: &mut tar::Builder<W>,
    member: &str,
    bytes: &[u8],
) -> std::io::Result<()> {
    let mut header = file_header(bytes.len() as u64);
    builder.append_data(&mut header, member, bytes)
}

fn append_directory<W: Write>(builder: &mut tar::Builder<W>, member: &str) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(0);
    header.set_mode(0o755);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Directory);
    builder.append_data(&mut header, member, std::io::empty())
}
