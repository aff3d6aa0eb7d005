//! "What is this image?": a ref's descriptor, its manifest (or index, per platform), the
//! image config's summary (platform, env, entrypoint/cmd, working dir, labels, created,
//! history) and its layers. Read-only; documents are read whole (bounded) and verified.
//!
//! The documents are read as JSON values rather than strict image-spec types, so an image the
//! store accepted (OCI or Docker media types, extra fields) always shows.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::descriptor::{digest_of, media_type_of};
use super::graph::{verify_document, DocumentKind, MAX_DOCUMENT_SIZE};
use super::validate::{is_image_config, MAX_INDEX_NESTING};
use super::{Descriptor, OciError, OciResult, OciStore};
use crate::store::StoreError;
use crate::traits::Digest;

/// A ref (or a stored document) inspected.
#[derive(Clone, Debug, Serialize)]
pub struct Inspection {
    /// The ref, when a ref was inspected.
    pub name: Option<String>,
    /// The descriptor inspected: the ref's, or one made from the blob's index record.
    pub descriptor: Descriptor,
    /// When the ref (or the blob) was last used (Unix ms), if a use was recorded.
    pub last_used_unix_ms: Option<i64>,
    /// What the descriptor points to.
    pub target: Node,
}

/// A document in the tree under a ref.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Node {
    /// An image index or manifest list: one entry per manifest, with its platform.
    Index(IndexSummary),
    /// An image (or artifact) manifest.
    Manifest(Box<ManifestSummary>),
    /// A descriptor whose blob the store does not have (a platform not pulled).
    Absent {
        /// The digest the descriptor names.
        digest: Digest,
        /// The media type the descriptor gives.
        media_type: String,
    },
    /// A blob that is not a manifest or index (a ref to a plain blob).
    Blob {
        /// The blob's digest.
        digest: Digest,
        /// Its media type, as the descriptor gives it.
        media_type: String,
        /// Its size in bytes.
        size: u64,
    },
}

/// An image index (or Docker manifest list) as [`OciStore::inspect`] shows it.
#[derive(Clone, Debug, Serialize)]
pub struct IndexSummary {
    /// The index's digest.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its annotations.
    pub annotations: BTreeMap<String, String>,
    /// One entry per manifest it lists, in its order.
    pub manifests: Vec<IndexEntry>,
}

/// One manifest an index lists.
#[derive(Clone, Debug, Serialize)]
pub struct IndexEntry {
    /// `os/architecture[/variant]`, when the index gives one.
    pub platform: Option<String>,
    /// The descriptor as the index gives it.
    pub descriptor: Descriptor,
    /// What the descriptor points at, as far as the store has it.
    pub target: Node,
}

/// An image (or artifact) manifest as [`OciStore::inspect`] shows it.
#[derive(Clone, Debug, Serialize)]
pub struct ManifestSummary {
    /// The manifest's digest.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its `artifactType`, when it has one.
    pub artifact_type: Option<String>,
    /// Its config blob.
    pub config: BlobSummary,
    /// The image config's summary; absent for an artifact (a config that is no image config)
    /// or a config the store does not have.
    pub image: Option<ImageConfigSummary>,
    /// Its layers, in order.
    pub layers: Vec<BlobSummary>,
    /// Sum of the layers' sizes (compressed, as stored).
    pub layer_bytes: u64,
    /// The manifest it refers to (a signature's or SBOM's subject), when it has one.
    pub subject: Option<Descriptor>,
    /// Its annotations.
    pub annotations: BTreeMap<String, String>,
}

/// A config or layer blob a manifest names.
#[derive(Clone, Debug, Serialize)]
pub struct BlobSummary {
    /// The blob's digest.
    pub digest: Digest,
    /// Its media type, as the manifest gives it.
    pub media_type: String,
    /// Its size in bytes, as the manifest gives it.
    pub size: u64,
    /// Whether the store has the blob (a non-distributable layer may be absent).
    pub present: bool,
}

