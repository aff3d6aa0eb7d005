//! Named refs: key/value entries `oci.ref/<name>` whose value is the descriptor JSON and which
//! reference the manifest (or index) blob, so the base store keeps the blob while the ref
//! exists and drops the ref if the blob is ever deleted.
//!
//! The value also carries what `list` shows and the descriptor alone does not: the platforms
//! (field [`PLATFORMS_FIELD`], written with the ref), so listing reads only the entries, never
//! the manifests. An image-spec descriptor allows extra fields, and readers of the descriptor
//! ignore it; an entry written before the field existed is listed by reading its documents.

use oci_spec::image::Descriptor;
use serde::{Deserialize, Serialize};

use super::descriptor::{
    descriptor_json, digest_of, media_type_of, new_descriptor, parse_descriptor, without_ref_name,
};
use super::error::{OciError, OciResult};
use super::graph::{parse_document, Child, DocumentKind, Walker, MAX_DOCUMENT_SIZE};
use super::ref_name::RefName;
use super::source::StoreSource;
use super::{OciStore, HOLDER, REF_DATA_TYPE};
use crate::store::StoreError;
use crate::traits::{Digest, KvEntry, KvKey};

/// The field of a ref entry's value that holds the platforms `list` shows (a JSON array of
/// `os/architecture[/variant]`), beside the descriptor's own fields.
pub const PLATFORMS_FIELD: &str = "oci-store.platforms";

/// What `list` reads of a ref entry's value: the descriptor's listed fields and the platforms
/// written with it (absent in entries from before they were recorded).
#[derive(Deserialize)]
struct ListedRefValue {
    #[serde(rename = "mediaType")]
    media_type: String,
    digest: String,
    size: u64,
    #[serde(rename = "oci-store.platforms")]
    platforms: Option<Vec<String>>,
}

/// A ref as `list` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RefInfo {
    /// The ref's name.
    pub name: String,
    /// Digest of the manifest or index it names.
    pub digest: Digest,
    /// Media type of that manifest or index.
    pub media_type: String,
    /// Size of that manifest or index in bytes.
    pub size: u64,
    /// `os/architecture[/variant]` of each manifest of an index, or of the image itself.
    pub platforms: Vec<String>,
    /// When it was last used (Unix ms): pulled, imported, exported, unpacked, checked or
    /// served; `None` when no use was recorded.
    pub last_used_unix_ms: Option<i64>,
}

