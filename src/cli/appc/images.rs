//! `appc import|get|ls|info|check|export|rm`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::parse_label;
use crate::cli::error::CliResult;
use crate::cli::output::{bytes_with_unit, unix_ms_as_rfc3339};
use crate::cli::{Context, RunCommand};
use crate::stores::appc::{AppcStore, ImageInfo, ImportOptions, SortKey};

/// Imports ACI files. The compression is found from the first bytes; the image ID is the
/// sha512 of the uncompressed tar, which is what the store keeps. An image refused by
/// validation names the rule it broke and leaves the store unchanged.
#[derive(Debug, Args)]
pub struct ImportCommand {
    /// Mark the images as the latest of their names (what `get` without a version prefers)
    #[arg(long)]
    latest: bool,

    /// ACI files to import
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

impl RunCommand for ImportCommand {
    fn run(self, context: &Context) -> CliResult<ExitCode> {
        let store = context.open_store()?;
        let appc = AppcStore::new(&store);
        let options = ImportOptions {
            latest: self.latest,
        };
        let mut reports = Vec::new();
        for file in &self.files {
            reports.push(appc.import_file(file, &options)?);
        }
        context.output().value(&reports, |out| {
            for report in &reports {
                let state = if report.already_present {
                    "already stored"
                } else {
                    "imported"
                };
                writeln!(
                    out,
                    "{state} {} {} ({}, {})",
                    report.id,
                    report.name,
                    report.compression,
                    bytes_with_unit(report.size)
                )?;
            }
            Ok(())
        })?;
        Ok(ExitCode::SUCCESS)
    }
}

/// Finds the image of NAME whose labels include every `--label`. Without a `version` label
/// an image imported as latest wins; ties go to the newest import.
#[derive(Debug, Args)]
pub struct GetCommand {
    /// The image name (an AC identifier, e.g. `example.com/app`)
    name: String,

    /// A label the image must have (repeatable)
    #[arg(long = "label", value_name = "NAME=VALUE", value_parser = parse_label)]
    labels: Vec<(String, String)>,

    /// The image is about to be run: record the use (GC ages images by last use)
    #[arg(long)]
    run: bool,
}

impl RunCommand for GetCommand {
    fn run(self, context: &Context) -> CliResult<ExitCode> {
        let store = context.open_existing_store()?;
        let appc = AppcStore::new(&store);
        let info = if self.run {
            appc.get_to_run(&self.name, &self.labels)?
        } else {
            appc.find(&self.name, &self.labels)?
        };
        context
            .output()
            .value(&info, |out| writeln!(out, "{}", info.id))?;
        Ok(ExitCode::SUCCESS)
    }
}

/// Lists the images.
#[derive(Debug, Args)]
pub struct ListCommand {
    /// Order: id, name, version, import-time, last-used or size
    #[arg(long, default_value = "name")]
    sort: SortKey,
}

impl RunCommand for ListCommand {
    fn run(self, context: &Context) -> CliResult<ExitCode> {
        let store = context.open_existing_store()?;
        let images = AppcStore::new(&store).list(self.sort)?;
        if !context.output().is_json() {
            context.output().value(&(), |out| {
                writeln!(
                    out,
                    "{:<24}  {:<32}  {:<12}  {:<24}  {:<24}  SIZE",
                    "ID", "NAME", "VERSION", "IMPORTED", "LAST USED"
                )
            })?;
        }
        context
            .output()
            .list(images.into_iter().map(Ok), print_row)?;
        Ok(ExitCode::SUCCESS)
    }
}

fn print_row(out: &mut dyn Write, info: &ImageInfo) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<24}  {:<32}  {:<12}  {:<24}  {:<24}  {}",
        &info.id[..info.id.len().min(24)],
        info.name,
        info.version().unwrap_or("-"),
        unix_ms_as_rfc3339(info.import_time_ms),
        info.last_used_ms
            .map_or_else(|| "never".to_string(), unix_ms_as_rfc3339),
        info.size
    )
}

/// Shows an image's info: name, labels, import time, last used, latest flag, sizes and the
/// manifest. KEY is an ID, an ID prefix (`sha512-` and at least 2 hex digits) or a name.
#[derive(Debug, Args)]
pub struct InfoCommand {
    /// The image: ID (`sha512-…`), ID prefix (`sha512-` and 2 hex digits, or 4 bare), or name
    key: String,
}

impl RunCommand for InfoCommand {
    fn run(self, context: &Context) -> CliResult<ExitCode> {
        let store = context.open_existing_store()?;
        let info = AppcStore::new(&store).info(&self.key)?;
        context.output().value(&info, |out| {
            writeln!(out, "id: {}", info.id)?;
            writeln!(out, "name: {}", info.name)?;
            for (k, v) in &info.labels {
                writeln!(out, "label {k}: {v}")?;
            }
            writeln!(out, "imported: {}", unix_ms_as_rfc3339(info.import_time_ms))?;
            let used = info.last_used_ms.map(unix_ms_as_rfc3339);
            writeln!(out, "last used: {}", used.as_deref().unwrap_or("never"))?;
            writeln!(out, "latest: {}", info.latest)?;
            writeln!(out, "size: {}", bytes_with_unit(info.size))?;
            if let Some(size) = info.rendered_tree_size {
                writeln!(out, "rendered tree: {}", bytes_with_unit(size))?;
            }
            writeln!(out, "manifest: {}", info.manifest)
        })?;
        Ok(ExitCode::SUCCESS)
    }
}

