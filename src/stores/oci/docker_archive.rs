//! Docker archives (`docker save`, `podman save`, `skopeo copy … docker-archive:`), read into
//! the same form as an `oci-archive`: layout entries whose manifests, configs and layers are in
//! the store under the import's operation, walked and committed by the one import path
//! ([`super::layout_import`]).
//!
//! - **Docker ≥ 25** writes an OCI layout (`oci-layout`, `index.json`, `blobs/`) and the legacy
//!   entries beside it. The layout is used as it is (its manifests keep their digests); the
//!   images of `manifest.json` are matched to the layout's entries by their config's digest,
//!   only to name them from `RepoTags`.
//! - **Legacy** (no `index.json`, or an image of `manifest.json` that no layout entry has):
//!   `Config` and `Layers` are names of members, followed through symbolic links among the
//!   archive's own members only ([`ArchiveContents::resolve`]). The config must be what its
//!   name says when the name is a digest (`<hex>.json`, `blobs/sha256/<hex>`); each layer,
//!   decompressed when it is gzip or zstd, must hash to the config's `rootfs.diff_ids` entry
//!   at its position. A Docker image manifest (schema 2; OCI when a layer is zstd, which
//!   schema 2 has no type for) is then made for it and stored under the operation, as
//!   containerd's import does.
//! - Names: each `RepoTags` entry becomes a ref, normalised as Docker reads it
//!   ([`normalise_repo_tag`]: `busybox:1` is `docker.io/library/busybox:1`).

use std::collections::HashMap;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use oci_spec::image::Descriptor;
use serde::Deserialize;
use serde_json::{json, Value};

use super::archive::DOCKER_MANIFEST_FILE;
use super::archive::{ArchiveBlob, ArchiveContents, ArchiveMember, ResolveError};
use super::descriptor::{digest_of, media_type_of, new_descriptor, REF_NAME_ANNOTATION};
use super::error::{OciError, OciResult};
use super::graph::{DocumentKind, DOCKER_MANIFEST, MAX_DOCUMENT_SIZE, OCI_MANIFEST};
use super::layout::LayoutEntry;
use crate::store::{Operation, Store, WriteOptions};
use crate::traits::{Algorithm, Digest};
use crate::util::compression::{open_by_magic, sniff, Compression, GzipMembers};

pub const DOCKER_CONFIG_MEDIA_TYPE: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// The annotation Docker 25 and containerd give an index entry: the image's full name.
pub const IMAGE_NAME_ANNOTATION: &str = "io.containerd.image.name";

const REMAKE: &str = "make the archive again (docker save, podman save, skopeo copy … \
                      docker-archive:) and import that";

/// One image of `manifest.json`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DockerImage {
    pub config: String,
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    #[serde(default)]
    pub layers: Vec<String>,
}

/// Parses `manifest.json`: a list of images, each with a config and its layers.
pub fn parse_docker_manifest(bytes: &[u8], archive: &Path) -> OciResult<Vec<DockerImage>> {
    let images: Vec<DockerImage> = serde_json::from_slice(bytes).map_err(|error| {
        OciError::document(
            format!("{}:{DOCKER_MANIFEST_FILE}", archive.display()),
            error,
        )
    })?;
    if images.is_empty() {
        return Err(OciError::NotALayout {
            path: archive.to_path_buf(),
            reason: format!("its {DOCKER_MANIFEST_FILE} lists no image"),
        });
    }
    Ok(images)
}

/// A `RepoTags` entry as Docker reads it: a first component that is not a registry host (no
/// `.` or `:`, not `localhost`) means Docker Hub (`docker.io/`), and a Hub name of one
/// component is an official image (`library/`). `index.docker.io` is `docker.io`. A name
/// with a registry host is kept as given; a name without a tag gets `:latest`.
pub fn normalise_repo_tag(tag: &str) -> String {
    let (first, rest) = match tag.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (Some(first), rest)
        }
        _ => (None, tag),
    };
    let domain = match first {
        None | Some("index.docker.io") => "docker.io",
        Some(domain) => domain,
    };
    let path = if domain == "docker.io" && !rest.contains('/') {
        format!("library/{rest}")
    } else {
        rest.to_string()
    };
    let last = path.rsplit('/').next().unwrap_or_default();
    let tagged = last.contains(':') || last.contains('@');
    let suffix = if tagged { "" } else { ":latest" };
    format!("{domain}/{path}{suffix}")
}

