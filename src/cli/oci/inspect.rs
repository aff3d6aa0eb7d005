//! `oci-store inspect REF|DIGEST`: what an image is.

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use crate::cli::error::CliResult;
use crate::cli::output::bytes_with_unit;
use crate::cli::{Context, RunCommand};
use crate::stores::oci::{
    BlobSummary, ImageConfigSummary, Inspection, ManifestSummary, Node, OciStore,
};

/// Version of `inspect --json`'s document.
pub const SCHEMA: &str = "oci-store.inspect.v1";

/// Shows a ref's descriptor, its manifest (for an index, every platform's), the image
/// config's summary (platform, created, entrypoint and cmd, working dir, user, env, labels,
/// ports, history) and the layers with their sizes and media types. Reads only the small
/// documents; layers are not read.
#[derive(Debug, Args)]
pub struct InspectCommand {
    /// A ref, or the digest (or unique prefix) of a stored manifest or index
    #[arg(value_name = "REF|DIGEST")]
    reference: String,
}

#[derive(Serialize)]
struct InspectJson<'a> {
    schema: &'static str,
    #[serde(flatten)]
    inspection: &'a Inspection,
}

impl RunCommand for InspectCommand {
    fn run(self, context: &Context) -> CliResult<ExitCode> {
        let store = context.open_existing_store()?;
        let inspection = OciStore::new(&store).inspect(&self.reference)?;
        let json = InspectJson {
            schema: SCHEMA,
            inspection: &inspection,
        };
        context
            .output()
            .value(&json, |out| print_inspection(out, &inspection))?;
        Ok(ExitCode::SUCCESS)
    }
}

fn print_inspection(out: &mut dyn Write, inspection: &Inspection) -> io::Result<()> {
    if let Some(name) = &inspection.name {
        writeln!(out, "ref:         {name}")?;
    }
    let descriptor = &inspection.descriptor;
    writeln!(
        out,
        "descriptor:  {} {} ({})",
        descriptor.media_type(),
        descriptor.digest(),
        bytes_with_unit(descriptor.size())
    )?;
    if let Some(at) = inspection.last_used_unix_ms {
        let seconds = (crate::util::clock::now_unix_ms() - at).max(0) / 1000;
        writeln!(out, "last used:   {seconds} s ago")?;
    }
    print_node(out, &inspection.target, "")
}

fn print_node(out: &mut dyn Write, node: &Node, indent: &str) -> io::Result<()> {
    match node {
        Node::Index(index) => {
            writeln!(
                out,
                "{indent}index:       {} manifests",
                index.manifests.len()
            )?;
            print_map(out, indent, "annotations:", &index.annotations)?;
            for entry in &index.manifests {
                let platform = entry.platform.as_deref().unwrap_or("(no platform)");
                writeln!(
                    out,
                    "{indent}- platform {platform}: {} {}",
                    entry.descriptor.media_type(),
                    entry.descriptor.digest()
                )?;
                print_node(out, &entry.target, &format!("{indent}  "))?;
            }
            Ok(())
        }
        Node::Manifest(manifest) => print_manifest(out, manifest, indent),
        Node::Absent { digest, .. } => {
            writeln!(out, "{indent}not in the store: {digest}")
        }
        Node::Blob {
            digest,
            media_type,
            size,
        } => writeln!(
            out,
            "{indent}blob:        {digest} {media_type} ({})",
            bytes_with_unit(*size)
        ),
    }
}

fn print_manifest(out: &mut dyn Write, manifest: &ManifestSummary, indent: &str) -> io::Result<()> {
    writeln!(
        out,
        "{indent}manifest:    {} ({})",
        manifest.digest,
        bytes_with_unit(manifest.size)
    )?;
    if let Some(artifact_type) = &manifest.artifact_type {
        writeln!(out, "{indent}artifact:    {artifact_type}")?;
    }
    writeln!(
        out,
        "{indent}config:      {} {}{}",
        manifest.config.digest,
        manifest.config.media_type,
        absent_note(&manifest.config)
    )?;
    if let Some(image) = &manifest.image {
        print_image(out, image, indent)?;
    }
    if let Some(subject) = &manifest.subject {
        writeln!(out, "{indent}subject:     {}", subject.digest())?;
    }
    print_map(out, indent, "annotations:", &manifest.annotations)?;
    writeln!(
        out,
        "{indent}layers:      {} ({})",
        manifest.layers.len(),
        bytes_with_unit(manifest.layer_bytes)
    )?;
    for layer in &manifest.layers {
        writeln!(
            out,
            "{indent}  {} {} {}{}",
            layer.digest,
            layer.media_type,
            bytes_with_unit(layer.size),
            absent_note(layer)
        )?;
    }
    Ok(())
}

fn absent_note(blob: &BlobSummary) -> &'static str {
    if blob.present {
        ""
    } else {
        " (not in the store)"
    }
}

fn print_image(out: &mut dyn Write, image: &ImageConfigSummary, indent: &str) -> io::Result<()> {
    let platform = [&image.os, &image.architecture, &image.variant]
        .iter()
        .filter_map(|part| part.as_deref())
        .collect::<Vec<_>>()
        .join("/");
    let optional = [
        ("platform:", Some(platform).filter(|p| !p.is_empty())),
        ("os version:", image.os_version.clone()),
        ("created:", image.created.clone()),
        ("author:", image.author.clone()),
        ("entrypoint:", image.entrypoint.as_ref().map(json_words)),
        ("cmd:", image.cmd.as_ref().map(json_words)),
        ("working dir:", image.working_dir.clone()),
        ("user:", image.user.clone()),
        ("stop signal:", image.stop_signal.clone()),
    ];
    for (label, value) in optional {
        if let Some(value) = value {
            writeln!(out, "{indent}{label:<12} {value}")?;
        }
    }
    print_list(out, indent, "env:", &image.env)?;
    let labels = image
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>();
    print_list(out, indent, "labels:", &labels)?;
    print_list(out, indent, "ports:", &image.exposed_ports)?;
    print_list(out, indent, "volumes:", &image.volumes)?;
    if !image.history.is_empty() {
        writeln!(out, "{indent}history:     {} steps", image.history.len())?;
        for step in &image.history {
            let created = step.created.as_deref().unwrap_or("-");
            let what = step
                .created_by
                .as_deref()
                .or(step.comment.as_deref())
                .unwrap_or("");
            let empty = if step.empty_layer { " (no layer)" } else { "" };
            writeln!(out, "{indent}  {created} {what}{empty}")?;
        }
    }
    Ok(())
}

fn json_words(words: &Vec<String>) -> String {
    serde_json::to_string(words).unwrap_or_default()
}

fn print_list(out: &mut dyn Write, indent: &str, label: &str, items: &[String]) -> io::Result<()> {
    for (i, item) in items.iter().enumerate() {
        let label = if i == 0 { label } else { "" };
        writeln!(out, "{indent}{label:<12} {item}")?;
    }
    Ok(())
}

fn print_map(
    out: &mut dyn Write,
    indent: &str,
    label: &str,
    map: &std::collections::BTreeMap<String, String>,
) -> io::Result<()> {
    let items: Vec<String> = map.iter().map(|(k, v)| format!("{k}={v}")).collect();
    print_list(out, indent, label, &items)
}
