//! Helpers of the OCI suite: layouts built with the library's own [`LayoutBuilder`], what a
//! layout directory holds, and what the store holds. Each returns `Err(message)` rather than
//! panicking, like the tests that call them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use oci_store::stores::oci::layout_builder::LayoutBuilder;
use oci_store::stores::oci::{Descriptor, ImportOptions, ImportReport, OciStore};
use oci_store::{Digest, Store};
use serde_json::json;

use crate::Context;

/// The OCI flavour over the store the matrix opens.
pub type Oci<'s> = OciStore<'s>;

/// A temporary directory for layouts and archives, outside the store directory.
pub fn scratch() -> Result<tempfile::TempDir, String> {
    tempfile::Builder::new()
        .prefix("oci-store-conformance-layouts-")
        .tempdir()
        .context("creating a scratch directory")
}

pub fn path_in(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

/// Imports every named ref of a layout.
pub fn import_all(oci: &Oci<'_>, path: &Path) -> Result<ImportReport, String> {
    oci.import_layout(
        path,
        &ImportOptions {
            all: true,
            ..Default::default()
        },
    )
    .context(format!("importing every ref of {}", path.display()))
}

/// Imports the one entry of a layout under its own name.
pub fn import_default(oci: &Oci<'_>, path: &Path) -> Result<ImportReport, String> {
    oci.import_layout(path, &ImportOptions::default())
        .context(format!("importing {}", path.display()))
}

/// Every file under `<layout>/blobs`, by relative path, with its content.
pub fn blob_files(layout: &Path) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let mut files = BTreeMap::new();
    let root = layout.join("blobs");
    collect_files(&root, &root, &mut files)?;
    Ok(files)
}

fn collect_files(
    root: &Path,
    dir: &Path,
    files: &mut BTreeMap<String, Vec<u8>>,
) -> Result<(), String> {
    for entry in std::fs::read_dir(dir).context(format!("listing {}", dir.display()))? {
        let path = entry.context(format!("listing {}", dir.display()))?.path();
        if path.is_dir() {
            collect_files(root, &path, files)?;
        } else {
            let name = path
                .strip_prefix(root)
                .map_err(|e| e.to_string())?
                .display()
                .to_string();
            let bytes = std::fs::read(&path).context(format!("reading {}", path.display()))?;
            files.insert(name, bytes);
        }
    }
    Ok(())
}

/// Digests of every blob file in a v1.x layout (`blobs/<alg>/<hex>`).
pub fn layout_digests(layout: &Path) -> Result<BTreeSet<Digest>, String> {
    blob_files(layout)?
        .keys()
        .map(|name| Digest::parse(&name.replace('/', ":")).context(format!("blob file {name}")))
        .collect()
}

/// The `manifests` of a layout's `index.json`.
pub fn index_entries(layout: &Path) -> Result<Vec<serde_json::Value>, String> {
    let path = layout.join("index.json");
    let bytes = std::fs::read(&path).context(format!("reading {}", path.display()))?;
    let index: serde_json::Value =
        serde_json::from_slice(&bytes).context(format!("parsing {}", path.display()))?;
    index["manifests"]
        .as_array()
        .cloned()
        .ok_or_else(|| format!("{} has no manifests array: {index}", path.display()))
}

