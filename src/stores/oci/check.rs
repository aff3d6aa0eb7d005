//! "Is everything this ref needs present?" — and, with verify, is it intact.

use std::io::Read;

use serde::Serialize;

use super::descriptor::media_type_of;
use super::error::{OciError, OciResult};
use super::graph::{Child, Walker};
use super::source::StoreSource;
use super::OciStore;
use crate::store::StoreError;
use crate::traits::{Digest, Hasher};
use crate::util::io_context::IoContext;

/// A blob an image reaches that the store does not have.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MissingBlob {
    /// Its digest.
    pub digest: Digest,
    /// The media type the descriptor gives it.
    pub media_type: String,
}

/// What [`OciStore::check`] found for one ref.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// The ref checked.
    pub name: String,
    /// Digest of the manifest or index the ref names.
    pub digest: Digest,
    /// Blobs reached and present.
    pub blobs_present: u64,
    /// Bytes of those blobs.
    pub bytes_present: u64,
    /// Blobs the ref needs that the store does not have.
    pub missing: Vec<MissingBlob>,
    /// Non-distributable layers (with `urls`) and subjects that are absent: allowed.
    pub absent_optional: Vec<MissingBlob>,
    /// Blobs whose content does not hash to their digest (manifests always; every blob with
    /// verify), with the reason.
    pub corrupt: Vec<(Digest, String)>,
    /// Whether every present blob was rehashed (`verify`); otherwise only the documents were.
    pub verified: bool,
}

impl CheckReport {
    /// Whether the image is whole: nothing missing, nothing corrupt.
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty() && self.corrupt.is_empty()
    }
}

impl OciStore<'_> {
    /// Walks what `name` reaches and reports what is missing; with `verify`, rehashes every
    /// present blob.
    pub fn check(&self, name: &str, verify: bool) -> OciResult<CheckReport> {
        // Shared: a GC cannot run meanwhile, so nothing vanishes under the walk.
        let _gc_lock = self.mutation_lock()?;
        let resolved = self.resolve_image(name)?;
        if let Some(name) = &resolved.name {
            self.used(name, &resolved.digest);
        }
        let label = resolved.label();
        let (descriptor, digest) = (resolved.descriptor, resolved.digest);
        let mut walker = Walker::new();
        walker.visit(
            vec![Child::required(descriptor)],
            &mut StoreSource { store: self.store },
        )?;
        let to_missing = |(digest, descriptor): &(Digest, super::Descriptor)| MissingBlob {
            digest: digest.clone(),
            media_type: media_type_of(descriptor),
        };
        let mut report = CheckReport {
            name: label,
            digest,
            blobs_present: walker.reached.len() as u64,
            bytes_present: walker.reached.iter().map(|r| r.descriptor.size()).sum(),
            missing: walker.missing.iter().map(to_missing).collect(),
            absent_optional: walker.absent_optional.iter().map(to_missing).collect(),
            corrupt: walker.corrupt.clone(),
            verified: verify,
        };
        if verify {
            for reached in walker.reached.iter().filter(|r| r.document.is_none()) {
                match self.rehash(&reached.digest, reached.descriptor.size()) {
                    Ok(None) => {}
                    Ok(Some(reason)) => report.corrupt.push((reached.digest.clone(), reason)),
                    // Indexed, but its content is gone (damage fsck also reports): name it as
                    // missing rather than fail the whole check.
                    Err(OciError::Store(error)) if matches!(*error, StoreError::NotFound(_)) => {
                        report.blobs_present -= 1;
                        report.bytes_present -= reached.descriptor.size();
                        report.missing.push(MissingBlob {
                            digest: reached.digest.clone(),
                            media_type: media_type_of(&reached.descriptor),
                        });
                    }
                    Err(error) => return Err(error),
                }
            }
        }
        Ok(report)
    }

    /// Streams a blob through its hash; `Some(reason)` if it does not match.
    fn rehash(&self, digest: &Digest, expected_size: u64) -> OciResult<Option<String>> {
        let mut reader = self.store.read(digest)?;
        let mut hasher = Hasher::new(digest.algorithm());
        let mut buffer = vec![0u8; 1 << 20];
        let mut size = 0u64;
        loop {
            let read = reader
                .read(&mut buffer)
                .map_err(|e| IoContext::new("reading blob", digest.to_string(), e))?;
            if read == 0 {
                break;
            }
            size += read as u64;
            hasher.update(&buffer[..read]);
        }
        let actual = hasher.finish();
        if &actual != digest {
            return Ok(Some(format!("content hashes to {actual}")));
        }
        if size != expected_size {
            return Ok(Some(format!(
                "size is {size} bytes, the descriptor says {expected_size}"
            )));
        }
        Ok(None)
    }
}