/// What an image config says about the image (the OCI image spec's config fields).
#[derive(Clone, Debug, Default, Serialize)]
pub struct ImageConfigSummary {
    /// `os` (e.g. `linux`).
    pub os: Option<String>,
    /// `architecture` (e.g. `amd64`).
    pub architecture: Option<String>,
    /// `variant` (e.g. `v8`).
    pub variant: Option<String>,
    /// `os.version`.
    pub os_version: Option<String>,
    /// `created`, an RFC 3339 time as the config gives it.
    pub created: Option<String>,
    /// `author`.
    pub author: Option<String>,
    /// `config.User`.
    pub user: Option<String>,
    /// `config.Env`, `NAME=value` each.
    pub env: Vec<String>,
    /// `config.Entrypoint`.
    pub entrypoint: Option<Vec<String>>,
    /// `config.Cmd`.
    pub cmd: Option<Vec<String>>,
    /// `config.WorkingDir`.
    pub working_dir: Option<String>,
    /// `config.Labels`.
    pub labels: BTreeMap<String, String>,
    /// `config.ExposedPorts` (`80/tcp`, ...), sorted.
    pub exposed_ports: Vec<String>,
    /// `config.Volumes`, sorted.
    pub volumes: Vec<String>,
    /// `config.StopSignal`.
    pub stop_signal: Option<String>,
    /// `history`, oldest first.
    pub history: Vec<HistoryEntry>,
}

/// One step of an image's `history`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HistoryEntry {
    /// When the step ran, as the config gives it.
    pub created: Option<String>,
    /// The command that made it.
    pub created_by: Option<String>,
    /// Its comment.
    pub comment: Option<String>,
    /// Whether the step made no layer.
    pub empty_layer: bool,
}

impl OciStore<'_> {
    /// Inspects what `text` names: a ref, or the digest (or unique prefix) of a stored blob.
    pub fn inspect(&self, text: &str) -> OciResult<Inspection> {
        let resolved = self.resolve_stored(text)?;
        let Some(name) = resolved.name else {
            return self.inspect_digest(&resolved.digest);
        };
        let name = name.as_str();
        let descriptor = resolved.descriptor;
        let target = self.inspect_descriptor(&descriptor, 0)?;
        Ok(Inspection {
            name: Some(name.to_string()),
            last_used_unix_ms: self.store.name_last_used(&super::HOLDER, name)?,
            descriptor,
            target,
        })
    }

    /// Inspects a stored blob by digest (a manifest or index put with `blob put`, or one an
    /// index lists).
    pub fn inspect_digest(&self, digest: &Digest) -> OciResult<Inspection> {
        let record = self.store.info(digest)?;
        let descriptor =
            super::descriptor::new_descriptor(&record.media_type, &record.digest, record.size);
        let target = self.inspect_descriptor(&descriptor, 0)?;
        Ok(Inspection {
            name: None,
            last_used_unix_ms: self.store.blob_last_used(digest)?,
            descriptor,
            target,
        })
    }

    fn inspect_descriptor(&self, descriptor: &Descriptor, depth: usize) -> OciResult<Node> {
        let media_type = media_type_of(descriptor);
        let digest = digest_of(descriptor, &format!("a {media_type} descriptor"))?;
        let kind = DocumentKind::of(&media_type);
        if !self.store.contains(&digest)? {
            return Ok(Node::Absent { digest, media_type });
        }
        if !kind.is_document() {
            return Ok(Node::Blob {
                digest,
                media_type,
                size: descriptor.size(),
            });
        }
        let document = self.read_json(&digest, descriptor.size())?;
        if kind == DocumentKind::Index {
            if depth >= MAX_INDEX_NESTING {
                return Err(super::validate::too_deep(&digest, &media_type, depth + 1));
            }
            let mut manifests = Vec::new();
            for entry in array(&document, "manifests") {
                let child: Descriptor = serde_json::from_value(entry.clone())
                    .map_err(|e| OciError::document(format!("{media_type} {digest}"), e))?;
                manifests.push(IndexEntry {
                    platform: platform_of(entry.get("platform")),
                    target: self.inspect_descriptor(&child, depth + 1)?,
                    descriptor: child,
                });
            }
            return Ok(Node::Index(IndexSummary {
                digest,
                media_type,
                size: descriptor.size(),
                annotations: string_map(document.get("annotations")),
                manifests,
            }));
        }
        self.inspect_manifest(digest, media_type, descriptor.size(), &document)
            .map(|summary| Node::Manifest(Box::new(summary)))
    }

    fn inspect_manifest(
        &self,
        digest: Digest,
        media_type: String,
        size: u64,
        document: &Value,
    ) -> OciResult<ManifestSummary> {
        let context = format!("{media_type} {digest}");
        let config_descriptor: Option<Descriptor> = document
            .get("config")
            .map(|value| serde_json::from_value(value.clone()))
            .transpose()
            .map_err(|e| OciError::document(&context, e))?;
        let config = match &config_descriptor {
            Some(descriptor) => self.blob_summary(descriptor)?,
            None => BlobSummary {
                digest: digest.clone(),
                media_type: String::new(),
                size: 0,
                present: false,
            },
        };
        let image = if config.present && is_image_config(&config.media_type) {
            let value = self.read_json(&config.digest, config.size)?;
            Some(config_summary(&value))
        } else {
            None
        };
        let mut layers = Vec::new();
        // Artifacts list `blobs` where images list `layers`.
        for entry in array(document, "layers")
            .iter()
            .chain(array(document, "blobs").iter())
        {
            let layer: Descriptor = serde_json::from_value(entry.clone())
                .map_err(|e| OciError::document(&context, e))?;
            layers.push(self.blob_summary(&layer)?);
        }
        let subject = document
            .get("subject")
            .map(|value| serde_json::from_value(value.clone()))
            .transpose()
            .map_err(|e| OciError::document(&context, e))?;
        Ok(ManifestSummary {
            layer_bytes: layers.iter().map(|layer| layer.size).sum(),
            digest,
            media_type,
            size,
            artifact_type: text(document, "artifactType"),
            config,
            image,
            layers,
            subject,
            annotations: string_map(document.get("annotations")),
        })
    }

    fn blob_summary(&self, descriptor: &Descriptor) -> OciResult<BlobSummary> {
        let media_type = media_type_of(descriptor);
        let digest = digest_of(descriptor, &format!("a {media_type} descriptor"))?;
        Ok(BlobSummary {
            present: self.store.contains(&digest)?,
            digest,
            media_type,
            size: descriptor.size(),
        })
    }

    /// A document or config, read whole (bounded), verified against its digest and size.
    fn read_json(&self, digest: &Digest, size: u64) -> OciResult<Value> {
        if size > MAX_DOCUMENT_SIZE {
            return Err(OciError::DocumentTooLarge {
                digest: digest.to_string(),
                media_type: "document".to_string(),
                size,
                limit: MAX_DOCUMENT_SIZE,
            });
        }
        let bytes = match self.store.read_to_vec(digest, MAX_DOCUMENT_SIZE) {
            Ok(bytes) => bytes,
            Err(StoreError::NotFound(_)) => {
                return Err(OciError::Store(Box::new(StoreError::NotFound(
                    digest.to_string(),
                ))))
            }
            Err(error) => return Err(error.into()),
        };
        verify_document(digest, size, &bytes).map_err(|reason| OciError::BadBlob {
            digest: digest.clone(),
            path: self.store.dir().to_path_buf(),
            reason: format!("{reason}; the store's copy is damaged: run `oci-store fsck --repair`"),
        })?;
        serde_json::from_slice(&bytes).map_err(|e| OciError::document(digest.to_string(), e))
    }
}