/// The ref names in a layout's `index.json`, sorted.
pub fn ref_names_in_layout(layout: &Path) -> Result<Vec<String>, String> {
    let mut names: Vec<String> = index_entries(layout)?
        .iter()
        .filter_map(|e| e["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .map(str::to_string)
        .collect();
    names.sort();
    Ok(names)
}

/// Tars a layout directory (optionally gzip) into `out`, as `oci-archive` does.
pub fn tar_layout(layout: &Path, out: &Path, gzip: bool) -> Result<(), String> {
    let doing = format!("archiving {} into {}", layout.display(), out.display());
    let file = std::fs::File::create(out).context(&doing)?;
    if gzip {
        let encoder = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        let mut builder = tar::Builder::new(encoder);
        builder.append_dir_all(".", layout).context(&doing)?;
        builder
            .into_inner()
            .context(&doing)?
            .finish()
            .context(&doing)?;
    } else {
        let mut builder = tar::Builder::new(file);
        builder.append_dir_all(".", layout).context(&doing)?;
        builder.finish().context(&doing)?;
    }
    Ok(())
}

/// A small gzip layer holding one file named `name` (content: the name): unique per name.
pub fn layer(name: &str) -> Result<Vec<u8>, String> {
    LayoutBuilder::layer_tar_gz(&[(name, name.as_bytes())]).context(format!("building {name}"))
}

pub fn new_builder(dir: &Path) -> Result<LayoutBuilder, String> {
    LayoutBuilder::new(dir).context(format!("creating a layout in {}", dir.display()))
}

pub fn finish(builder: &LayoutBuilder) -> Result<(), String> {
    builder
        .finish()
        .context(format!("writing {}", builder.root().display()))
}

/// A one-image layout named `name` with two small layers (the library's demo image).
pub fn simple_image(dir: &Path, name: &str) -> Result<Descriptor, String> {
    LayoutBuilder::simple_image(dir, name)
        .context(format!("building image {name} in {}", dir.display()))
}

/// A layout with images named by `names`, each with a unique layer and a shared base layer
/// (and the same config: same platform, no diff ids).
pub fn layout_with_refs(dir: &Path, names: &[&str]) -> Result<Vec<Descriptor>, String> {
    let mut builder = new_builder(dir)?;
    let base = layer("base")?;
    let mut images = Vec::new();
    for name in names {
        let image = builder
            .image("linux", "amd64", &[base.clone(), layer(name)?])
            .context(format!("building image {name}"))?;
        builder.add_ref(Some(name), &image);
        images.push(image);
    }
    finish(&builder)?;
    Ok(images)
}

pub const SIGNATURE_TYPE: &str = "application/vnd.example.signature";

/// An OCI manifest referring to `subject` (a signature-like artifact with an empty config).
pub fn signature(
    builder: &mut LayoutBuilder,
    subject: &Descriptor,
    payload: &str,
) -> Result<Descriptor, String> {
    let doing = "building a signature";
    let empty = builder
        .blob("application/vnd.oci.empty.v1+json", b"{}")
        .context(doing)?;
    let blob = builder
        .blob(SIGNATURE_TYPE, payload.as_bytes())
        .context(doing)?;
    builder
        .json_blob(
            "application/vnd.oci.image.manifest.v1+json",
            &json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "artifactType": SIGNATURE_TYPE,
                "config": empty,
                "layers": [blob],
                "subject": subject,
            }),
        )
        .context(doing)
}

pub fn digest_string(descriptor: &Descriptor) -> String {
    descriptor.digest().to_string()
}

pub fn digest(descriptor: &Descriptor) -> Result<Digest, String> {
    let text = descriptor.digest().to_string();
    Digest::parse(&text).context(format!("descriptor digest {text}"))
}

/// The digest of layer `position` of the manifest `image` in `layout`.
pub fn layer_digest_in(
    layout: &Path,
    image: &Descriptor,
    position: usize,
) -> Result<Digest, String> {
    let manifest_path = blob_path_in(layout, &digest(image)?);
    let bytes = std::fs::read(&manifest_path).context("reading the manifest")?;
    let manifest: serde_json::Value =
        serde_json::from_slice(&bytes).context("parsing the manifest")?;
    let text = manifest["layers"][position]["digest"]
        .as_str()
        .ok_or_else(|| format!("the manifest has no layer {position}: {manifest}"))?;
    Digest::parse(text).context(format!("layer digest {text}"))
}

/// Where a layout keeps the blob `digest` (`blobs/<alg>/<hex>`).
pub fn blob_path_in(layout: &Path, digest: &Digest) -> PathBuf {
    layout
        .join("blobs")
        .join(digest.algorithm().name())
        .join(digest.hex())
}

/// Flips the last byte of a file: same size, wrong digest.
pub fn corrupt_file(path: &Path) -> Result<(), String> {
    let mut bytes = std::fs::read(path).context(format!("reading {}", path.display()))?;
    let last = bytes
        .len()
        .checked_sub(1)
        .ok_or_else(|| format!("{} is empty", path.display()))?;
    bytes[last] ^= 0xff;
    std::fs::write(path, &bytes).context(format!("writing {}", path.display()))
}

/// Digests of every indexed blob.
pub fn stored(store: &Store) -> Result<BTreeSet<Digest>, String> {
    Ok(store
        .list(None)
        .context("listing blobs")?
        .into_iter()
        .map(|r| r.digest)
        .collect())
}

pub fn blob_count(store: &Store) -> Result<usize, String> {
    Ok(store.list(None).context("listing blobs")?.len())
}

/// Ref names, in order.
pub fn ref_names(oci: &Oci<'_>) -> Result<Vec<String>, String> {
    Ok(oci
        .list_refs()
        .context("listing refs")?
        .into_iter()
        .map(|r| r.name)
        .collect())
}