/// The short form Docker writes in `RepoTags` (`docker.io/library/x:1` is `x:1`), or `None`
/// when `name` is not a tagged image name (`latest`, `app@v2`).
pub fn familiar_repo_tag(name: &str) -> Option<String> {
    let last = name.rsplit('/').next()?;
    let (repository, tag) = last.split_once(':')?;
    if repository.is_empty() || tag.is_empty() || tag.contains(':') || name.contains('@') {
        return None;
    }
    let familiar = name
        .strip_prefix("docker.io/library/")
        .filter(|rest| !rest.contains('/'))
        .or_else(|| name.strip_prefix("docker.io/"))
        .unwrap_or(name);
    Some(familiar.to_string())
}

/// The layout entries of a Docker archive, its legacy images converted and stored under
/// `operation` (their members added to `contents.blobs` so the walk finds them).
pub(super) fn docker_entries(
    contents: &mut ArchiveContents,
    archive: &Path,
    operation: &mut Operation<'_>,
) -> OciResult<Vec<LayoutEntry>> {
    let manifest = contents.docker_manifest.as_deref().unwrap_or_default();
    let images = parse_docker_manifest(manifest, archive)?;
    let store = operation.store();
    // Docker 25's layout, if the archive has one: its entries by the configs they lead to.
    let layout_entries = match &contents.index {
        Some(_) => contents.entries(archive)?,
        None => Vec::new(),
    };
    let mut by_config: HashMap<Digest, usize> = HashMap::new();
    for (position, entry) in layout_entries.iter().enumerate() {
        for config in configs_of(&entry.descriptor, contents, store) {
            by_config.entry(config).or_insert(position);
        }
    }
    let mut matched = vec![false; layout_entries.len()];
    let mut entries = Vec::new();
    let mut diff_ids = DiffIds::default();
    for (position, image) in images.iter().enumerate() {
        let context = format!("{DOCKER_MANIFEST_FILE} image {}", position + 1);
        let config = resolve(
            contents,
            archive,
            &image.config,
            &format!("{context} Config"),
        )?;
        let descriptor = match by_config.get(&config.digest) {
            Some(&entry) => {
                matched[entry] = true;
                layout_entries[entry].descriptor.clone()
            }
            None => convert_legacy(
                contents,
                archive,
                operation,
                image,
                &context,
                config,
                &mut diff_ids,
            )?,
        };
        let tags = image.repo_tags.clone().unwrap_or_default();
        if tags.is_empty() {
            entries.push(LayoutEntry {
                name: None,
                descriptor: descriptor.clone(),
            });
        }
        for tag in tags {
            entries.push(LayoutEntry {
                name: Some(normalise_repo_tag(&tag)),
                descriptor: descriptor.clone(),
            });
        }
    }
    // Layout entries that no image of manifest.json names keep the names the layout gives.
    for (entry, matched) in layout_entries.into_iter().zip(matched) {
        if !matched {
            entries.push(entry);
        }
    }
    Ok(entries)
}

/// The config digests a layout entry leads to: its manifest's, or those of an index's
/// manifests, read from the store (the archive's blobs are there by now).
fn configs_of(descriptor: &Descriptor, contents: &ArchiveContents, store: &Store) -> Vec<Digest> {
    let document = |digest: &Digest| -> Option<Value> {
        if !contents.blobs.contains_key(digest) {
            return None;
        }
        let bytes = store.read_to_vec(digest, MAX_DOCUMENT_SIZE).ok()?;
        serde_json::from_slice(&bytes).ok()
    };
    let config = |manifest: &Value| -> Option<Digest> {
        Digest::parse(manifest["config"]["digest"].as_str()?).ok()
    };
    let Ok(digest) = digest_of(descriptor, "") else {
        return Vec::new();
    };
    match DocumentKind::of(&media_type_of(descriptor)) {
        DocumentKind::Manifest => document(&digest)
            .and_then(|m| config(&m))
            .into_iter()
            .collect(),
        DocumentKind::Index => {
            let Some(index) = document(&digest) else {
                return Vec::new();
            };
            index["manifests"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|child| Digest::parse(child["digest"].as_str()?).ok())
                .filter_map(|child| config(&document(&child)?))
                .collect()
        }
        _ => Vec::new(),
    }
}