/// The image config's fields people look at (OCI and Docker configs share these names).
fn config_summary(config: &Value) -> ImageConfigSummary {
    let runtime = config.get("config").unwrap_or(&Value::Null);
    ImageConfigSummary {
        os: text(config, "os"),
        architecture: text(config, "architecture"),
        variant: text(config, "variant"),
        os_version: text(config, "os.version"),
        created: text(config, "created"),
        author: text(config, "author"),
        user: text(runtime, "User").filter(|user| !user.is_empty()),
        env: strings(runtime.get("Env")).unwrap_or_default(),
        entrypoint: strings(runtime.get("Entrypoint")),
        cmd: strings(runtime.get("Cmd")),
        working_dir: text(runtime, "WorkingDir").filter(|dir| !dir.is_empty()),
        labels: string_map(runtime.get("Labels")),
        exposed_ports: keys(runtime.get("ExposedPorts")),
        volumes: keys(runtime.get("Volumes")),
        stop_signal: text(runtime, "StopSignal"),
        history: array(config, "history")
            .iter()
            .map(|entry| HistoryEntry {
                created: text(entry, "created"),
                created_by: text(entry, "created_by"),
                comment: text(entry, "comment"),
                empty_layer: entry.get("empty_layer").and_then(Value::as_bool) == Some(true),
            })
            .collect(),
    }
}

/// `os/architecture[/variant]` of an index entry's `platform`.
fn platform_of(platform: Option<&Value>) -> Option<String> {
    let platform = platform?;
    let os = text(platform, "os")?;
    let architecture = text(platform, "architecture")?;
    Some(match text(platform, "variant") {
        Some(variant) => format!("{os}/{architecture}/{variant}"),
        None => format!("{os}/{architecture}"),
    })
}

fn text(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_string)
}

fn array<'v>(value: &'v Value, key: &str) -> &'v [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn strings(value: Option<&Value>) -> Option<Vec<String>> {
    let items = value?.as_array()?;
    Some(
        items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
    )
}

fn string_map(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_object)
        .map(|object| {
            object
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn keys(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_object)
        .map(|object| object.keys().cloned().collect())
        .unwrap_or_default()
}
