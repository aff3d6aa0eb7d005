//! `oci-store blob …`: store, read, describe, list, resolve and delete blobs.

use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde::Serialize;

use super::error::{CliError, CliResult};
use super::output::unix_ms_as_rfc3339;
use super::{Context, RunCommand};
use crate::store::{Holder, Holders, Release, StoreError, WriteOptions};
use crate::traits::{BlobRecord, Digest, KvKey};

#[derive(Debug, Subcommand)]
pub enum BlobCommand {
    /// Store a file, streaming it; prints its digest
    Put(PutArgs),
    /// Write a blob's content to standard output (raw bytes, also with --json)
    #[command(visible_alias = "cat")]
    Get {
        /// Digest or unique digest prefix (sha256:ab12, sha256-ab12, ab12)
        reference: String,
    },
    /// Show a blob's record, extra data types and the key/value entries referencing it
    Info {
        /// Digest or unique digest prefix
        reference: String,
    },
    /// List blobs, one line each: digest size media-type
    #[command(visible_alias = "list")]
    Ls {
        /// Only blobs of this media type
        #[arg(long, value_name = "TYPE")]
        media_type: Option<String>,
    },
    /// Print the full digest a prefix stands for; fails listing candidates when ambiguous
    Resolve {
        /// Digest prefix of at least 4 hex characters, with or without `sha256:`/`sha256-`
        prefix: String,
    },
    /// Let go of a blob you stored (blob put): it is deleted unless an image or a key/value
    /// entry still holds it, and then the command says what does
    #[command(visible_alias = "remove")]
    Rm {
        /// Digest or unique digest prefix
        reference: String,
        /// Delete the blob whatever holds it, with its extra data and every key/value entry
        /// referencing it (images that reach it become incomplete)
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Args)]
pub struct PutArgs {
    /// File to store; `-` reads standard input
    file: PathBuf,

    /// Media type recorded in the index [default: application/octet-stream]
    #[arg(long, value_name = "TYPE")]
    media_type: Option<String>,

    /// Expected digest; content that hashes otherwise is refused and nothing is stored
    #[arg(long, value_name = "DIGEST")]
    digest: Option<Digest>,

    /// Expected size in bytes; other content is refused and nothing is stored
    #[arg(long, value_name = "BYTES")]
    size: Option<u64>,
}

impl RunCommand for BlobCommand {
    fn run(self, context: &Context) -> CliResult<ExitCode> {
        match self {
            BlobCommand::Put(args) => put(context, args)?,
            BlobCommand::Get { reference } => get(context, &reference)?,
            BlobCommand::Info { reference } => info(context, &reference)?,
            BlobCommand::Ls { media_type } => list(context, media_type.as_deref())?,
            BlobCommand::Resolve { prefix } => resolve(context, &prefix)?,
            BlobCommand::Rm { reference, force } => remove(context, &reference, force)?,
        }
        Ok(ExitCode::SUCCESS)
    }
}

fn put(context: &Context, args: PutArgs) -> CliResult<()> {
    let input: Box<dyn Read> = if args.file.as_os_str() == "-" {
        Box::new(io::stdin().lock())
    } else {
        Box::new(File::open(&args.file).map_err(|source| CliError::Input {
            context: "opening",
            path: args.file.clone(),
            source,
        })?)
    };
    let options = WriteOptions {
        media_type: args.media_type,
        expected_digest: args.digest,
        expected_size: args.size,
        ..WriteOptions::default()
    };
    let store = context.open_store()?;
    let record = store.write(input, &options)?;
    context
        .output()
        .value(&record, |out| writeln!(out, "{}", record.digest))
}

fn get(context: &Context, reference: &str) -> CliResult<()> {
    let store = context.open_existing_store()?;
    let digest = store.resolve(reference)?;
    copy_blob_to_stdout(context, &store, &digest)
}

/// Streams a stored blob to stdout. Content gone while the index still lists the blob is a
/// damaged store, not an absent blob: said as such (fsck repairs it).
pub(crate) fn copy_blob_to_stdout(
    context: &Context,
    store: &crate::store::Store,
    digest: &Digest,
) -> CliResult<()> {
    let mut reader = match store.read(digest) {
        Ok(reader) => reader,
        Err(StoreError::NotFound(_)) if store.info(digest).is_ok() => {
            return Err(CliError::ContentMissing {
                digest: digest.clone(),
            })
        }
        Err(error) => return Err(error.into()),
    };
    context.output().content(&mut reader, digest.as_str())?;
    Ok(())
}