fn resolve(
    contents: &ArchiveContents,
    archive: &Path,
    name: &str,
    named_by: &str,
) -> OciResult<ArchiveMember> {
    contents.resolve(name).map_err(|error| {
        let reason = match error {
            ResolveError::Missing { name: missing } if missing == name => {
                "the archive has no such member".to_string()
            }
            ResolveError::Missing { name: missing } => {
                format!("it is a symbolic link to {missing:?}, which the archive does not have")
            }
            ResolveError::TooManyLinks => "its symbolic links go in a circle".to_string(),
            ResolveError::Unsafe => "not a name inside the archive".to_string(),
        };
        OciError::DockerArchiveMember {
            archive: archive.to_path_buf(),
            member: name.to_string(),
            named_by: named_by.to_string(),
            reason,
        }
    })
}

/// Uncompressed digests of layers already checked, by their stored digest.
#[derive(Default)]
struct DiffIds(HashMap<Digest, (Digest, Compression)>);

/// Checks a legacy image's config and layers and stores a manifest for it; returns its
/// descriptor.
fn convert_legacy(
    contents: &mut ArchiveContents,
    archive: &Path,
    operation: &mut Operation<'_>,
    image: &DockerImage,
    context: &str,
    config: ArchiveMember,
    diff_ids: &mut DiffIds,
) -> OciResult<Descriptor> {
    let store = operation.store();
    let member_error = |member: &str, reason: String| OciError::DockerArchiveMember {
        archive: archive.to_path_buf(),
        member: member.to_string(),
        named_by: context.to_string(),
        reason,
    };
    if let Some(named) = digest_in_name(&image.config) {
        if named != config.digest {
            return Err(member_error(
                &image.config,
                format!(
                    "the config's name says {named}, its content is {}; {REMAKE}",
                    config.digest
                ),
            ));
        }
    }
    let bytes = store
        .read_to_vec(&config.digest, MAX_DOCUMENT_SIZE)
        .map_err(|error| member_error(&image.config, format!("the image config: {error}")))?;
    let expected = config_diff_ids(&bytes)
        .map_err(|reason| member_error(&image.config, format!("the image config {reason}")))?;
    if expected.len() != image.layers.len() {
        return Err(member_error(
            &image.config,
            format!(
                "the image config lists {} diff IDs, {DOCKER_MANIFEST_FILE} {} layers; {REMAKE}",
                expected.len(),
                image.layers.len()
            ),
        ));
    }
    let mut layers = Vec::with_capacity(image.layers.len());
    for (position, (name, expected)) in image.layers.iter().zip(&expected).enumerate() {
        let named_by = format!("{context} Layers[{position}]");
        let layer = resolve(contents, archive, name, &named_by)?;
        let (diff_id, compression) = match diff_ids.0.get(&layer.digest) {
            Some(known) => known.clone(),
            None => {
                let found = diff_id_of(store, &layer.digest).map_err(|error| {
                    member_error(name, format!("reading the layer back: {error}"))
                })?;
                diff_ids.0.insert(layer.digest.clone(), found.clone());
                found
            }
        };
        if &diff_id != expected {
            return Err(OciError::LayerDiffIdMismatch {
                archive: archive.to_path_buf(),
                member: name.clone(),
                position,
                expected: expected.clone(),
                found: diff_id,
            });
        }
        layers.push((name.clone(), layer, compression));
    }
    let oci = layers
        .iter()
        .any(|(_, _, compression)| *compression == Compression::Zstd);
    let layer_type = |compression: Compression| match (oci, compression) {
        (false, Compression::Gzip) => DOCKER_LAYER_GZIP,
        (false, _) => DOCKER_LAYER,
        (true, Compression::Gzip) => OCI_LAYER_GZIP,
        (true, Compression::Zstd) => OCI_LAYER_ZSTD,
        (true, _) => OCI_LAYER,
    };
    let (manifest_type, config_type) = match oci {
        true => (OCI_MANIFEST, OCI_CONFIG),
        false => (DOCKER_MANIFEST, DOCKER_CONFIG_MEDIA_TYPE),
    };
    let descriptor = |media_type: &str, member: &ArchiveMember| json!({"mediaType": media_type, "digest": member.digest.as_str(), "size": member.size});
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": descriptor(config_type, &config),
        "layers": layers
            .iter()
            .map(|(_, layer, compression)| descriptor(layer_type(*compression), layer))
            .collect::<Vec<_>>(),
    });
    let manifest = serde_json::to_vec(&manifest).expect("JSON values always serialize");
    let options = WriteOptions {
        media_type: Some(manifest_type.to_string()),
        ..WriteOptions::default()
    };
    let record = operation.write(manifest.as_slice(), &options)?;
    let mut known = |digest: &Digest, member: &str, size: u64| {
        contents
            .blobs
            .entry(digest.clone())
            .or_insert_with(|| ArchiveBlob {
                member: member.to_string(),
                size,
            });
    };
    known(&record.digest, DOCKER_MANIFEST_FILE, record.size);
    known(&config.digest, &image.config, config.size);
    for (name, layer, _) in &layers {
        known(&layer.digest, name, layer.size);
    }
    Ok(new_descriptor(manifest_type, &record.digest, record.size))
}

