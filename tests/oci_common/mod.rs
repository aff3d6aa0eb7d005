//! Helpers shared by the OCI flavour tests. Each test body takes `&DynStore` so the backend
//! matrix can run it later; here it runs against the default backends.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_store::stores::oci::layout_builder::LayoutBuilder;
use oci_store::stores::oci::{Descriptor, OciStore};
use oci_store::{open_store, BackendChoice, DynStore};
use serde_json::json;

pub type Oci<'s> = OciStore<
    's,
    std::sync::Arc<dyn oci_store::traits::BlobStore>,
    std::sync::Arc<dyn oci_store::traits::Index>,
    std::sync::Arc<dyn oci_store::traits::ExtraData>,
    std::sync::Arc<dyn oci_store::traits::KvStore>,
>;

/// Runs a test body against a fresh store with the default backends.
pub fn run(body: fn(&DynStore)) {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir.path().join("store"), &BackendChoice::default()).unwrap();
    body(&store);
}

pub fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Every file under `<layout>/blobs`, by relative path, with its content.
pub fn blob_files(layout: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    collect_files(&layout.join("blobs"), &layout.join("blobs"), &mut files);
    files
}

fn collect_files(root: &Path, dir: &Path, files: &mut BTreeMap<String, Vec<u8>>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_files(root, &path, files);
        } else {
            let name = path.strip_prefix(root).unwrap().display().to_string();
            files.insert(name, std::fs::read(&path).unwrap());
        }
    }
}

/// The `manifests` of a layout's index.json.
pub fn index_entries(layout: &Path) -> Vec<serde_json::Value> {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"].as_array().unwrap().clone()
}

pub fn ref_names_in_layout(layout: &Path) -> Vec<String> {
    let mut names: Vec<String> = index_entries(layout)
        .iter()
        .filter_map(|e| e["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .map(str::to_string)
        .collect();
    names.sort();
    names
}

/// Tars a layout directory (optionally gzip) into `out`.
pub fn tar_layout(layout: &Path, out: &Path, gzip: bool) {
    let file = std::fs::File::create(out).unwrap();
    if gzip {
        let encoder = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        let mut builder = tar::Builder::new(encoder);
        builder.append_dir_all(".", layout).unwrap();
        builder.into_inner().unwrap().finish().unwrap();
    } else {
        let mut builder = tar::Builder::new(file);
        builder.append_dir_all(".", layout).unwrap();
        builder.finish().unwrap();
    }
}

pub fn layer(name: &str) -> Vec<u8> {
    LayoutBuilder::layer_tar_gz(&[(name, name.as_bytes())]).unwrap()
}

/// A layout with images named by `names`, each with a unique layer and a shared base layer.
pub fn layout_with_refs(dir: &Path, names: &[&str]) -> Vec<Descriptor> {
    let mut builder = LayoutBuilder::new(dir).unwrap();
    let base = layer("base");
    let mut images = Vec::new();
    for name in names {
        let image = builder
            .image("linux", "amd64", &[base.clone(), layer(name)])
            .unwrap();
        builder.add_ref(Some(name), &image);
        images.push(image);
    }
    builder.finish().unwrap();
    images
}

/// An OCI manifest referring to `subject` (a signature-like artifact).
pub fn signature(builder: &mut LayoutBuilder, subject: &Descriptor, payload: &str) -> Descriptor {
    let empty = builder
        .blob("application/vnd.oci.empty.v1+json", b"{}")
        .unwrap();
    let blob = builder
        .blob("application/vnd.example.signature", payload.as_bytes())
        .unwrap();
    builder
        .json_blob(
            "application/vnd.oci.image.manifest.v1+json",
            &json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "artifactType": "application/vnd.example.signature",
                "config": empty,
                "layers": [blob],
                "subject": subject,
            }),
        )
        .unwrap()
}

pub fn digest_string(descriptor: &Descriptor) -> String {
    descriptor.digest().to_string()
}

pub fn digest(descriptor: &Descriptor) -> oci_store::Digest {
    oci_store::Digest::parse(descriptor.digest().as_ref()).unwrap()
}

pub fn path_in(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}