/// `blob info`: the record with what hangs off the blob.
#[derive(Debug, Serialize)]
struct BlobInfo {
    #[serde(flatten)]
    record: BlobRecord,
    /// `created_unix_ms` as RFC 3339, UTC.
    created: String,
    extra_data_types: Vec<String>,
    referenced_by: Vec<KvKey>,
}

fn info(context: &Context, reference: &str) -> CliResult<()> {
    let store = context.open_existing_store()?;
    let digest = store.resolve(reference)?;
    let record = store.info(&digest)?;
    let info = BlobInfo {
        created: unix_ms_as_rfc3339(record.created_unix_ms),
        extra_data_types: store.extra_types(&digest)?,
        referenced_by: store.data_referencing(&digest)?,
        record,
    };
    context.output().value(&info, |out| {
        writeln!(out, "digest:        {}", info.record.digest)?;
        writeln!(out, "size:          {}", info.record.size)?;
        writeln!(out, "media type:    {}", info.record.media_type)?;
        writeln!(out, "created:       {}", info.created)?;
        writeln!(out, "extra data:    {}", info.extra_data_types.join(", "))?;
        let references: Vec<String> = info
            .referenced_by
            .iter()
            .map(|key| format!("{}/{}", key.data_type, key.key))
            .collect();
        writeln!(out, "referenced by: {}", references.join(", "))
    })
}

fn list(context: &Context, media_type: Option<&str>) -> CliResult<()> {
    let store = context.open_existing_store()?;
    let print = |out: &mut dyn io::Write, record: &BlobRecord| {
        writeln!(
            out,
            "{} {} {}",
            record.digest, record.size, record.media_type
        )
    };
    match media_type {
        Some(media_type) => {
            let records = store.list(Some(media_type))?;
            context.output().list(records.into_iter().map(Ok), print)
        }
        // Page by page, so a large store is printed as it is read.
        None => context
            .output()
            .list(store.records().map(|r| r.map_err(CliError::from)), print),
    }
}

/// `blob resolve` and `blob rm` in JSON.
#[derive(Debug, Serialize)]
struct DigestResult {
    digest: Digest,
    #[serde(skip_serializing_if = "Option::is_none")]
    removed: Option<bool>,
    /// What still holds a blob `blob rm` kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    held_by: Option<Holders>,
}

fn resolve(context: &Context, prefix: &str) -> CliResult<()> {
    // A malformed prefix is the user's mistake whatever the store holds: say so first.
    crate::traits::DigestPrefix::parse(prefix)?;
    let store = context.open_existing_store()?;
    let digest = store.resolve(prefix)?;
    let result = DigestResult {
        digest,
        removed: None,
        held_by: None,
    };
    context
        .output()
        .value(&result, |out| writeln!(out, "{}", result.digest))
}

/// `blob rm` releases the base store's hold (what `blob put` recorded): the blob goes if that
/// was its last holder, else it stays and the command names its holders. `--force` deletes it
/// with everything attached, whatever holds it.
fn remove(context: &Context, reference: &str, force: bool) -> CliResult<()> {
    let store = context.open_existing_store()?;
    let digest = store.resolve(reference)?;
    let held_by = if force {
        // False only when another process deleted it since the resolve.
        if !store.delete(&digest)? {
            return Err(StoreError::NotFound(reference.to_string()).into());
        }
        None
    } else {
        match store.release(&digest, &Holder::BASE)? {
            Release::Deleted => None,
            Release::Kept(holders) => Some(holders),
            Release::Absent => return Err(StoreError::NotFound(reference.to_string()).into()),
        }
    };
    let result = DigestResult {
        digest,
        removed: Some(held_by.is_none()),
        held_by,
    };
    context
        .output()
        .value(&result, |out| match &result.held_by {
            None => writeln!(out, "removed {}", result.digest),
            Some(holders) => writeln!(
                out,
                "kept {}: still held by {holders} (blob rm --force deletes it anyway)",
                result.digest
            ),
        })
}
