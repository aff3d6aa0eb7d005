//! What a descriptor reaches: its children, found from its media type, and a walker that
//! follows them from a set of roots over any [`ContentSource`] (a layout being imported, the
//! store itself).
//!
//! Documents are parsed with [`LinkedDocument`], one lenient struct of our own rather than
//! oci-spec's `ImageManifest`/`ImageIndex`: one shape has to read OCI manifests and indexes,
//! Docker schema2 manifests and manifest lists, and the (withdrawn but deployed) OCI artifact
//! manifest, which has `blobs` and no `config` — `ImageManifest` requires a config and
//! would refuse it. The child descriptors themselves are oci-spec [`Descriptor`]s.

use std::collections::HashMap;

use oci_spec::image::Descriptor;
use serde::Deserialize;

use super::descriptor::{digest_of, media_type_of};
use super::error::{OciError, OciResult};
use super::validate;
use crate::traits::Digest;

/// Manifests and indexes larger than this are refused (the distribution spec's limit that
/// registries apply), so a hostile layout cannot make us parse an arbitrarily large document.
pub const MAX_DOCUMENT_SIZE: u64 = 4 * 1024 * 1024;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_ARTIFACT_MANIFEST: &str = "application/vnd.oci.artifact.manifest.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// What a media type says about a blob's children.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocumentKind {
    /// OCI image manifest or Docker schema2 manifest: `config`, `layers`, `subject`.
    Manifest,
    /// OCI image index or Docker manifest list: `manifests`, `subject`.
    Index,
    /// OCI artifact manifest: `blobs`, `subject`.
    ArtifactManifest,
    /// Anything else (configs, layers, unknown types, Docker schema1): no children.
    Leaf,
}

impl DocumentKind {
    pub fn of(media_type: &str) -> DocumentKind {
        match media_type {
            OCI_MANIFEST | DOCKER_MANIFEST => DocumentKind::Manifest,
            OCI_INDEX | DOCKER_MANIFEST_LIST => DocumentKind::Index,
            OCI_ARTIFACT_MANIFEST => DocumentKind::ArtifactManifest,
            _ => DocumentKind::Leaf,
        }
    }

    pub fn is_document(self) -> bool {
        self != DocumentKind::Leaf
    }
}

/// Every field any document kind links through; which ones count depends on the kind.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LinkedDocument {
    schema_version: Option<u32>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
    blobs: Option<Vec<Descriptor>>,
    subject: Option<Descriptor>,
    annotations: Option<HashMap<String, String>>,
}

/// A descriptor to follow. `optional` ones may be absent: non-distributable layers (with
/// `urls`) and a `subject` (a referrer may travel without the image it refers to).
#[derive(Clone, Debug)]
pub struct Child {
    pub descriptor: Descriptor,
    pub optional: bool,
}

impl Child {
    pub fn required(descriptor: Descriptor) -> Child {
        Child {
            descriptor,
            optional: false,
        }
    }
}

/// The links of one parsed document.
#[derive(Clone, Debug, Default)]
pub struct DocumentLinks {
    pub children: Vec<Child>,
    pub subject: Option<Descriptor>,
    /// `artifactType`, else the config's media type (as the referrers API reports it).
    pub artifact_type: Option<String>,
    pub annotations: Option<HashMap<String, String>>,
}

