//! Layer compression: what the media type declares (OCI and Docker layer types), checked
//! against the content's magic bytes before anything is decompressed.

use std::io::{Cursor, Read};

use super::error::{RootfsError, RootfsResult};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    Gzip,
    Zstd,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

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

    /// What the first bytes of a stream say it is (a plain tar has no magic at offset 0).
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&ZSTD_MAGIC) {
            Compression::Zstd
        } else if head.starts_with(&GZIP_MAGIC) {
            Compression::Gzip
        } else {
            Compression::None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "an uncompressed tar",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// The tar stream of a layer. `media_type`, when given, must be a layer type and agree with
/// the magic bytes; without it (appc, which stores plain tars) the magic bytes decide.
/// `layer` names the layer in errors.
pub fn decompress<'r>(
    mut reader: impl Read + 'r,
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
    let head = read_head(&mut reader).map_err(RootfsError::Archive)?;
    let found = Compression::sniff(&head);
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
    let stream = Cursor::new(head).chain(reader);
    Ok(match found {
        Compression::None => Box::new(stream),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(stream)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::new(stream).map_err(RootfsError::Archive)?)
        }
    })
}

/// Up to the first four bytes (fewer only at end of stream).
fn read_head(reader: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(4);
    reader.take(4).read_to_end(&mut head)?;
    Ok(head)
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
