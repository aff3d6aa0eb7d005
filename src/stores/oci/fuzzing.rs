//! Entry points for the fuzz targets (`fuzz/`): the parsers and checks an import runs on
//! untrusted bytes, reachable without a store, so a target runs thousands of inputs a second.
//! Not a stable API; hidden from the docs.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use oci_spec::image::{Descriptor, MediaType};

pub use super::archive::ArchiveLimits;
use super::archive::{read_archive, SinkMember};
use super::graph::{verify_document, Child, ContentSource, Fetched, Walker, MAX_DOCUMENT_SIZE};
use super::layout::open_regular;
use super::OciResult;
use crate::traits::{Algorithm, Digest};
use crate::util::io_context::IoResultExt;

/// Blobs held in memory under their sha256 and sha512 digests.
struct MemorySource {
    blobs: HashMap<Digest, Vec<u8>>,
    strict: bool,
}

impl ContentSource for MemorySource {
    fn name(&self) -> String {
        "the fuzz input".to_string()
    }

    fn fetch(
        &mut self,
        digest: &Digest,
        descriptor: &Descriptor,
        document: bool,
    ) -> OciResult<Fetched> {
        let Some(bytes) = self.blobs.get(digest) else {
            return Ok(Fetched::Absent);
        };
        if !document {
            return Ok(Fetched::Present);
        }
        if bytes.len() as u64 > MAX_DOCUMENT_SIZE {
            return Ok(Fetched::Corrupt("over the document limit".to_string()));
        }
        Ok(match verify_document(digest, descriptor.size(), bytes) {
            Ok(()) => Fetched::Document(bytes.clone()),
            Err(reason) => Fetched::Corrupt(reason),
        })
    }

    fn strict(&self) -> bool {
        self.strict
    }
}

/// Walks from `blobs[0]`, named as `media_type`, through every blob of `blobs` (each found
/// under its own digest), the way an import (`strict`) or the store's own walks do. Returns
/// how many blobs the walk reached.
pub fn walk(media_type: &str, blobs: &[Vec<u8>], strict: bool) -> OciResult<usize> {
    let Some(first) = blobs.first() else {
        return Ok(0);
    };
    let mut source = MemorySource {
        blobs: HashMap::new(),
        strict,
    };
    for bytes in blobs {
        for algorithm in Algorithm::ALL {
            source
                .blobs
                .insert(Digest::of_bytes(algorithm, bytes), bytes.clone());
        }
    }
    let root_digest = Digest::of_bytes(Algorithm::Sha256, first);
    let root = Descriptor::new(
        MediaType::from(media_type),
        first.len() as u64,
        oci_spec::image::Digest::try_from(root_digest.as_str()).expect("a valid digest"),
    );
    let mut walker = Walker::new();
    walker.visit(vec![Child::required(root)], &mut source)?;
    walker.require_complete("the fuzz input")?;
    Ok(walker.reached.len())
}

/// Reads an `oci-archive` file as an import does, draining each blob member, and lists the
/// layout's entries. Returns how many blob members it read.
pub fn read_oci_archive(archive: &Path, limits: ArchiveLimits) -> OciResult<usize> {
    let mut sink = |member: &SinkMember<'_>, content: &mut dyn Read| -> OciResult<Digest> {
        let mut hasher = Algorithm::Sha256.hasher();
        let mut buffer = [0u8; 8192];
        loop {
            let read = content.read(&mut buffer).io_context("draining", archive)?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
        }
        Ok(member.expected.cloned().unwrap_or_else(|| hasher.finish()))
    };
    let file = open_regular(archive)?;
    let contents = read_archive(archive, file, &limits, &mut sink)?;
    let _ = contents.entries(archive)?;
    Ok(contents.blobs.len())
}
