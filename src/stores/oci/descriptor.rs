//! Helpers over the image-spec [`Descriptor`]: our validated [`Digest`] of it, and the ref-name
//! annotation.

use std::str::FromStr;

use oci_spec::image::{Descriptor, MediaType};

use super::error::{OciError, OciResult};
use crate::traits::Digest;

pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// The descriptor's digest as a store digest: only the algorithms the store accepts
/// (sha256, sha512), so an unknown algorithm is refused here, not silently stored.
pub fn digest_of(descriptor: &Descriptor, context: &str) -> OciResult<Digest> {
    let value = descriptor.digest().to_string();
    Digest::parse(&value).map_err(|source| OciError::InvalidDigest {
        value,
        context: context.to_string(),
        source,
    })
}

pub fn media_type_of(descriptor: &Descriptor) -> String {
    descriptor.media_type().to_string()
}

/// A descriptor of a store blob.
pub fn new_descriptor(media_type: &str, digest: &Digest, size: u64) -> Descriptor {
    let oci_digest = oci_spec::image::Digest::from_str(digest.as_str())
        .expect("a store digest is a valid image-spec digest");
    Descriptor::new(MediaType::from(media_type), size, oci_digest)
}

pub fn ref_name_of(descriptor: &Descriptor) -> Option<&str> {
    descriptor
        .annotations()
        .as_ref()?
        .get(REF_NAME_ANNOTATION)
        .map(String::as_str)
}

/// The descriptor with its ref-name annotation set to `name`.
pub fn with_ref_name(descriptor: &Descriptor, name: &str) -> Descriptor {
    let mut descriptor = descriptor.clone();
    let mut annotations = descriptor.annotations().clone().unwrap_or_default();
    annotations.insert(REF_NAME_ANNOTATION.to_string(), name.to_string());
    descriptor.set_annotations(Some(annotations));
    descriptor
}

/// The descriptor without its ref-name annotation: a stored ref's name is its key, so the
/// annotation from the layout it came from would only go stale on `tag`.
pub fn without_ref_name(descriptor: &Descriptor) -> Descriptor {
    let mut descriptor = descriptor.clone();
    let annotations = descriptor.annotations().clone().map(|mut annotations| {
        annotations.remove(REF_NAME_ANNOTATION);
        annotations
    });
    descriptor.set_annotations(annotations.filter(|a| !a.is_empty()));
    descriptor
}

pub fn parse_descriptor(bytes: &[u8], context: &str) -> OciResult<Descriptor> {
    serde_json::from_slice(bytes).map_err(|e| OciError::document(context, e))
}

pub fn descriptor_json(descriptor: &Descriptor) -> Vec<u8> {
    serde_json::to_vec(descriptor).expect("a descriptor always serializes")
}
