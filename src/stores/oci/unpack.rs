//! `unpack`: an image's root file system, rendered from the store as `umoci unpack` does, by
//! the one safe renderer ([`crate::stores::rootfs`]).
//!
//! The ref is resolved to one image manifest (an index is narrowed to a platform: the one
//! asked for, else this machine's), its layers are applied lowest first with whiteouts, each
//! layer blob hashed as it streams and checked against its digest and size (and the
//! uncompressed stream against the config's `diff_ids`), so nothing unverified is left in
//! the result. The tree is built in a directory beside the target and renamed into place
//! only when every layer applied and verified. The mutation lock is held throughout, so a GC
//! cannot sweep a layer mid-unpack.

use std::path::{Path, PathBuf};

use oci_spec::image::Descriptor;
use serde::Serialize;

use super::descriptor::{digest_of, media_type_of};
use super::error::{OciError, OciResult};
use super::graph::{
    parse_document, verify_document, ContentSource, DocumentKind, Fetched, MAX_DOCUMENT_SIZE,
};
use super::source::StoreSource;
use super::validate::MAX_INDEX_NESTING;
use super::OciStore;
use crate::store::{ProgressRead, StoreError, Totals};
use crate::stores::rootfs::{
    decompress, render_into_new_directory, AbsoluteNames, ApplyOptions, ApplyReport, Render,
    RootfsError, VerifyingReader,
};
use crate::traits::Digest;

/// `os/architecture[/variant]`, as in an image index's `platform`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Platform {
    /// Operating system, e.g. `linux`.
    pub os: String,
    /// CPU architecture in Go's names, e.g. `amd64`, `arm64`.
    pub architecture: String,
    /// Architecture variant, e.g. `v8` for `arm64`, if any.
    pub variant: Option<String>,
}

impl Platform {
    /// Parses `os/architecture[/variant]` (e.g. `linux/arm64/v8`); [`OciError::Invalid`] otherwise.
    pub fn parse(text: &str) -> OciResult<Platform> {
        let parts: Vec<&str> = text.split('/').collect();
        match parts[..] {
            [os, architecture] if !os.is_empty() && !architecture.is_empty() => Ok(Platform {
                os: os.to_string(),
                architecture: architecture.to_string(),
                variant: None,
            }),
            [os, architecture, variant]
                if !os.is_empty() && !architecture.is_empty() && !variant.is_empty() =>
            {
                Ok(Platform {
                    os: os.to_string(),
                    architecture: architecture.to_string(),
                    variant: Some(variant.to_string()),
                })
            }
            _ => Err(OciError::Invalid(format!(
                "platform {text:?} is not os/architecture[/variant] (e.g. linux/arm64/v8)"
            ))),
        }
    }

    /// This machine, in the image-spec's (Go's) names.
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "x86" => "386",
            "aarch64" => "arm64",
            "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
            "powerpc64" => "ppc64",
            "mips64" if cfg!(target_endian = "little") => "mips64le",
            "loongarch64" => "loong64",
            other => other,
        };
        Platform {
            os: std::env::consts::OS.to_string(),
            architecture: architecture.to_string(),
            variant: None,
        }
    }

    /// Whether an index entry's platform is this one; no variant asked matches any variant.
    fn matches(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        self.os == os
            && self.architecture == architecture
            && match &self.variant {
                Some(wanted) => variant == Some(wanted.as_str()),
                None => true,
            }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// How [`OciStore::unpack`] renders.
#[derive(Clone, Debug, Default)]
pub struct UnpackOptions {
    /// The image to take from an index; `None`: this machine's platform.
    pub platform: Option<Platform>,
    /// Render as an unprivileged user would even when running as root (files owned by the
    /// caller, device nodes skipped), like `umoci unpack --rootless`. Without it, owners and
    /// device nodes are kept only when running as root.
    pub rootless: bool,
}

/// One layer as it was applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UnpackedLayer {
    /// Digest of the layer blob.
    pub digest: Digest,
    /// The layer's media type (tells its compression).
    pub media_type: String,
    /// The layer blob's size in bytes (compressed, as stored).
    pub size: u64,
}