/// The digest a member's name gives: `<hex>.json` (a legacy config, named by the image ID) or
/// `blobs/<alg>/<hex>`.
fn digest_in_name(name: &str) -> Option<Digest> {
    let file = name.rsplit('/').next()?;
    if let Some(hex) = file.strip_suffix(".json") {
        return Digest::parse(&format!("sha256:{hex}")).ok();
    }
    let mut parts = name.trim_start_matches("./").split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("blobs"), Some(algorithm), Some(hex), None) => {
            Digest::parse(&format!("{algorithm}:{hex}")).ok()
        }
        _ => None,
    }
}

/// `rootfs.diff_ids` of an image config, or why it has none.
fn config_diff_ids(bytes: &[u8]) -> Result<Vec<Digest>, String> {
    let config: Value =
        serde_json::from_slice(bytes).map_err(|error| format!("is not JSON: {error}"))?;
    let diff_ids = config["rootfs"]["diff_ids"]
        .as_array()
        .ok_or("has no rootfs.diff_ids")?;
    diff_ids
        .iter()
        .map(|value| {
            let text = value.as_str().ok_or("has a diff ID that is not a string")?;
            Digest::parse(text).map_err(|error| format!("has diff ID {text:?}: {error}"))
        })
        .collect()
}

/// A stored layer's uncompressed digest (its diff ID) and how it is compressed: its own
/// digest when it is a plain tar, else the digest of what gzip or zstd decode it to, read
/// back from the store (the archive was read once; this reads the store).
fn diff_id_of(store: &Store, layer: &Digest) -> std::io::Result<(Digest, Compression)> {
    let head = sniff(
        BufReader::new(store.read(layer).map_err(std::io::Error::other)?),
        &[Compression::Gzip, Compression::Zstd],
    )?;
    let compression = head.compression();
    if compression == Compression::None {
        return Ok((layer.clone(), compression));
    }
    let (_, mut decoded) = open_by_magic(
        BufReader::with_capacity(1 << 16, store.read(layer).map_err(std::io::Error::other)?),
        &[compression],
        GzipMembers::All,
    )?;
    let algorithm = Algorithm::Sha256;
    let (digest, _) = crate::store::fsutil::hash_reader(algorithm, &mut decoded as &mut dyn Read)?;
    Ok((digest, compression))
}

