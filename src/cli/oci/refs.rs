//! `oci-store list`, `tag SRC DST` and `rm --ref REF`: the named refs.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use crate::cli::error::{CliError, CliResult};
use crate::cli::{Context, RunCommand};
use crate::stores::oci::{OciStore, RefInfo};

/// Lists the refs: name, digest, media type, size and platforms.
#[derive(Debug, Args)]
pub struct ListCommand {}

impl RunCommand for ListCommand {
    fn run(self, context: &Context) -> CliResult<ExitCode> {
        let store = context.open_existing_store()?;
        let refs = OciStore::new(&store).list_refs()?;
        context
            .output()
            .value(&refs, |out| print_ref_table(out, &refs))?;
        Ok(ExitCode::SUCCESS)
    }
}

/// One aligned row per ref under a header; digests in full so they can be copied.
fn print_ref_table(out: &mut dyn Write, refs: &[RefInfo]) -> std::io::Result<()> {
    if refs.is_empty() {
        return writeln!(out, "no refs");
    }
    let now = crate::util::clock::now_unix_ms();
    let rows: Vec<[String; 6]> = refs
        .iter()
        .map(|info| {
            let platforms = if info.platforms.is_empty() {
                "-".to_string()
            } else {
                info.platforms.join(",")
            };
            [
                info.name.clone(),
                info.digest.to_string(),
                info.media_type.clone(),
                info.size.to_string(),
                platforms,
                info.last_used_unix_ms
                    .map_or_else(|| "-".to_string(), |at| ago(now - at)),
            ]
        })
        .collect();
    let header = [
        "NAME",
        "DIGEST",
        "MEDIA TYPE",
        "SIZE",
        "PLATFORMS",
        "LAST USED",
    ]
    .map(str::to_string);
    let mut widths = header.clone().map(|title| title.len());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let last = row.len() - 1;
        for (column, cell) in row.iter().enumerate() {
            if column == last {
                writeln!(out, "{cell}")?;
            } else {
                write!(out, "{cell:<width$}  ", width = widths[column])?;
            }
        }
    }
    Ok(())
}

/// Makes DST name what SRC names (a copy: removing one leaves the other); replaces DST. SRC may
/// also be the digest (or a unique prefix) of a manifest or index put with `blob put`: its
/// blobs must all be present, and from then on the ref keeps them.
#[derive(Debug, Args)]
pub struct TagCommand {
    /// Existing ref, or digest of a stored manifest or index
    source: String,
    /// New name (image-spec ref name grammar)
    destination: String,
}

#[derive(Debug, Serialize)]
struct Tagged<'a> {
    source: &'a str,
    destination: &'a str,
}

impl RunCommand for TagCommand {
    fn run(self, context: &Context) -> CliResult<ExitCode> {
        crate::stores::oci::RefName::parse(&self.destination).map_err(CliError::usage)?;
        let store = context.open_existing_store()?;
        OciStore::new(&store).tag(&self.source, &self.destination)?;
        let tagged = Tagged {
            source: &self.source,
            destination: &self.destination,
        };
        context.output().value(&tagged, |out| {
            writeln!(out, "tagged {} as {}", self.source, self.destination)
        })?;
        Ok(ExitCode::SUCCESS)
    }
}

/// Removes refs, all or nothing: a name that is not a ref refuses the whole call and removes
/// none. Their blobs stay until `oci-store gc` finds nothing else reaching them.
#[derive(Debug, Args)]
pub struct RemoveCommand {
    /// Refs to remove
    #[arg(value_name = "REF", required_unless_present_any = ["references", "from_file"])]
    names: Vec<String>,
    /// A ref to remove (repeat for several; the same as naming it without --ref)
    #[arg(long = "ref", value_name = "REF")]
    references: Vec<String>,
    /// Also remove the refs named in FILE, one per line (blank lines are skipped)
    #[arg(long, value_name = "FILE")]
    from_file: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct Removed<'a> {
    removed: &'a [String],
}

impl RunCommand for RemoveCommand {
    fn run(self, context: &Context) -> CliResult<ExitCode> {
        let mut names = self.names;
        names.extend(self.references);
        if let Some(path) = &self.from_file {
            let text = std::fs::read_to_string(path).map_err(|source| CliError::Input {
                context: "reading the refs to remove from",
                path: path.clone(),
                source,
            })?;
            names.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|line| !line.is_empty())
                    .map(str::to_string),
            );
        }
        let store = context.open_existing_store()?;
        let borrowed: Vec<&str> = names.iter().map(String::as_str).collect();
        OciStore::new(&store).remove_refs(&borrowed)?;
        context
            .output()
            .value(&Removed { removed: &names }, |out| {
                names
                    .iter()
                    .try_for_each(|name| writeln!(out, "removed {name}"))
            })?;
        Ok(ExitCode::SUCCESS)
    }
}

/// How long ago, roughly: "12s ago", "5m ago", "3h ago", "2d ago".
fn ago(millis: i64) -> String {
    let seconds = (millis / 1000).max(0);
    match seconds {
        0..=59 => format!("{seconds}s ago"),
        60..=3_599 => format!("{}m ago", seconds / 60),
        3_600..=86_399 => format!("{}h ago", seconds / 3_600),
        _ => format!("{}d ago", seconds / 86_400),
    }
}
