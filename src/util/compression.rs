//! Opening a compressed stream by its magic bytes: the first bytes are read, matched against
//! the formats the caller accepts, and put back in front of the stream before it is decoded.
//! A stream whose magic is not among the accepted formats is read as it is (plain).

use std::io::{self, BufRead, Chain, Cursor, Read};

/// How a stream is compressed, from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Not compressed (for the callers here: a plain tar).
    None,
    Gzip,
    Zstd,
    Bzip2,
    Xz,
}

impl std::fmt::Display for Compression {
    /// In words: `uncompressed`, `gzip`, `zstd`, `bzip2`, `xz`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Compression::None => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
        })
    }
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const BZIP2_MAGIC: &[u8] = b"BZh";
const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0x00];

/// The longest magic: how many bytes are read before deciding.
const HEAD_LEN: u64 = 6;

impl Compression {
    /// What the first bytes of a stream say it is (a plain tar has no magic at offset 0).
    pub fn sniff(head: &[u8]) -> Compression {
        [
            (ZSTD_MAGIC, Compression::Zstd),
            (GZIP_MAGIC, Compression::Gzip),
            (BZIP2_MAGIC, Compression::Bzip2),
            (XZ_MAGIC, Compression::Xz),
        ]
        .into_iter()
        .find(|(magic, _)| head.starts_with(magic))
        .map_or(Compression::None, |(_, compression)| compression)
    }
}

/// Whether a gzip stream ends with its first member (what `gzip -d` would call trailing
/// garbage is then not read) or goes on through every member (`cat a.gz b.gz` is one stream).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GzipMembers {
    First,
    All,
}

/// A stream whose first bytes were read and matched; [`Sniffed::open`] decodes it.
pub struct Sniffed<R> {
    compression: Compression,
    stream: Chain<Cursor<Vec<u8>>, R>,
}

/// Reads the first bytes of `reader` and names its compression among `accepted` (anything
/// else is [`Compression::None`]); the bytes read stay part of the stream.
pub fn sniff<R: BufRead>(mut reader: R, accepted: &[Compression]) -> io::Result<Sniffed<R>> {
    let mut head = Vec::with_capacity(HEAD_LEN as usize);
    reader.by_ref().take(HEAD_LEN).read_to_end(&mut head)?;
    let found = Compression::sniff(&head);
    let compression = match accepted.contains(&found) {
        true => found,
        false => Compression::None,
    };
    Ok(Sniffed {
        compression,
        stream: Cursor::new(head).chain(reader),
    })
}

impl<R: BufRead> Sniffed<R> {
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// The decoded stream. Bzip2 and xz read every member, like gzip with [`GzipMembers::All`].
    pub fn open<'r>(self, gzip: GzipMembers) -> io::Result<Box<dyn Read + 'r>>
    where
        R: 'r,
    {
        let stream = self.stream;
        Ok(match (self.compression, gzip) {
            (Compression::None, _) => Box::new(stream),
            (Compression::Gzip, GzipMembers::First) => {
                Box::new(flate2::bufread::GzDecoder::new(stream))
            }
            (Compression::Gzip, GzipMembers::All) => {
                Box::new(flate2::bufread::MultiGzDecoder::new(stream))
            }
            (Compression::Zstd, _) => Box::new(zstd::stream::read::Decoder::with_buffer(stream)?),
            (Compression::Bzip2, _) => Box::new(bzip2::bufread::MultiBzDecoder::new(stream)),
            (Compression::Xz, _) => {
                Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(stream))
            }
        })
    }
}

/// [`sniff`] then [`Sniffed::open`]: the compression found and the decoded stream.
pub fn open_by_magic<'r, R: BufRead + 'r>(
    reader: R,
    accepted: &[Compression],
    gzip: GzipMembers,
) -> io::Result<(Compression, Box<dyn Read + 'r>)> {
    let sniffed = sniff(reader, accepted)?;
    let compression = sniffed.compression();
    Ok((compression, sniffed.open(gzip)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const ALL: &[Compression] = &[
        Compression::Gzip,
        Compression::Zstd,
        Compression::Bzip2,
        Compression::Xz,
    ];

    #[test]
    fn compression_by_magic() {
        assert_eq!(Compression::sniff(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(
            Compression::sniff(&[0x28, 0xb5, 0x2f, 0xfd]),
            Compression::Zstd
        );
        assert_eq!(Compression::sniff(b"BZh91AY"), Compression::Bzip2);
        assert_eq!(
            Compression::sniff(&[0xfd, b'7', b'z', b'X', b'Z', 0]),
            Compression::Xz
        );
        assert_eq!(Compression::sniff(b"manifest"), Compression::None);
        assert_eq!(Compression::sniff(&[0x1f]), Compression::None);
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn read_all(mut reader: impl Read) -> Vec<u8> {
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn the_magic_bytes_stay_part_of_the_stream() {
        let (found, reader) = open_by_magic(&b"plain"[..], ALL, GzipMembers::All).unwrap();
        assert_eq!(found, Compression::None);
        assert_eq!(read_all(reader), b"plain");
        let zipped = gzip(b"inside");
        let (found, reader) = open_by_magic(&zipped[..], ALL, GzipMembers::All).unwrap();
        assert_eq!(found, Compression::Gzip);
        assert_eq!(read_all(reader), b"inside");
    }

    #[test]
    fn a_format_not_accepted_is_read_as_it_is() {
        let zipped = gzip(b"inside");
        let (found, reader) =
            open_by_magic(&zipped[..], &[Compression::Xz], GzipMembers::All).unwrap();
        assert_eq!(found, Compression::None);
        assert_eq!(read_all(reader), zipped);
    }

    #[test]
    fn gzip_members_first_or_all() {
        let mut two = gzip(b"one ");
        two.extend(gzip(b"two"));
        let (_, first) = open_by_magic(&two[..], ALL, GzipMembers::First).unwrap();
        assert_eq!(read_all(first), b"one ");
        let (_, all) = open_by_magic(&two[..], ALL, GzipMembers::All).unwrap();
        assert_eq!(read_all(all), b"one two");
    }
}
