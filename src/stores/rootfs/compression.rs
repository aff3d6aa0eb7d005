//! Layer compression: what the media type declares (OCI and Docker layer types), checked
//! against the content's magic bytes ([`crate::util::compression`]) before anything is
//! decompressed.

use std::io::{BufReader, Read};

use super::error::{RootfsError, RootfsResult};
pub use crate::util::compression::Compression;
use crate::util::compression::{sniff, GzipMembers};

/// What a layer may be compressed with; other magic bytes are read as a plain tar.
const LAYER_COMPRESSIONS: &[Compression] = &[Compression::Gzip, Compression::Zstd];

/// The read buffer in front of the decoder.
const BUFFER_SIZE: usize = 64 * 1024;

/// Layer media types by prefix; the suffix after it names the compression.
const LAYER_TYPE_PREFIXES: [&str; 4] = [
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.foreign.diff.tar",
];

impl Compression {
    /// The compression a layer media type declares; `None` when it is not a layer type we
    /// read (OCI `tar`, `tar+gzip`, `tar+zstd`, their non-distributable forms, Docker
    /// `tar.gzip` and foreign layers).
    pub fn of_media_type(media_type: &str) -> Option<Compression> {
        let suffix = LAYER_TYPE_PREFIXES
            .iter()
            .find_map(|prefix| media_type.strip_prefix(prefix))?;
        match suffix {
            "" => Some(Compression::None),
            "+gzip" | ".gzip" => Some(Compression::Gzip),
            "+zstd" | ".zstd" => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// How messages name it: "declares gzip, but the content is an uncompressed tar".
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "an uncompressed tar",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
        }
    }
}

/// The tar stream of a layer. `media_type`, when given, must be a layer type and agree with
/// the magic bytes; without it (appc, which stores plain tars) the magic bytes decide.
/// `layer` names the layer in errors.
pub fn decompress<'r>(
    reader: impl Read + 'r,
    media_type: Option<&str>,
    layer: &str,
) -> RootfsResult<Box<dyn Read + 'r>> {
    let declared = match media_type {
        Some(media_type) => Some(Compression::of_media_type(media_type).ok_or_else(|| {
            RootfsError::UnsupportedMediaType {
                layer: layer.to_string(),
                media_type: media_type.to_string(),
            }
        })?),
        None => None,
    };
    let sniffed = sniff(
        BufReader::with_capacity(BUFFER_SIZE, reader),
        LAYER_COMPRESSIONS,
    )
    .map_err(RootfsError::Archive)?;
    let found = sniffed.compression();
    if let (Some(declared), Some(media_type)) = (declared, media_type) {
        if declared != found {
            return Err(RootfsError::CompressionMismatch {
                layer: layer.to_string(),
                media_type: media_type.to_string(),
                declared: declared.name(),
                found: found.name(),
            });
        }
    }
    sniffed.open(GzipMembers::All).map_err(RootfsError::Archive)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_declare_their_compression() {
        for (media_type, expected) in [
            (
                "application/vnd.oci.image.layer.v1.tar",
                Some(Compression::None),
            ),
            (
                "application/vnd.oci.image.layer.v1.tar+gzip",
                Some(Compression::Gzip),
            ),
            (
                "application/vnd.oci.image.layer.v1.tar+zstd",
                Some(Compression::Zstd),
            ),
            (
                "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                Some(Compression::Gzip),
            ),
            (
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
                Some(Compression::Gzip),
            ),
            (
                "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                Some(Compression::Gzip),
            ),
            ("application/vnd.oci.image.config.v1+json", None),
            ("application/vnd.oci.image.layer.v1.tar+bzip2", None),
        ] {
            assert_eq!(
                Compression::of_media_type(media_type),
                expected,
                "{media_type}"
            );
        }
    }

    #[test]
    fn a_mismatch_between_type_and_content_is_refused() {
        let plain = vec![0u8; 1024];
        let error = decompress(
            &plain[..],
            Some("application/vnd.oci.image.layer.v1.tar+gzip"),
            "sha256:abc",
        )
        .err()
        .expect("refused");
        assert!(
            error
                .to_string()
                .contains("declares gzip, but the content is an uncompressed tar"),
            "{error}"
        );
    }
}
