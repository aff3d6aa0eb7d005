//! A document's links, recorded as its extra data when it is committed, so the walks that
//! visit every live document (the GC's mark, a prune's plan) follow recorded edges instead of
//! reading, hashing and parsing each manifest back.
//!
//! The record is derived data: what [`super::graph::parse_document`] found in the verified
//! bytes at commit, written in the same batch as the document's owner mark. A document without
//! one (a store from before, or content written around the flavour) is read as before, and the
//! GC records what it read so the next walk need not. The extra data goes with the blob.
//!
//! Format (text, version first, one child a line, in document order):
//!
//! ```text
//! oci.links/1
//! r <size> <digest> <media type>
//! o <size> <digest> <media type>
//! ```
//!
//! `r` is a required child, `o` an optional one (a layer with URLs, a subject). The media
//! type ends the line; a child whose media type or digest could break a line is not
//! recordable, and its document is read instead.

use std::sync::Arc;

use foldhash::{HashMap, HashMapExt};

use oci_spec::image::Descriptor;

use super::descriptor::{digest_of, media_type_of, new_descriptor};
use super::graph::{Child, DocumentKind, DocumentLinks, LinkedChild};
use super::OciResult;
use crate::store::Store;
use crate::traits::{Digest, ExtraOp};

/// Extra data type of a document's recorded links.
pub const LINKS_DATA_TYPE: &str = "oci.links";
const HEADER: &str = "oci.links/1";

/// The record of `links` for `digest`, or `None` when a child cannot be written in the
/// format (the document is then read when walked).
pub fn links_record(digest: &Digest, links: &DocumentLinks) -> Option<ExtraOp> {
    let mut text = String::with_capacity(HEADER.len() + 120 * links.children.len());
    text.push_str(HEADER);
    for child in &links.children {
        let media_type = media_type_of(&child.descriptor);
        let child_digest = child.descriptor.digest().to_string();
        let printable = |s: &str| !s.is_empty() && !s.contains(['\n', '\r', ' ']);
        if !printable(&media_type) || !printable(&child_digest) {
            return None;
        }
        let kind = if child.optional { 'o' } else { 'r' };
        text.push('\n');
        text.push(kind);
        text.push(' ');
        text.push_str(&child.descriptor.size().to_string());
        text.push(' ');
        text.push_str(&child_digest);
        text.push(' ');
        text.push_str(&media_type);
    }
    Some(ExtraOp::Set {
        digest: digest.clone(),
        data_type: LINKS_DATA_TYPE.to_string(),
        value: text.into_bytes(),
    })
}

/// The children a record lists; `None` when it is not one this version reads (then the
/// document is read instead).
pub fn parse_links(value: &[u8]) -> Option<Vec<LinkedChild>> {
    let text = std::str::from_utf8(value).ok()?;
    let mut lines = text.split('\n');
    if lines.next()? != HEADER {
        return None;
    }
    let mut children = Vec::new();
    for line in lines {
        let mut fields = line.splitn(4, ' ');
        let optional = match fields.next()? {
            "r" => false,
            "o" => true,
            _ => return None,
        };
        let size: u64 = fields.next()?.parse().ok()?;
        let digest: Digest = fields.next()?.parse().ok()?;
        let media_type = fields.next()?;
        let descriptor: Descriptor = new_descriptor(media_type, &digest, size);
        children.push(LinkedChild {
            digest,
            is_document: DocumentKind::of(media_type).is_document(),
            child: Child {
                descriptor,
                optional,
            },
        });
    }
    Some(children)
}

/// Every recorded document's children, read in one listing; shared by the threads of a walk.
pub struct LinksSnapshot {
    children: HashMap<Digest, Arc<[LinkedChild]>>,
}

impl LinksSnapshot {
    pub fn read(store: &Store) -> OciResult<Self> {
        let mut children = HashMap::new();
        for (digest, value) in store.extra_of_type(LINKS_DATA_TYPE)? {
            if let Some(links) = parse_links(&value) {
                children.insert(digest, links.into());
            }
        }
        Ok(LinksSnapshot { children })
    }

    /// The recorded children of `digest`, if any.
    pub fn children(&self, digest: &Digest) -> Option<Arc<[LinkedChild]>> {
        self.children.get(digest).cloned()
    }
}

/// The records a walk could have used but had to read documents for: what it parsed, as extra
/// data to write. Only documents whose every child digest is valid are recorded.
pub fn missing_records<'a>(
    reached: impl IntoIterator<Item = &'a super::graph::Reached>,
) -> Vec<ExtraOp> {
    reached
        .into_iter()
        .filter(|r| r.document.is_some())
        .filter_map(|r| {
            let links = r.links.as_ref()?;
            let valid = links
                .children
                .iter()
                .all(|c| digest_of(&c.descriptor, "a child").is_ok());
            valid.then(|| links_record(&r.digest, links)).flatten()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn child(media_type: &str, byte: u8, size: u64, optional: bool) -> Child {
        let digest = Digest::of_bytes(crate::traits::Algorithm::Sha256, &[byte]);
        Child {
            descriptor: new_descriptor(media_type, &digest, size),
            optional,
        }
    }

    #[test]
    fn a_record_gives_back_the_children_in_order() {
        let links = DocumentLinks {
            children: vec![
                child("application/vnd.oci.image.config.v1+json", 1, 10, false),
                child(
                    "application/vnd.oci.image.layer.v1.tar+gzip",
                    2,
                    1 << 40,
                    true,
                ),
            ],
            ..DocumentLinks::default()
        };
        let digest = Digest::of_bytes(crate::traits::Algorithm::Sha256, b"doc");
        let Some(ExtraOp::Set { value, .. }) = links_record(&digest, &links) else {
            panic!("recordable");
        };
        let back = parse_links(&value).expect("readable");
        assert_eq!(back.len(), 2);
        for (a, b) in back.iter().zip(&links.children) {
            assert_eq!(a.child.descriptor.digest(), b.descriptor.digest());
            assert_eq!(a.digest.as_str(), b.descriptor.digest().to_string());
            assert_eq!(a.child.descriptor.size(), b.descriptor.size());
            assert_eq!(a.child.descriptor.media_type(), b.descriptor.media_type());
            assert_eq!(a.child.optional, b.optional);
            assert!(!a.is_document);
        }
    }

    #[test]
    fn a_document_without_children_is_recorded_as_such() {
        let digest = Digest::of_bytes(crate::traits::Algorithm::Sha256, b"doc");
        let Some(ExtraOp::Set { value, .. }) = links_record(&digest, &DocumentLinks::default())
        else {
            panic!("recordable");
        };
        assert_eq!(parse_links(&value).expect("readable").len(), 0);
    }

    #[test]
    fn unreadable_records_are_refused_not_guessed() {
        for bad in [
            &b"oci.links/2\nr 1 sha256:00 x"[..],
            b"",
            b"oci.links/1\nx 1 sha256:aa x",
            b"oci.links/1\nr one sha256:aa x",
            b"oci.links/1\nr 1 nodigest x",
            b"oci.links/1\nr 1",
        ] {
            assert!(
                parse_links(bad).is_none(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn a_media_type_that_would_break_a_line_is_not_recorded() {
        let links = DocumentLinks {
            children: vec![child("a\nb", 1, 1, false)],
            ..DocumentLinks::default()
        };
        let digest = Digest::of_bytes(crate::traits::Algorithm::Sha256, b"doc");
        assert!(links_record(&digest, &links).is_none());
    }
}