/// What `docker load` and `podman load` read besides the OCI layout: one `manifest.json` image
/// (the config and layers of `manifest`, by their `blobs/` names), tagged `repo_tag`.
pub(super) fn docker_manifest_json(
    manifest: &[u8],
    repo_tag: Option<&str>,
    context: &str,
) -> OciResult<Vec<u8>> {
    let value: Value =
        serde_json::from_slice(manifest).map_err(|error| OciError::document(context, error))?;
    let path = |descriptor: &Value| -> OciResult<String> {
        let digest = descriptor["digest"]
            .as_str()
            .ok_or_else(|| OciError::document(context, "a descriptor without a digest"))?;
        let digest = Digest::parse(digest).map_err(|source| OciError::InvalidDigest {
            value: digest.to_string(),
            context: context.to_string(),
            source,
        })?;
        Ok(format!(
            "blobs/{}/{}",
            digest.algorithm().name(),
            digest.hex()
        ))
    };
    let layers = value["layers"]
        .as_array()
        .ok_or_else(|| OciError::document(context, "an image manifest without layers"))?
        .iter()
        .map(path)
        .collect::<OciResult<Vec<_>>>()?;
    let image = json!([{
        "Config": path(&value["config"])?,
        "RepoTags": repo_tag.map(|tag| vec![tag.to_string()]).unwrap_or_default(),
        "Layers": layers,
    }]);
    Ok(serde_json::to_vec(&image).expect("JSON values always serialize"))
}

/// Docker 25's index entry for an image: `io.containerd.image.name` the full name and
/// `org.opencontainers.image.ref.name` its tag.
pub(super) fn docker_index_entry(descriptor: &Descriptor, name: Option<&str>) -> Descriptor {
    let mut descriptor = descriptor.clone();
    let mut annotations = descriptor.annotations().clone().unwrap_or_default();
    annotations.remove(REF_NAME_ANNOTATION);
    if let Some(name) = name {
        let full = normalise_repo_tag(name);
        if let Some((_, tag)) = full.rsplit_once(':').filter(|(_, tag)| !tag.contains('/')) {
            annotations.insert(REF_NAME_ANNOTATION.to_string(), tag.to_string());
        }
        annotations.insert(IMAGE_NAME_ANNOTATION.to_string(), full);
    }
    descriptor.set_annotations((!annotations.is_empty()).then_some(annotations));
    descriptor
}

/// Where an archive read from standard input is said to be, in messages.
pub fn standard_input_name() -> PathBuf {
    PathBuf::from("<standard input>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_tags_normalise_as_docker_reads_them() {
        for (given, normal) in [
            ("busybox:latest", "docker.io/library/busybox:latest"),
            ("busybox", "docker.io/library/busybox:latest"),
            ("user/app:1", "docker.io/user/app:1"),
            ("docker.io/busybox:1", "docker.io/library/busybox:1"),
            ("index.docker.io/user/app:1", "docker.io/user/app:1"),
            ("quay.io/org/app:2", "quay.io/org/app:2"),
            ("localhost/app:3", "localhost/app:3"),
            ("localhost:5000/app:3", "localhost:5000/app:3"),
            (
                "registry.example.com:5000/a/b/c:d",
                "registry.example.com:5000/a/b/c:d",
            ),
        ] {
            assert_eq!(normalise_repo_tag(given), normal, "{given}");
        }
    }

    #[test]
    fn familiar_names_for_repo_tags() {
        assert_eq!(
            familiar_repo_tag("docker.io/library/busybox:1").as_deref(),
            Some("busybox:1")
        );
        assert_eq!(
            familiar_repo_tag("docker.io/user/app:1").as_deref(),
            Some("user/app:1")
        );
        assert_eq!(
            familiar_repo_tag("quay.io/a/b:c").as_deref(),
            Some("quay.io/a/b:c")
        );
        assert_eq!(familiar_repo_tag("app:1").as_deref(), Some("app:1"));
        assert_eq!(familiar_repo_tag("latest"), None);
        assert_eq!(familiar_repo_tag("localhost:5000/app"), None);
    }

    #[test]
    fn digests_in_member_names() {
        let hex = "d".repeat(64);
        assert_eq!(
            digest_in_name(&format!("{hex}.json")).unwrap().hex(),
            hex.as_str()
        );
        assert_eq!(
            digest_in_name(&format!("blobs/sha256/{hex}"))
                .unwrap()
                .hex(),
            hex.as_str()
        );
        assert!(digest_in_name("config.json").is_none());
        assert!(digest_in_name(&format!("{hex}/layer.tar")).is_none());
    }
}