/// Parses a manifest, index or artifact manifest and lists what it links to.
pub fn parse_document(
    kind: DocumentKind,
    descriptor_media_type: &str,
    digest: &Digest,
    bytes: &[u8],
) -> OciResult<DocumentLinks> {
    let context = format!("{descriptor_media_type} {digest}");
    let document: LinkedDocument =
        serde_json::from_slice(bytes).map_err(|e| OciError::document(&context, e))?;
    if let Some(version) = document.schema_version {
        if version != 2 {
            return Err(OciError::document(
                &context,
                format!("schemaVersion {version}, expected 2"),
            ));
        }
    }
    if let Some(own) = &document.media_type {
        if own != descriptor_media_type {
            return Err(OciError::document(
                &context,
                format!("the document says its media type is {own}"),
            ));
        }
    }
    let mut children = Vec::new();
    let mut artifact_type = document.artifact_type.clone();
    match kind {
        DocumentKind::Manifest => {
            let config = document
                .config
                .ok_or_else(|| OciError::document(&context, "a manifest needs a config"))?;
            if artifact_type.is_none() {
                artifact_type = Some(media_type_of(&config));
            }
            children.push(Child::required(config));
            for layer in document.layers.unwrap_or_default() {
                let optional = layer.urls().as_ref().is_some_and(|urls| !urls.is_empty());
                children.push(Child {
                    descriptor: layer,
                    optional,
                });
            }
        }
        DocumentKind::Index => {
            let manifests = document
                .manifests
                .ok_or_else(|| OciError::document(&context, "an index needs manifests"))?;
            children.extend(manifests.into_iter().map(Child::required));
        }
        DocumentKind::ArtifactManifest => {
            children.extend(
                document
                    .blobs
                    .unwrap_or_default()
                    .into_iter()
                    .map(Child::required),
            );
        }
        DocumentKind::Leaf => {}
    }
    if let Some(subject) = &document.subject {
        children.push(Child {
            descriptor: subject.clone(),
            optional: true,
        });
    }
    Ok(DocumentLinks {
        children,
        subject: document.subject,
        artifact_type,
        annotations: document.annotations,
    })
}

/// A child from a document's recorded links, with what the walker needs of it parsed once.
#[derive(Clone, Debug)]
pub struct LinkedChild {
    pub digest: Digest,
    /// Whether its media type is a manifest's or an index's.
    pub is_document: bool,
    pub child: Child,
}

/// What a source has for one descriptor.
pub enum Fetched {
    /// A manifest or index, read whole and verified against its digest and size.
    Document(Vec<u8>),
    /// A manifest or index that is there, with the children recorded when it was committed
    /// (see `links`): its content is not read.
    Linked(std::sync::Arc<[LinkedChild]>),
    /// A leaf blob that is there (its content is not read).
    Present,
    Absent,
    /// There, but its content does not match its digest.
    Corrupt(String),
}

/// Where the walker finds content.
pub trait ContentSource {
    /// Names the source in messages (a layout path, "the store").
    fn name(&self) -> String;

    /// Looks a descriptor up; `document` is true for manifests and indexes, which must be read
    /// and verified (at most [`MAX_DOCUMENT_SIZE`] bytes).
    fn fetch(
        &mut self,
        digest: &Digest,
        descriptor: &Descriptor,
        document: bool,
    ) -> OciResult<Fetched>;

    /// Whether what this source holds is validated against the image-spec as it is walked
    /// (see [`validate`]): true for what is being imported, false for the store itself, whose
    /// documents were checked on the way in and must never stop a GC.
    fn strict(&self) -> bool {
        false
    }
}

/// One blob the walk reached and found present.
#[derive(Clone, Debug)]
pub struct Reached {
    pub digest: Digest,
    pub descriptor: Descriptor,
    /// The verified bytes of a manifest or index.
    pub document: Option<Vec<u8>>,
    pub links: Option<DocumentLinks>,
    /// Walked as a document from its recorded links (see `links`): neither its bytes nor its
    /// parsed links are here.
    pub linked: bool,
}

impl Reached {
    /// Whether it was walked as a manifest or index (read, or from its recorded links).
    pub fn is_document(&self) -> bool {
        self.links.is_some() || self.linked
    }
}