/// What [`OciStore::unpack`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UnpackReport {
    /// The ref unpacked.
    pub name: String,
    /// The image manifest that was unpacked (chosen from the index, if the ref names one).
    pub manifest: Digest,
    /// The platform of the index entry chosen, if the ref names an index.
    pub platform: Option<String>,
    /// The directory the root file system was written to.
    pub target: PathBuf,
    /// The layers applied, bottom first.
    pub layers: Vec<UnpackedLayer>,
    /// The layers' counts added up.
    pub applied: ApplyReport,
}

impl From<RootfsError> for OciError {
    fn from(error: RootfsError) -> Self {
        OciError::Render(Box::new(error))
    }
}

impl OciStore<'_> {
    /// Renders the image `name` names into `target`, which must not exist (or be an empty
    /// directory).
    pub fn unpack(
        &self,
        name: &str,
        target: &Path,
        options: &UnpackOptions,
    ) -> OciResult<UnpackReport> {
        let _gc_lock = self.mutation_lock()?;
        let resolved = self.resolve_image(name)?;
        if let Some(name) = &resolved.name {
            self.used(name, &resolved.digest);
        }
        let label = resolved.label();
        let name = label.as_str();
        let wanted = options.platform.clone().unwrap_or_else(Platform::host);
        let (manifest, platform) = self.select_manifest(name, resolved.descriptor, &wanted, 0)?;
        let manifest_digest = digest_of(&manifest, &format!("ref {name}"))?;
        let manifest_type = media_type_of(&manifest);
        let bytes = self.verified_document(&manifest_digest, &manifest, true)?;
        let links = parse_document(
            DocumentKind::Manifest,
            &manifest_type,
            &manifest_digest,
            &bytes,
        )?;
        let mut children = links.children.into_iter();
        let config = children
            .next()
            .ok_or_else(|| OciError::document(&manifest_type, "a manifest needs a config"))?;
        let diff_ids = self.diff_ids(&config.descriptor)?;
        if let (Some(asked), None) = (&options.platform, &platform) {
            // A single image, not an index: its config says what platform it is for, and an
            // explicit --platform it does not match is refused, not silently ignored.
            if let Some(own) = self.config_platform(&config.descriptor)? {
                let (os, architecture, variant) = &own;
                if !asked.matches(os, architecture, variant.as_deref()) {
                    let own = match variant {
                        Some(variant) => format!("{os}/{architecture}/{variant}"),
                        None => format!("{os}/{architecture}"),
                    };
                    return Err(OciError::Invalid(format!(
                        "ref {name} is an image for {own} only (not an index of platforms): \
                         it has no image for {asked}; leave out --platform to unpack it"
                    )));
                }
            }
        }
        let mut layers: Vec<Descriptor> = children.map(|child| child.descriptor).collect();
        // `parse_document` lists a `subject` last: a link to another image, not a layer.
        if links.subject.is_some() {
            layers.pop();
        }

        let apply_options = if options.rootless {
            ApplyOptions::rootless()
        } else {
            ApplyOptions::for_current_user()
        }
        // Layers that umoci writes name their root `/`: read as the other OCI tools do.
        .with_absolute_names(AbsoluteNames::InTarget);
        let applied = render_into_new_directory(target, |staging| {
            self.apply_layers(staging, &layers, diff_ids.as_deref(), &apply_options)
        })?;
        Ok(UnpackReport {
            name: label.clone(),
            manifest: manifest_digest,
            platform,
            target: target.to_path_buf(),
            layers: layers
                .iter()
                .map(|layer| {
                    Ok(UnpackedLayer {
                        digest: digest_of(layer, "a layer descriptor")?,
                        media_type: media_type_of(layer),
                        size: layer.size(),
                    })
                })
                .collect::<OciResult<_>>()?,
            applied,
        })
    }

    /// Follows indexes down to the image manifest for `wanted`.
    fn select_manifest(
        &self,
        name: &str,
        descriptor: Descriptor,
        wanted: &Platform,
        depth: usize,
    ) -> OciResult<(Descriptor, Option<String>)> {
        let media_type = media_type_of(&descriptor);
        match DocumentKind::of(&media_type) {
            DocumentKind::Manifest => return Ok((descriptor, None)),
            DocumentKind::Index if depth < MAX_INDEX_NESTING => {}
            DocumentKind::Index => {
                return Err(OciError::Invalid(format!(
                    "ref {name}: indexes nested more than {MAX_INDEX_NESTING} deep"
                )))
            }
            _ => {
                return Err(OciError::Invalid(format!(
                    "ref {name} names a {media_type}, not an image manifest or index: \
                     there is no root file system to unpack"
                )))
            }
        }
        let digest = digest_of(&descriptor, &format!("ref {name}"))?;
        let bytes = self.verified_document(&digest, &descriptor, true)?;
        let links = parse_document(DocumentKind::Index, &media_type, &digest, &bytes)?;
        let mut offered = Vec::new();
        for child in links.children.iter().filter(|child| !child.optional) {
            let Some(platform) = child.descriptor.platform() else {
                continue;
            };
            let (os, architecture) = (
                platform.os().to_string(),
                platform.architecture().to_string(),
            );
            let variant = platform.variant().as_deref();
            let label = match variant {
                Some(variant) => format!("{os}/{architecture}/{variant}"),
                None => format!("{os}/{architecture}"),
            };
            if wanted.matches(&os, &architecture, variant) {
                let (manifest, _) =
                    self.select_manifest(name, child.descriptor.clone(), wanted, depth + 1)?;
                return Ok((manifest, Some(label)));
            }
            offered.push(label);
        }
        Err(OciError::Invalid(format!(
            "ref {name} has no image for {wanted} (it has: {}); choose one with --platform",
            if offered.is_empty() {
                "none with a platform".to_string()
            } else {
                offered.join(", ")
            }
        )))
    }

    /// A document's bytes from the store, checked against its descriptor's digest and size.
    fn verified_document(
        &self,
        digest: &Digest,
        descriptor: &Descriptor,
        document: bool,
    ) -> OciResult<Vec<u8>> {
        if !document {
            let bytes = self.store.read_to_vec(digest, MAX_DOCUMENT_SIZE)?;
            verify_document(digest, descriptor.size(), &bytes).map_err(|reason| {
                OciError::Invalid(format!("blob {digest} in the store: {reason}"))
            })?;
            return Ok(bytes);
        }
        match (StoreSource { store: self.store }).fetch(digest, descriptor, true)? {
            Fetched::Document(bytes) => Ok(bytes),
            Fetched::Absent | Fetched::Present | Fetched::Linked(_) => Err(OciError::MissingBlob {
                digest: digest.clone(),
                media_type: media_type_of(descriptor),
                source_name: "the store".to_string(),
            }),
            Fetched::Corrupt(reason) => Err(OciError::Invalid(format!(
                "blob {digest} in the store is corrupt: {reason}"
            ))),
        }
    }

    /// The config's `rootfs.diff_ids` (digests of the uncompressed layers), when it has them.
    /// `os`, `architecture` and `variant` of an image config, when it names them.
    fn config_platform(
        &self,
        config: &Descriptor,
    ) -> OciResult<Option<(String, String, Option<String>)>> {
        let digest = digest_of(config, "the image config")?;
        if config.size() > MAX_DOCUMENT_SIZE {
            return Ok(None);
        }
        let bytes = self.verified_document(&digest, config, false)?;
        let json: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| OciError::document(format!("image config {digest}"), e))?;
        let field = |name: &str| json.get(name).and_then(|v| v.as_str()).map(str::to_string);
        Ok(match (field("os"), field("architecture")) {
            (Some(os), Some(architecture)) => Some((os, architecture, field("variant"))),
            _ => None,
        })
    }

    fn diff_ids(&self, config: &Descriptor) -> OciResult<Option<Vec<Digest>>> {
        let digest = digest_of(config, "the image config")?;
        if config.size() > MAX_DOCUMENT_SIZE {
            return Err(OciError::DocumentTooLarge {
                digest: digest.to_string(),
                media_type: media_type_of(config),
                size: config.size(),
                limit: MAX_DOCUMENT_SIZE,
            });
        }
        let bytes =
            self.verified_document(&digest, config, false)
                .map_err(|error| match error {
                    OciError::Store(store) if matches!(*store, StoreError::NotFound(_)) => {
                        OciError::MissingBlob {
                            digest: digest.clone(),
                            media_type: media_type_of(config),
                            source_name: "the store".to_string(),
                        }
                    }
                    other => other,
                })?;
        let json: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| OciError::document(format!("image config {digest}"), e))?;
        let Some(ids) = json
            .pointer("/rootfs/diff_ids")
            .and_then(|ids| ids.as_array())
        else {
            return Ok(None);
        };
        ids.iter()
            .map(|id| {
                let text = id.as_str().unwrap_or_default();
                Digest::parse(text).map_err(|source| OciError::InvalidDigest {
                    value: text.to_string(),
                    context: format!("rootfs.diff_ids of image config {digest}"),
                    source,
                })
            })
            .collect::<OciResult<Vec<_>>>()
            .map(Some)
    }

    fn apply_layers(
        &self,
        staging: &Path,
        layers: &[Descriptor],
        diff_ids: Option<&[Digest]>,
        options: &ApplyOptions,
    ) -> OciResult<ApplyReport> {
        // diff_ids that do not pair up with the layers cannot be checked: a broken config.
        if let Some(ids) = diff_ids {
            if !ids.is_empty() && ids.len() != layers.len() {
                return Err(OciError::Invalid(format!(
                    "the image config lists {} diff_ids for {} layers",
                    ids.len(),
                    layers.len()
                )));
            }
        }
        let mut total = ApplyReport::default();
        // One render for all the layers: directories get their modes after the last one.
        let mut render = Render::begin(staging)?;
        let layer_bytes = layers.iter().map(Descriptor::size).sum();
        self.progress.start(
            "unpacking",
            Totals::items_and_bytes(layers.len() as u64, layer_bytes),
        );
        for (position, layer) in layers.iter().enumerate() {
            let digest = digest_of(layer, "a layer descriptor")?;
            let media_type = media_type_of(layer);
            let blob = self.store.read(&digest).map_err(|error| match error {
                StoreError::NotFound(_) => OciError::MissingBlob {
                    digest: digest.clone(),
                    media_type: media_type.clone(),
                    source_name: "the store".to_string(),
                },
                other => other.into(),
            })?;
            let what = format!("layer {digest}");
            let blob = ProgressRead::new(blob, self.progress);
            let mut verified =
                VerifyingReader::new(blob, digest.clone(), Some(layer.size()), &what);
            let diff_id = diff_ids.and_then(|ids| ids.get(position));
            let applied = apply_one_layer(
                &mut verified,
                &media_type,
                &digest,
                diff_id,
                &mut render,
                options,
            );
            // Read to the end and checked even when applying failed: a damaged blob is the
            // cause to report, not the archive error it led to.
            verified.finish()?;
            let report = applied.map_err(|error| RootfsError::InLayer {
                layer: digest.to_string(),
                source: Box::new(error),
            })?;
            total.add(&report);
            self.progress.item_done();
        }
        render.finish()?;
        self.progress.finish();
        Ok(total)
    }
}

/// Decompresses and applies one layer, checking the uncompressed stream against its diff_id.
fn apply_one_layer(
    blob: &mut impl std::io::Read,
    media_type: &str,
    digest: &Digest,
    diff_id: Option<&Digest>,
    render: &mut Render,
    options: &ApplyOptions,
) -> Result<ApplyReport, RootfsError> {
    let tar = decompress(blob, Some(media_type), digest.as_str())?;
    match diff_id {
        Some(diff_id) => {
            let what = format!("uncompressed layer {digest} (diff_id)");
            let mut uncompressed = VerifyingReader::new(tar, diff_id.clone(), None, what);
            let report = render.apply_layer(&mut uncompressed, options)?;
            uncompressed.finish()?;
            Ok(report)
        }
        None => render.apply_layer(tar, options),
    }
}
