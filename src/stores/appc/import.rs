//! Importing ACIs. The file is read once: decompressed by its magic bytes and teed into a
//! sha512-hashing store writer while its entries are checked from the same stream. Only a
//! valid image is committed, so a refused one leaves the store as it was. The import is a
//! base-store operation ([`crate::store::Operation`]): the image blob is committed under the
//! operation's hold, then its info and the `appc` owner mark land in one step, so a crash
//! leaves either the whole image or nothing the next GC does not clear.
//!
//! "Work once" for the same image arriving several times (other compressions, other
//! processes): the image ID is only known once the tar has been hashed, so each arrival reads
//! and hashes its own input (there is no way around that) into its own staging file; the
//! commit deduplicates under the blob's digest lock (one copy of the content), and the image's
//! info is written by whichever importer takes the image lock first; the others find it and
//! keep it (so the first import time stands).

use std::fs::File;
use std::io::Read;
use std::path::Path;

use serde::Serialize;

use super::archive::{
    check_entries, decompressed, ArchiveFailure, Compression, Tee, TAR_HEADER_LIMIT_RULE,
};
use super::error::{AppcError, AppcResult};
use super::info::ImageInfo;
use super::manifest::Violation;
use super::{AppcStore, ACI_MEDIA_TYPE, HOLDER, INFO_TYPE};
use crate::store::{OperationCommit, WriteOptions};
use crate::traits::{Algorithm, ExtraOp};
use crate::util::clock::now_unix_ms;
use crate::util::io_context::{IoContext, IoResultExt};

/// How [`AppcStore::import_file`] and [`AppcStore::import_reader`] import an ACI.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Mark the image as the latest of its name (what a fetch without a version asks for).
    pub latest: bool,
}

/// What an import did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ImportReport {
    /// Where the ACI came from: the file's path or the name given to the reader.
    pub source: String,
    /// The image ID (`sha512-` and the hex sha512 of the uncompressed tar).
    pub id: String,
    /// The image name from its manifest.
    pub name: String,
    /// The compression the ACI had (`none`, `gzip`, `bzip2` or `xz`).
    pub compression: Compression,
    /// Bytes of the uncompressed tar.
    pub size: u64,
    /// The image was in the store already (its info and import time were kept).
    pub already_present: bool,
}

impl AppcStore<'_> {
    /// Imports an ACI file (plain tar, gzip, bzip2 or xz).
    pub fn import_file(&self, path: &Path, options: &ImportOptions) -> AppcResult<ImportReport> {
        // A FIFO or device where a file belongs would block or never end: refuse it before
        // opening.
        let metadata = std::fs::metadata(path).io_context("reading the ACI", path)?;
        if !metadata.is_file() {
            return Err(AppcError::InvalidImage {
                source_name: path.display().to_string(),
                rule: "archive.regular-file",
                detail: "an ACI must be a regular file".to_string(),
            });
        }
        let file = File::open(path).io_context("opening the ACI", path)?;
        self.import_reader(file, &path.display().to_string(), options)
    }

    /// Imports an ACI from a stream; `source_name` names it in messages.
    pub fn import_reader(
        &self,
        input: impl Read,
        source_name: &str,
        options: &ImportOptions,
    ) -> AppcResult<ImportReport> {
        let invalid = |violation: Violation| AppcError::InvalidImage {
            source_name: source_name.to_string(),
            rule: violation.rule,
            detail: violation.detail,
        };
        let corrupt = |error: std::io::Error| AppcError::InvalidImage {
            source_name: source_name.to_string(),
            rule: "archive.corrupt",
            detail: format!("not a readable (compressed) tar: {error}"),
        };
        let _mutation = self.mutation_lock()?;
        let writer = self.store.writer(&WriteOptions {
            algorithm: Some(Algorithm::Sha512),
            ..WriteOptions {
                media_type: Some(ACI_MEDIA_TYPE.to_string()),
                ..WriteOptions::default()
            }
            .clone()
        })?;
        let (compression, tar_stream) = decompressed(input).map_err(corrupt)?;
        let mut tee = Tee::new(tar_stream, writer);
        let facts = match check_entries(&mut tee) {
            Ok(facts) => facts,
            Err(_) if tee.sink_error.is_some() => {
                let error = tee.sink_error.take().expect("checked");
                return Err(AppcError::from(IoContext::new(
                    "staging the image in the store",
                    "ingest",
                    error,
                )));
            }
            Err(ArchiveFailure::Violation(violation)) => return Err(invalid(violation)),
            Err(ArchiveFailure::Read(error)) => return Err(corrupt(error)),
            Err(ArchiveFailure::HeaderLimit(refused)) => {
                return Err(AppcError::InvalidImage {
                    source_name: source_name.to_string(),
                    rule: TAR_HEADER_LIMIT_RULE,
                    detail: refused.to_string(),
                })
            }
        };
        let (manifest, raw_manifest) = facts.manifest;
        let writer = match tee.finish() {
            Ok(writer) => writer,
            Err(error) => return Err(corrupt(error)),
        };
        // Valid: recorded as an operation only now (a refusal writes nothing at all), then the
        // content is committed (deduplicated) under the operation's hold.
        let mut operation = self.store.begin_operation(&HOLDER)?;
        let record = operation.commit_staged(vec![writer.stage()?])?.remove(0);
        crate::crash_point!("appc.import.after-commit");
        let digest = record.digest;
        let _image = self.image_lock(&digest)?;
        let existing = self.read_info(&digest)?;
        let already_present = existing.is_some();
        let mut write_info = true;
        let info = match existing {
            Some(mut info) => {
                write_info = options.latest && !info.latest;
                info.latest |= options.latest;
                info
            }
            None => ImageInfo {
                id: digest.dashed(),
                name: manifest.name.clone(),
                labels: manifest.labels_map(),
                import_time_ms: now_unix_ms(),
                latest: options.latest,
                size: record.size,
                rendered_tree_size: None,
                manifest: raw_manifest,
                last_used_ms: None,
            },
        };
        // The info, when new or changed, and the `appc` mark in one step.
        let extra: Vec<ExtraOp> = write_info
            .then(|| ExtraOp::Set {
                digest: digest.clone(),
                data_type: INFO_TYPE.to_string(),
                value: info.stored_bytes(),
            })
            .into_iter()
            .collect();
        operation.commit(OperationCommit {
            keep: std::slice::from_ref(&digest),
            data: &[],
            extra: &extra,
        })?;
        crate::crash_point!("appc.import.after-info");
        Ok(ImportReport {
            source: source_name.to_string(),
            id: info.id,
            name: info.name,
            compression,
            size: record.size,
            already_present,
        })
    }
}