/// Walks from roots, each digest once, keeping what it found across calls to
/// [`Walker::visit`] (GC adds referrers as new roots until nothing new is reached).
///
/// One blob may be named under several media types (the mark is by digest): a blob first met
/// as a leaf is walked again, as a document, when a descriptor names it as one, so its
/// children are never missed whichever descriptor the walk meets first.
#[derive(Default)]
pub struct Walker {
    /// Every digest walked, and whether it was walked as a document (a fast hash: GC walks
    /// every blob of the store).
    visited: foldhash::HashMap<Digest, bool>,
    pub reached: Vec<Reached>,
    /// Required blobs that are absent.
    pub missing: Vec<(Digest, Descriptor)>,
    /// Optional blobs (non-distributable layers, subjects) that are absent.
    pub absent_optional: Vec<(Digest, Descriptor)>,
    pub corrupt: Vec<(Digest, String)>,
    /// The descriptors the `corrupt` blobs were met under, in the same order.
    corrupt_descriptors: Vec<Descriptor>,
}

impl Walker {
    pub fn new() -> Walker {
        Walker::default()
    }

    pub fn is_visited(&self, digest: &Digest) -> bool {
        self.visited.contains_key(digest)
    }

    pub fn visit(&mut self, roots: Vec<Child>, source: &mut impl ContentSource) -> OciResult<()> {
        let strict = source.strict();
        // Each with the number of indexes above it. Depth first; children are pushed in
        // reverse so they are visited in document order.
        // The digest rides along when it is known already (recorded links).
        let mut pending: Vec<(Child, Option<Digest>, usize)> =
            roots.into_iter().rev().map(|c| (c, None, 0)).collect();
        if strict {
            for (root, _, _) in &pending {
                let media_type = media_type_of(&root.descriptor);
                let digest = digest_of(&root.descriptor, &format!("a {media_type} descriptor"))?;
                validate::validate_root_descriptor(&root.descriptor, &digest)?;
            }
        }
        while let Some((child, known_digest, indexes_above)) = pending.pop() {
            let descriptor = child.descriptor;
            let media_type = media_type_of(&descriptor);
            let digest = match known_digest {
                Some(digest) => digest,
                None => digest_of(&descriptor, &format!("a {media_type} descriptor"))?,
            };
            let kind = DocumentKind::of(&media_type);
            let revisit = match self.visited.get(&digest) {
                Some(true) => continue,
                Some(false) if !kind.is_document() => continue,
                Some(false) => true,
                None => false,
            };
            self.visited.insert(digest.clone(), kind.is_document());
            let nesting = indexes_above + usize::from(kind == DocumentKind::Index);
            if strict && nesting > validate::MAX_INDEX_NESTING {
                return Err(validate::too_deep(&digest, &media_type, nesting));
            }
            // A strict walk reads image configs whole too, to validate them; they stay leaves.
            let config = strict && validate::is_image_config(&media_type);
            let read_whole = kind.is_document() || config;
            if read_whole && descriptor.size() > MAX_DOCUMENT_SIZE {
                return Err(OciError::DocumentTooLarge {
                    digest: digest.to_string(),
                    media_type,
                    size: descriptor.size(),
                    limit: MAX_DOCUMENT_SIZE,
                });
            }
            let fetched = match source.fetch(&digest, &descriptor, read_whole)? {
                Fetched::Document(bytes) if config => {
                    validate::validate_config(&media_type, &digest, &bytes)?;
                    Fetched::Present
                }
                Fetched::Document(bytes) if strict => {
                    validate::validate_document(kind, &media_type, &digest, &bytes)?;
                    Fetched::Document(bytes)
                }
                fetched => fetched,
            };
            let (document, links) = match fetched {
                Fetched::Document(bytes) => {
                    let links = parse_document(kind, &media_type, &digest, &bytes)?;
                    (Some(bytes), links)
                }
                // Recorded links are a document's, whatever descriptor meets the blob: what
                // was walked already is not even copied.
                Fetched::Linked(children) if kind.is_document() => {
                    for next in children.iter().rev() {
                        let walked = match self.visited.get(&next.digest) {
                            Some(true) => true,
                            Some(false) => !next.is_document,
                            None => false,
                        };
                        if !walked {
                            let digest = Some(next.digest.clone());
                            pending.push((next.child.clone(), digest, nesting));
                        }
                    }
                    self.add_document(revisit, digest, descriptor, None, None);
                    continue;
                }
                Fetched::Linked(_) => {
                    self.record_leaf(
                        Fetched::Present,
                        revisit,
                        child.optional,
                        digest,
                        descriptor,
                    );
                    continue;
                }
                other => {
                    self.record_leaf(other, revisit, child.optional, digest, descriptor);
                    continue;
                }
            };
            for next in links.children.iter().rev() {
                pending.push((next.clone(), None, nesting));
            }
            self.add_document(revisit, digest, descriptor, document, Some(links));
        }
        Ok(())
    }