impl OciStore<'_> {
    /// Stores `name -> descriptor`; the blob must be in the store. Callers hold the mutation
    /// lock.
    pub(super) fn write_ref(&self, name: &RefName, descriptor: &Descriptor) -> OciResult<()> {
        let descriptor = without_ref_name(descriptor);
        let digest = digest_of(&descriptor, &format!("ref {name}"))?;
        self.store.put_data(
            REF_DATA_TYPE,
            name.as_str(),
            &self.ref_value(&descriptor),
            Some(&digest),
        )?;
        Ok(())
    }

    /// The value of a ref entry naming `descriptor` (without its ref-name annotation): the
    /// descriptor JSON plus the platforms it covers, read now from the documents in the store
    /// (which must be there: refs are written after their blobs).
    pub(crate) fn ref_value(&self, descriptor: &Descriptor) -> Vec<u8> {
        let mut value = serde_json::to_value(descriptor).expect("a descriptor always serializes");
        let platforms = self.platforms_of(descriptor);
        if let serde_json::Value::Object(fields) = &mut value {
            fields.insert(PLATFORMS_FIELD.to_string(), platforms.into());
        } else {
            return descriptor_json(descriptor);
        }
        serde_json::to_vec(&value).expect("JSON values always serialize")
    }

    /// The descriptor a ref names.
    pub fn get_ref(&self, name: &str) -> OciResult<Descriptor> {
        let entry = self
            .store
            .get_data(REF_DATA_TYPE, name)?
            .ok_or_else(|| OciError::RefNotFound(name.to_string()))?;
        parse_descriptor(&entry.value, &format!("ref {name}"))
    }

    /// Every ref with its descriptor, in name order.
    pub fn ref_descriptors(&self) -> OciResult<Vec<(String, Descriptor)>> {
        self.store
            .list_data(REF_DATA_TYPE, "")?
            .into_iter()
            .map(|(name, entry)| {
                let descriptor = parse_descriptor(&entry.value, &format!("ref {name}"))?;
                Ok((name, descriptor))
            })
            .collect()
    }

    /// Every ref, in name order, with the platforms it covers: from the entries alone, except
    /// for entries written before the platforms were recorded in them, whose documents are
    /// read.
    pub fn list_refs(&self) -> OciResult<Vec<RefInfo>> {
        let last_used = self.store.names_last_used(&HOLDER)?;
        self.store
            .list_data(REF_DATA_TYPE, "")?
            .into_iter()
            .map(|(name, entry)| {
                let mut info = self.ref_info(name, &entry)?;
                info.last_used_unix_ms = last_used.get(&info.name).copied();
                Ok(info)
            })
            .collect()
    }

    fn ref_info(&self, name: String, entry: &KvEntry) -> OciResult<RefInfo> {
        let context = || format!("ref {name}");
        let listed: ListedRefValue =
            serde_json::from_slice(&entry.value).map_err(|e| OciError::document(context(), e))?;
        let platforms = match listed.platforms {
            Some(platforms) => platforms,
            None => self.platforms_of(&parse_descriptor(&entry.value, &context())?),
        };
        let digest = Digest::parse(&listed.digest).map_err(|source| OciError::InvalidDigest {
            value: listed.digest.clone(),
            context: context(),
            source,
        })?;
        Ok(RefInfo {
            digest,
            media_type: listed.media_type,
            size: listed.size,
            platforms,
            name,
            last_used_unix_ms: None,
        })
    }

    /// Makes `destination` name what `source` names (a copy: removing one leaves the other).
    /// An existing `destination` is replaced. `source` may also be the digest (or a unique
    /// prefix) of a manifest or index already in the store: the second step of "put the blobs
    /// now (held by a lease), tag later".
    pub fn tag(&self, source: &str, destination: &str) -> OciResult<()> {
        let destination = RefName::parse(destination)?;
        let _gc_lock = self.mutation_lock()?;
        let resolved = self.resolve_image(source)?;
        let descriptor = match resolved.name {
            Some(_) => resolved.descriptor,
            None => self.adopt_stored_image(&resolved.digest)?,
        };
        self.write_ref(&destination, &descriptor)
    }

    /// The descriptor of a manifest or index already in the store, once everything it reaches
    /// is checked present and marked as this flavour's (as an import would have), so the new
    /// ref makes it a GC root like any imported image. Callers hold the mutation lock.
    fn adopt_stored_image(&self, digest: &Digest) -> OciResult<Descriptor> {
        let record = self.store.info(digest)?;
        let media_type = self.document_media_type(&record)?;
        if !DocumentKind::of(&media_type).is_document() {
            return Err(OciError::NotAnImage {
                digest: digest.clone(),
                media_type,
            });
        }
        let descriptor = new_descriptor(&media_type, digest, record.size);
        let mut walker = Walker::new();
        walker.visit(
            vec![Child::required(descriptor.clone())],
            &mut StoreSource { store: self.store },
        )?;
        walker.require_complete("the store")?;
        for reached in &walker.reached {
            if self
                .store
                .claim_existing(&reached.digest, &HOLDER)?
                .is_none()
            {
                return Err(OciError::MissingBlob {
                    digest: reached.digest.clone(),
                    media_type: media_type_of(&reached.descriptor),
                    source_name: "the store".to_string(),
                });
            }
            self.record_referrer(reached)?;
        }
        Ok(descriptor)
    }

    /// The names of the refs that name `digest` (its manifest or index), in name order: one
    /// lookup of the entries that reference the blob.
    pub fn refs_naming(&self, digest: &Digest) -> OciResult<Vec<String>> {
        let mut names: Vec<String> = self
            .store
            .data_referencing(digest)?
            .into_iter()
            .filter(|key| key.data_type == REF_DATA_TYPE)
            .map(|key| key.key)
            .collect();
        names.sort();
        Ok(names)
    }

    /// Removes a ref; what it reached goes at the next OCI GC unless something else holds it.
    pub fn remove_ref(&self, name: &str) -> OciResult<()> {
        let _gc_lock = self.mutation_lock()?;
        if !self.store.remove_data(REF_DATA_TYPE, name)? {
            return Err(OciError::RefNotFound(name.to_string()));
        }
        let _ = self.store.forget_use(&HOLDER, name);
        let _ = self.store.unpin(&HOLDER, name);
        Ok(())
    }

    /// Records a use of the ref `name`, naming `digest` (best effort, throttled:
    /// `Store::record_use`): exports, unpacks, checks, imports, pulls and the server's reads.
    pub(crate) fn used(&self, name: &str, digest: &Digest) {
        self.store
            .record_use(&HOLDER, Some(name), std::slice::from_ref(digest));
    }

    /// Removes several refs as one step, all or nothing: a name that is not a ref refuses the
    /// whole call ([`OciError::RefNotFound`] naming it) and no ref is removed. One key/value
    /// transaction for all of them (`Store::remove_data_many`).
    pub fn remove_refs(&self, names: &[&str]) -> OciResult<()> {
        let _gc_lock = self.mutation_lock()?;
        let keys: Vec<KvKey> = names
            .iter()
            .map(|name| KvKey {
                data_type: REF_DATA_TYPE.to_string(),
                key: name.to_string(),
            })
            .collect();
        match self.store.remove_data_many(&keys) {
            Err(StoreError::EntryNotFound { key, .. }) => Err(OciError::RefNotFound(key)),
            Err(other) => Err(other.into()),
            Ok(()) => {
                for name in names {
                    let _ = self.store.forget_use(&HOLDER, name);
                    let _ = self.store.unpin(&HOLDER, name);
                }
                Ok(())
            }
        }
    }

    /// Platforms of an index's manifests, or of an image (its descriptor's platform, else its
    /// config). Best effort: what cannot be read contributes nothing.
    fn platforms_of(&self, descriptor: &Descriptor) -> Vec<String> {
        if let Some(platform) = descriptor.platform() {
            return vec![format_platform(
                &platform.os().to_string(),
                &platform.architecture().to_string(),
                platform.variant().as_deref(),
            )];
        }
        let media_type = media_type_of(descriptor);
        let kind = DocumentKind::of(&media_type);
        let Some(links) = self.read_links(descriptor, kind) else {
            return Vec::new();
        };
        match kind {
            DocumentKind::Index => links
                .children
                .iter()
                .filter(|child| !child.optional)
                .filter_map(|child| child.descriptor.platform().as_ref())
                .map(|p| {
                    format_platform(
                        &p.os().to_string(),
                        &p.architecture().to_string(),
                        p.variant().as_deref(),
                    )
                })
                .collect(),
            DocumentKind::Manifest => links
                .children
                .first()
                .and_then(|config| self.platform_of_config(&config.descriptor))
                .into_iter()
                .collect(),
            _ => Vec::new(),
        }
    }

    fn read_links(
        &self,
        descriptor: &Descriptor,
        kind: DocumentKind,
    ) -> Option<super::graph::DocumentLinks> {
        if !kind.is_document() {
            return None;
        }
        let digest = digest_of(descriptor, "").ok()?;
        let bytes = self.store.read_to_vec(&digest, MAX_DOCUMENT_SIZE).ok()?;
        parse_document(kind, &media_type_of(descriptor), &digest, &bytes).ok()
    }

    fn platform_of_config(&self, config: &Descriptor) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct ImageConfigPlatform {
            os: Option<String>,
            architecture: Option<String>,
            variant: Option<String>,
        }
        let digest = digest_of(config, "").ok()?;
        let bytes = self.store.read_to_vec(&digest, MAX_DOCUMENT_SIZE).ok()?;
        let platform: ImageConfigPlatform = serde_json::from_slice(&bytes).ok()?;
        Some(format_platform(
            platform.os.as_deref()?,
            platform.architecture.as_deref()?,
            platform.variant.as_deref(),
        ))
    }
}

fn format_platform(os: &str, architecture: &str, variant: Option<&str>) -> String {
    match variant {
        Some(variant) if !variant.is_empty() => format!("{os}/{architecture}/{variant}"),
        _ => format!("{os}/{architecture}"),
    }
}
