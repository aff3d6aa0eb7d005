//! The OCI layouts of a torture run. Layers are tars with every header field set (owner,
//! mode, time), as real tools write them, so `unpack` renders them, and configs list their
//! `diff_ids`, so unpack checks the uncompressed streams too. Every image has the same base
//! layer, so imports, removals and GCs of different images contend for one blob.

use std::io::Write;
use std::path::Path;

use oci_store::stores::oci::layout_builder::LayoutBuilder;
use oci_store::stores::oci::Descriptor;
use oci_store::traits::{Algorithm, Digest};
use serde_json::json;

use crate::oci::support::{signature, tar_layout};
use crate::Context;

/// A tar of `files` (path, content) and its gzip: `(uncompressed, gzip)`.
fn layer(files: &[(&str, &[u8])]) -> Result<(Vec<u8>, Vec<u8>), String> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, content) in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_500_000_000);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, path, *content)
            .context(format!("adding {path} to a layer"))?;
    }
    let tar = builder.into_inner().context("finishing a layer")?;
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gzip.write_all(&tar).context("compressing a layer")?;
    Ok((tar.clone(), gzip.finish().context("compressing a layer")?))
}

/// An image of the shared base layer and one layer of its own holding `name`; returns the
/// manifest and the gzip of its own layer.
fn image(builder: &mut LayoutBuilder, name: &str) -> Result<(Descriptor, Vec<u8>), String> {
    let doing = format!("building image {name}");
    let layers = [
        layer(&[("etc/os-release", b"NAME=torture\n")])?,
        layer(&[("app/name.txt", name.as_bytes())])?,
    ];
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|(tar, _)| Digest::of_bytes(Algorithm::Sha256, tar).to_string())
        .collect();
    let config = builder
        .json_blob(
            "application/vnd.oci.image.config.v1+json",
            &json!({
                "architecture": "amd64",
                "os": "linux",
                "rootfs": { "type": "layers", "diff_ids": diff_ids },
                "config": {}
            }),
        )
        .context(&doing)?;
    let mut descriptors = Vec::new();
    for (_, gzip) in &layers {
        descriptors.push(
            builder
                .blob("application/vnd.oci.image.layer.v1.tar+gzip", gzip)
                .context(&doing)?,
        );
    }
    let manifest = builder
        .json_blob(
            "application/vnd.oci.image.manifest.v1+json",
            &json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": config,
                "layers": descriptors,
            }),
        )
        .context(&doing)?;
    let [_, (_, own_layer)] = layers;
    Ok((manifest, own_layer))
}

/// A one-image layout at `dir` naming its image `ref_name`; with `signed`, it also holds a
/// referrer (a signature) of the image. Returns the image's manifest digest and the gzip of
/// the layer only this image has.
pub fn write_layout(dir: &Path, ref_name: &str, signed: bool) -> Result<(Digest, Vec<u8>), String> {
    let mut builder =
        LayoutBuilder::new(dir).context(format!("creating a layout in {}", dir.display()))?;
    let (image, own_layer) = image(&mut builder, ref_name)?;
    builder.add_ref(Some(ref_name), &image);
    if signed {
        let signed_by = signature(&mut builder, &image, &format!("{ref_name} is signed"))?;
        builder.add_ref(None, &signed_by);
    }
    builder
        .finish()
        .context(format!("writing {}", dir.display()))?;
    let digest = Digest::parse(image.digest().as_ref()).map_err(|e| e.to_string())?;
    Ok((digest, own_layer))
}

/// The shared layouts: `shared-<n>`, the second signed, the third an `oci-archive` (gzip).
/// Returns `(source, ref name)` of each.
pub fn shared_layouts(
    dir: &Path,
    count: usize,
) -> Result<Vec<(std::path::PathBuf, String)>, String> {
    (0..count)
        .map(|n| {
            let ref_name = format!("shared-{n}");
            let layout = dir.join(&ref_name);
            write_layout(&layout, &ref_name, n % 3 == 1)?;
            if n % 3 == 2 {
                let archive = dir.join(format!("{ref_name}.tar.gz"));
                tar_layout(&layout, &archive, true)?;
                Ok((archive, ref_name))
            } else {
                Ok((layout, ref_name))
            }
        })
        .collect()
}