    /// A document reached: its bytes and links when it was read.
    fn add_document(
        &mut self,
        revisit: bool,
        digest: Digest,
        descriptor: Descriptor,
        document: Option<Vec<u8>>,
        links: Option<DocumentLinks>,
    ) {
        let reached = Reached {
            linked: links.is_none(),
            digest,
            descriptor,
            document,
            links,
        };
        // Met before as a leaf: the same blob, now with its document.
        let earlier = match revisit {
            true => self.reached.iter_mut().find(|r| r.digest == reached.digest),
            false => None,
        };
        match earlier {
            Some(earlier) => *earlier = reached,
            None => self.reached.push(reached),
        }
    }

    /// What a blob walked as a leaf (or found absent or corrupt) adds to the walk.
    fn record_leaf(
        &mut self,
        fetched: Fetched,
        revisit: bool,
        optional: bool,
        digest: Digest,
        descriptor: Descriptor,
    ) {
        match fetched {
            // Met before as a leaf, which recorded whether it is there.
            Fetched::Present | Fetched::Absent if revisit => {}
            Fetched::Present | Fetched::Linked(_) | Fetched::Document(_) => {
                self.reached.push(Reached {
                    digest,
                    descriptor,
                    document: None,
                    links: None,
                    linked: false,
                });
            }
            Fetched::Absent if optional => self.absent_optional.push((digest, descriptor)),
            Fetched::Absent => self.missing.push((digest, descriptor)),
            Fetched::Corrupt(reason) => {
                self.corrupt.push((digest, reason));
                self.corrupt_descriptors.push(descriptor);
            }
        }
    }

    /// The first corrupt blob: its digest, the descriptor it was met under, and why.
    pub fn first_corrupt(&self) -> Option<(&Digest, &Descriptor, &str)> {
        let (digest, reason) = self.corrupt.first()?;
        Some((digest, self.corrupt_descriptors.first()?, reason.as_str()))
    }

    /// Fails with the first missing or corrupt blob, for callers that need everything
    /// (import, export).
    pub fn require_complete(&self, source_name: &str) -> OciResult<()> {
        if let Some((digest, descriptor)) = self.missing.first() {
            return Err(OciError::MissingBlob {
                digest: digest.clone(),
                media_type: media_type_of(descriptor),
                source_name: source_name.to_string(),
            });
        }
        if let Some((digest, reason)) = self.corrupt.first() {
            return Err(OciError::Invalid(format!(
                "blob {digest} in {source_name} is corrupt: {reason}"
            )));
        }
        Ok(())
    }
}

/// Verifies a document read whole: size and digest as the descriptor gives them.
pub fn verify_document(digest: &Digest, expected_size: u64, bytes: &[u8]) -> Result<(), String> {
    if bytes.len() as u64 != expected_size {
        return Err(format!(
            "size is {} bytes, the descriptor says {expected_size}",
            bytes.len()
        ));
    }
    let actual = Digest::of_bytes(digest.algorithm(), bytes);
    if &actual != digest {
        return Err(format!("content hashes to {actual}"));
    }
    Ok(())
}
