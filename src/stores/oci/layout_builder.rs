//! Builds small, valid OCI image layouts from code: for tests, examples and demos.
//!
//! ```no_run
//! use oci_store::stores::oci::layout_builder::LayoutBuilder;
//! let mut builder = LayoutBuilder::new("/tmp/layout").unwrap();
//! let layer = LayoutBuilder::layer_tar_gz(&[("hello.txt", b"hello\n")]).unwrap();
//! let image = builder.image("linux", "amd64", &[layer]).unwrap();
//! builder.add_ref(Some("demo:latest"), &image);
//! builder.finish().unwrap();
//! ```

use std::path::{Path, PathBuf};

use oci_spec::image::Descriptor;
use serde_json::json;

use super::descriptor::{new_descriptor, with_ref_name};
use super::graph::{OCI_INDEX, OCI_MANIFEST};
use crate::traits::{Algorithm, Digest};

pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Writes blobs as they are added; [`LayoutBuilder::finish`] writes `oci-layout` and
/// `index.json`.
pub struct LayoutBuilder {
    root: PathBuf,
    entries: Vec<Descriptor>,
}

impl LayoutBuilder {
    pub fn new(root: impl AsRef<Path>) -> std::io::Result<LayoutBuilder> {
        let root = root.as_ref().to_path_buf();
        std::fs::create_dir_all(root.join("blobs").join("sha256"))?;
        Ok(LayoutBuilder {
            root,
            entries: Vec::new(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Stores `bytes` as `blobs/sha256/<hex>` and returns its descriptor.
    pub fn blob(&mut self, media_type: &str, bytes: &[u8]) -> std::io::Result<Descriptor> {
        let digest = Digest::of_bytes(Algorithm::Sha256, bytes);
        std::fs::write(self.blob_path(&digest), bytes)?;
        Ok(new_descriptor(media_type, &digest, bytes.len() as u64))
    }

    /// Stores a JSON document as a blob.
    pub fn json_blob(
        &mut self,
        media_type: &str,
        document: &serde_json::Value,
    ) -> std::io::Result<Descriptor> {
        let bytes = serde_json::to_vec(document).map_err(std::io::Error::other)?;
        self.blob(media_type, &bytes)
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm().name())
            .join(digest.hex())
    }

    /// A gzip-compressed tar holding `files` (path, content), deterministic (mtime 0).
    pub fn layer_tar_gz(files: &[(&str, &[u8])]) -> std::io::Result<Vec<u8>> {
        let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut builder = tar::Builder::new(encoder);
        for (path, content) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(0);
            // Owner fields filled in, as every real tar writer does: unpackers read them.
            header.set_uid(0);
            header.set_gid(0);
            builder.append_data(&mut header, path, *content)?;
        }
        builder.into_inner()?.finish()
    }

    /// Config, the given layers (gzip tars, or any bytes) and a manifest; returns the manifest
    /// descriptor. The config lists no diff ids, so images of one platform share it; a
    /// runtime that unpacks (containerd) needs [`LayoutBuilder::runnable_image`].
    pub fn image(
        &mut self,
        os: &str,
        architecture: &str,
        layers: &[Vec<u8>],
    ) -> std::io::Result<Descriptor> {
        self.image_with_diff_ids(os, architecture, layers, &[])
    }

    /// [`LayoutBuilder::image`] whose config's `rootfs.diff_ids` are the digests of the
    /// uncompressed layers (which must be gzip tars), as runtimes check them when they unpack.
    pub fn runnable_image(
        &mut self,
        os: &str,
        architecture: &str,
        layers: &[Vec<u8>],
    ) -> std::io::Result<Descriptor> {
        let mut diff_ids = Vec::new();
        for layer in layers {
            let mut tar = Vec::new();
            std::io::Read::read_to_end(
                &mut flate2::read::GzDecoder::new(layer.as_slice()),
                &mut tar,
            )?;
            diff_ids.push(Digest::of_bytes(Algorithm::Sha256, &tar).to_string());
        }
        self.image_with_diff_ids(os, architecture, layers, &diff_ids)
    }

    fn image_with_diff_ids(
        &mut self,
        os: &str,
        architecture: &str,
        layers: &[Vec<u8>],
        diff_ids: &[String],
    ) -> std::io::Result<Descriptor> {
        let config = self.json_blob(
            OCI_CONFIG,
            &json!({
                "architecture": architecture,
                "os": os,
                "rootfs": { "type": "layers", "diff_ids": diff_ids },
                "config": {}
            }),
        )?;
        let mut layer_descriptors = Vec::new();
        for layer in layers {
            layer_descriptors.push(self.blob(OCI_LAYER_GZIP, layer)?);
        }
        self.json_blob(
            OCI_MANIFEST,
            &json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": config,
                "layers": layer_descriptors,
            }),
        )
    }

    /// An image index over `manifests`, each given the platform `os/architecture`.
    pub fn index(&mut self, manifests: &[(Descriptor, &str, &str)]) -> std::io::Result<Descriptor> {
        let entries: Vec<serde_json::Value> = manifests
            .iter()
            .map(|(descriptor, os, architecture)| {
                let mut entry = serde_json::to_value(descriptor).expect("descriptor serializes");
                entry["platform"] = json!({ "os": os, "architecture": architecture });
                entry
            })
            .collect();
        self.json_blob(
            OCI_INDEX,
            &json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries }),
        )
    }

    /// Lists `descriptor` in `index.json`, with a ref-name annotation when `name` is given.
    pub fn add_ref(&mut self, name: Option<&str>, descriptor: &Descriptor) {
        let entry = match name {
            Some(name) => with_ref_name(descriptor, name),
            None => descriptor.clone(),
        };
        self.entries.push(entry);
    }

    /// Writes `oci-layout` and `index.json`.
    pub fn finish(&self) -> std::io::Result<()> {
        std::fs::write(
            self.root.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )?;
        let index = json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": self.entries,
        });
        std::fs::write(
            self.root.join("index.json"),
            serde_json::to_vec_pretty(&index).map_err(std::io::Error::other)?,
        )
    }

    /// A complete one-image layout at `root` named `name`, with two small layers; returns the
    /// manifest descriptor.
    pub fn simple_image(root: impl AsRef<Path>, name: &str) -> std::io::Result<Descriptor> {
        let mut builder = LayoutBuilder::new(root)?;
        let base = Self::layer_tar_gz(&[("etc/os-release", b"NAME=demo\n")])?;
        let app = Self::layer_tar_gz(&[("app/hello.txt", name.as_bytes())])?;
        let image = builder.image("linux", "amd64", &[base, app])?;
        builder.add_ref(Some(name), &image);
        builder.finish()?;
        Ok(image)
    }
}