/// Resolves every dependency of an image (by image ID, or by name and labels), recursively;
/// exits 1 naming each one missing.
#[derive(Debug, Args)]
pub struct CheckCommand {
    /// The image: ID (`sha512-…`), ID prefix (`sha512-` and 2 hex digits, or 4 bare), or name
    key: String,
}

impl RunCommand for CheckCommand {
    fn run(self, context: &Context) -> CliResult<ExitCode> {
        let store = context.open_existing_store()?;
        let report = AppcStore::new(&store).check(&self.key)?;
        context.output().value(&report, |out| {
            for id in &report.resolved {
                writeln!(out, "present {id}")?;
            }
            for missing in &report.missing {
                writeln!(out, "missing {missing}")?;
            }
            if report.is_complete() {
                writeln!(out, "{}: every dependency is stored", report.image)
            } else {
                writeln!(
                    out,
                    "{}: {} dependencies missing",
                    report.image,
                    report.missing.len()
                )
            }
        })?;
        Ok(if report.is_complete() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }
}

/// Writes an image as an ACI file: the stored tar (the same image ID), hashed as it is
/// copied; optionally gzip-compressed.
#[derive(Debug, Args)]
pub struct ExportCommand {
    /// The image: ID (`sha512-…`), ID prefix (`sha512-` and 2 hex digits, or 4 bare), or name
    key: String,
    /// The ACI file to write
    file: PathBuf,
    /// Compress with gzip
    #[arg(long)]
    gzip: bool,
}

impl RunCommand for ExportCommand {
    fn run(self, context: &Context) -> CliResult<ExitCode> {
        let store = context.open_existing_store()?;
        let report = AppcStore::new(&store).export(&self.key, &self.file, self.gzip)?;
        context.output().value(&report, |out| {
            writeln!(out, "exported {} to {}", report.id, report.path.display())
        })?;
        Ok(ExitCode::SUCCESS)
    }
}

/// Removes an image, its remote records and rendered trees. Its blob stays when another
/// holder (the OCI flavour, a `blob put`) keeps it.
#[derive(Debug, Args)]
pub struct RemoveCommand {
    #[arg(required = true)]
    /// The images: each an ID, ID prefix or name
    keys: Vec<String>,
}

impl RunCommand for RemoveCommand {
    fn run(self, context: &Context) -> CliResult<ExitCode> {
        let store = context.open_existing_store()?;
        let appc = AppcStore::new(&store);
        let mut reports = Vec::new();
        for key in &self.keys {
            reports.push(appc.remove(key)?);
        }
        context.output().value(&reports, |out| {
            for report in &reports {
                let what = if report.deleted {
                    "removed"
                } else {
                    "released (another holder keeps the blob)"
                };
                writeln!(
                    out,
                    "{what} {} {}",
                    report.id,
                    report.name.as_deref().unwrap_or("")
                )?;
            }
            Ok(())
        })?;
        Ok(ExitCode::SUCCESS)
    }
}

/// Renders an image and its dependencies into a root file system (upper image first and
/// winning, `pathWhitelist` honoured), cached in the store and reused; with DIR, copies it
/// there (DIR must not exist or be empty) and verifies the copy's hash.
#[derive(Debug, Args)]
pub struct RenderCommand {
    /// The image: ID (`sha512-…`), ID prefix (`sha512-` and 2 hex digits, or 4 bare), or name
    key: String,
    /// Also copy the tree here (must not exist, or be empty), its copy's hash verified
    dir: Option<PathBuf>,
}

impl RunCommand for RenderCommand {
    fn run(self, context: &Context) -> CliResult<ExitCode> {
        let store = context.open_existing_store()?;
        let progress = context.progress();
        let report = AppcStore::new(&store)
            .with_progress(&*progress)
            .render(&self.key, self.dir.as_deref())?;
        context.output().value(&report, |out| {
            let how = if report.tree.reused {
                "reused"
            } else {
                "rendered"
            };
            writeln!(
                out,
                "{how} {} ({}) tree {}",
                report.image,
                crate::cli::oci::plural(report.images.len() as u64, "image", "images"),
                report.tree.hash
            )?;
            writeln!(
                out,
                "tree: {} ({})",
                report.tree.rootfs.display(),
                bytes_with_unit(report.tree.size)
            )?;
            if let Some(target) = &report.target {
                writeln!(out, "copied to {} (hash verified)", target.display())?;
            }
            Ok(())
        })?;
        Ok(ExitCode::SUCCESS)
    }
}

/// Recomputes the content hash of an image's rendered tree and compares it with the one
/// recorded when it was rendered; exits 1 when they differ.
#[derive(Debug, Args)]
pub struct VerifyTreeCommand {
    /// The image: ID (`sha512-…`), ID prefix (`sha512-` and 2 hex digits, or 4 bare), or name
    key: String,
}

impl RunCommand for VerifyTreeCommand {
    fn run(self, context: &Context) -> CliResult<ExitCode> {
        let store = context.open_existing_store()?;
        let (tree, summary) = AppcStore::new(&store).verify_tree(&self.key)?;
        context.output().value(&summary, |out| {
            writeln!(
                out,
                "{} verifies: {} ({} entries, {})",
                tree.rootfs.display(),
                summary.hash,
                summary.entries,
                bytes_with_unit(summary.size)
            )
        })?;
        Ok(ExitCode::SUCCESS)
    }
}
