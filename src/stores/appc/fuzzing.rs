//! Entry point for the ACI fuzz target (`fuzz/`): the checks an import runs on an ACI's bytes
//! (decompression by magic, every tar entry, the manifest), without a store. Not a stable API;
//! hidden from the docs.

use std::io::Read;

use super::archive::{check_entries, decompressed, ArchiveFailure};
use super::manifest::Violation;

/// Checks `input` as [`AppcStore::import_reader`](super::AppcStore::import_reader) does;
/// returns the manifest's image name, or why the image is refused.
pub fn check_aci(input: impl Read) -> Result<String, String> {
    let describe = |violation: Violation| format!("{}: {}", violation.rule, violation.detail);
    let (_, mut tar_stream) = decompressed(input).map_err(|e| e.to_string())?;
    let facts = check_entries(&mut tar_stream).map_err(|failure| match failure {
        ArchiveFailure::Violation(violation) => describe(violation),
        ArchiveFailure::Read(error) => error.to_string(),
        ArchiveFailure::HeaderLimit(refused) => refused.to_string(),
    })?;
    // The import reads the rest too (it is part of the image ID): a corrupt trailer refuses.
    std::io::copy(&mut tar_stream, &mut std::io::sink()).map_err(|e| e.to_string())?;
    let (manifest, _) = facts.manifest;
    Ok(manifest.name)
}
