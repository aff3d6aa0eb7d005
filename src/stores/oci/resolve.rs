//! The one resolver of what a user typed to name a stored image: a ref, a full digest
//! (`sha256:…`, `sha256-…`) or a unique digest prefix (`sha256:840d`, bare `840db1`). Every
//! command that takes a stored image (`inspect`, `cat`, `check`, `unpack`, `export`, `tag`,
//! `push`) goes through it, so all of them accept the same spellings and fail with the same
//! errors: a prefix too short, a prefix matching several blobs (listing them), a digest that
//! does not parse, or nothing of that name (with the closest refs as suggestions).

use oci_spec::image::Descriptor;

use super::descriptor::new_descriptor;
use super::error::{OciError, OciResult};
use super::graph::{DocumentKind, MAX_DOCUMENT_SIZE};
use super::OciStore;
use crate::store::StoreError;
use crate::traits::{Digest, DigestPrefix};

/// A stored image (or, for [`OciStore::resolve_stored`], any blob) as the user named it.
#[derive(Clone, Debug)]
pub struct ResolvedImage {
    /// The ref, when one was named; `None` for a digest or prefix.
    pub name: Option<String>,
    /// The descriptor the ref names, or one made from the blob's index record.
    pub descriptor: Descriptor,
    /// Its digest.
    pub digest: Digest,
}

impl ResolvedImage {
    /// How messages and reports name it: the ref, else the full digest.
    pub fn label(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.digest.to_string())
    }
}

/// How the text reads when it is not a stored ref.
enum Spelling {
    /// `algorithm:hex` or `algorithm-hex` of a known algorithm: only a digest is meant.
    Digest,
    /// Only lowercase hex: a digest prefix (or a ref that does not exist).
    BareHex,
    /// Anything else: a ref name.
    Name,
}

fn spelling_of(text: &str) -> Spelling {
    let algorithm_prefixed = ["sha256:", "sha512:", "sha256-", "sha512-"]
        .iter()
        .any(|prefix| text.starts_with(prefix));
    if algorithm_prefixed {
        Spelling::Digest
    } else if !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Spelling::BareHex
    } else {
        Spelling::Name
    }
}

impl OciStore<'_> {
    /// Resolves a ref, full digest or unique digest prefix to what it names; a digest may be
    /// any stored blob (`cat`, `inspect`).
    pub fn resolve_stored(&self, text: &str) -> OciResult<ResolvedImage> {
        match self.get_ref(text) {
            Ok(descriptor) => {
                let digest = super::descriptor::digest_of(&descriptor, &format!("ref {text}"))?;
                return Ok(ResolvedImage {
                    name: Some(text.to_string()),
                    descriptor,
                    digest,
                });
            }
            Err(OciError::RefNotFound(_)) => {}
            Err(other) => return Err(other),
        }
        let digest = match spelling_of(text) {
            Spelling::Name => return Err(OciError::RefNotFound(text.to_string())),
            Spelling::Digest => {
                DigestPrefix::parse(text).map_err(OciError::DigestArgument)?;
                self.store.resolve(text)?
            }
            Spelling::BareHex => {
                DigestPrefix::parse(text).map_err(OciError::DigestArgument)?;
                match self.store.resolve(text) {
                    Ok(digest) => digest,
                    // Neither a ref nor a stored digest: reported as the ref it may have been
                    // meant as, so the suggestions of stored refs follow.
                    Err(StoreError::NotFound(_)) => {
                        return Err(OciError::RefNotFound(text.to_string()))
                    }
                    Err(other) => return Err(other.into()),
                }
            }
        };
        let record = self.store.info(&digest)?;
        Ok(ResolvedImage {
            name: None,
            descriptor: new_descriptor(&self.document_media_type(&record)?, &digest, record.size),
            digest,
        })
    }

    /// [`OciStore::resolve_stored`] for commands that need an image: a digest must be that of
    /// a stored manifest or index.
    pub fn resolve_image(&self, text: &str) -> OciResult<ResolvedImage> {
        let resolved = self.resolve_stored(text)?;
        if resolved.name.is_none() {
            let media_type = resolved.descriptor.media_type().to_string();
            if !DocumentKind::of(&media_type).is_document() {
                return Err(OciError::NotAnImage {
                    digest: resolved.digest,
                    media_type,
                });
            }
        }
        Ok(resolved)
    }

    /// The media type of a stored blob, looking into it when it was put without one (`blob
    /// put` records `application/octet-stream`): a manifest or index names its own type.
    pub(super) fn document_media_type(
        &self,
        record: &crate::traits::BlobRecord,
    ) -> OciResult<String> {
        if DocumentKind::of(&record.media_type).is_document() || record.size > MAX_DOCUMENT_SIZE {
            return Ok(record.media_type.clone());
        }
        // Content that cannot be read is reported by whatever reads it next, as such.
        let Ok(bytes) = self.store.read_to_vec(&record.digest, MAX_DOCUMENT_SIZE) else {
            return Ok(record.media_type.clone());
        };
        Ok(serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|json| json.get("mediaType")?.as_str().map(str::to_string))
            .filter(|media_type| DocumentKind::of(media_type).is_document())
            .unwrap_or_else(|| record.media_type.clone()))
    }
}
