//! The one way every tar reader of the store reads a tar stream (oci-archive import, ACI import,
//! layer apply, docker archives to come): through [`BoundedTarReader`], which refuses an
//! extended header that the `tar` crate would hold whole in memory before the crate reads it.
//!
//! The `tar` crate (0.4) reads these whole, whatever size their header declares:
//! - GNU long names (`L`) and long links (`K`): `read_all` before the entry they name;
//! - PAX extended headers (`x`): `read_all`; and a PAX global header (`g`) when a caller asks
//!   for its records (`Entry::pax_extensions`);
//! - a GNU sparse map (`S` with extension blocks): one record per region, for as many
//!   extension blocks as follow, before the entry is returned.
//!
//! So a 130 KiB gzip holding a 128 MiB long name costs hundreds of MiB before any of our own
//! checks sees an entry. [`BoundedTarReader`] sits between the (decompressed) stream and
//! `tar::Archive`, follows the stream block by block as the crate reads it (any read sizes:
//! a header may arrive in pieces), parses each 512-byte header with the crate's own parser
//! (octal and base-256 sizes alike) and, when a header declares more than [`TarHeaderLimits`]
//! allow, fails the read that completes that header: the crate never sees its body. The
//! failure is an `io::Error` carrying a [`TarHeaderError`] (find it with
//! [`TarHeaderError::find`]); readers map it into their own error type.
//!
//! To know where each header starts it mirrors what the crate does to find the next one: entry
//! data rounded to 512 bytes, the size a PAX `size` record gives the entry after it (so it
//! keeps a PAX header's records, at most [`TarHeaderLimits::pax_header`] bytes), and the
//! extension blocks of a GNU sparse entry. It stops looking at the first all-zero block, where
//! the crate stops reading (`Archive::set_ignore_zeros` must stay off), and at a header the
//! crate cannot parse, which the crate refuses itself. It only reads: it works on pipes.

use std::io::{self, Read};

use super::short_name::short_name;

const BLOCK: u64 = 512;

/// Most bytes of a GNU long name or long link: 4096, Linux's `PATH_MAX`, which counts the
/// terminating NUL that tar writers put at the end of the name (a path of 4095 bytes fits).
/// No longer path can be created or looked up on Linux in one call.
pub const MAX_LONG_NAME: u64 = 4096;
/// Most bytes of a PAX extended or global header: 16 KiB. Its records carry a path and a link
/// path (each at most [`MAX_LONG_NAME`]), times, owners, and extended attributes
/// (`SCHILY.xattr.*`): capabilities, SELinux labels and ACLs are tens to hundreds of bytes,
/// and ext4 keeps all of a file's attributes in one 4 KiB block. 16 KiB holds the longest
/// path and link path with 8 KiB to spare for attributes.
pub const MAX_PAX_HEADER: u64 = 16 * 1024;
/// Most GNU sparse extension blocks after one sparse header: 512 (256 KiB), a map of about
/// 10,000 regions. None of our readers accepts a sparse entry, but the crate builds the map
/// before they see it.
pub const MAX_SPARSE_EXTENSION_BLOCKS: u64 = 512;

/// How large an extended header may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TarHeaderLimits {
    /// Bytes of a GNU long name (`L`) or long link (`K`) body, its NUL included.
    pub long_name: u64,
    /// Bytes of a PAX extended (`x`) or global (`g`) header body.
    pub pax_header: u64,
    /// GNU sparse extension blocks after one sparse (`S`) header.
    pub sparse_extension_blocks: u64,
}

impl Default for TarHeaderLimits {
    fn default() -> Self {
        TarHeaderLimits {
            long_name: MAX_LONG_NAME,
            pax_header: MAX_PAX_HEADER,
            sparse_extension_blocks: MAX_SPARSE_EXTENSION_BLOCKS,
        }
    }
}

/// The kinds of extended header the crate reads whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtendedHeader {
    GnuLongName,
    GnuLongLink,
    PaxExtended,
    PaxGlobal,
}

impl ExtendedHeader {
    fn of(kind: u8) -> Option<ExtendedHeader> {
        match kind {
            b'L' => Some(ExtendedHeader::GnuLongName),
            b'K' => Some(ExtendedHeader::GnuLongLink),
            b'x' => Some(ExtendedHeader::PaxExtended),
            b'g' => Some(ExtendedHeader::PaxGlobal),
            _ => None,
        }
    }

    fn limit(self, limits: &TarHeaderLimits) -> u64 {
        match self {
            ExtendedHeader::GnuLongName | ExtendedHeader::GnuLongLink => limits.long_name,
            ExtendedHeader::PaxExtended | ExtendedHeader::PaxGlobal => limits.pax_header,
        }
    }

    fn why(self) -> &'static str {
        match self {
            ExtendedHeader::GnuLongName | ExtendedHeader::GnuLongLink => {
                "Linux's PATH_MAX, the terminating NUL included"
            }
            ExtendedHeader::PaxExtended | ExtendedHeader::PaxGlobal => {
                "room for a path, a link path and extended attributes"
            }
        }
    }
}

impl std::fmt::Display for ExtendedHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ExtendedHeader::GnuLongName => "GNU long name",
            ExtendedHeader::GnuLongLink => "GNU long link",
            ExtendedHeader::PaxExtended => "PAX extended header",
            ExtendedHeader::PaxGlobal => "PAX global header",
        })
    }
}

/// A tar header refused for its size, before its body was read. `header` is the header's own
/// name field (for a long name, `././@LongLink`; the name it carries was not read), quoted
/// short; `offset` where the header starts in the (decompressed) tar stream.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TarHeaderError {
    #[error(
        "tar header {header:?} at byte {offset}: a {kind} of {size} bytes, over the limit of \
         {limit} bytes ({why}); refused before it is read",
        why = kind.why()
    )]
    TooLarge {
        kind: ExtendedHeader,
        header: String,
        offset: u64,
        size: u64,
        limit: u64,
    },
    #[error(
        "tar header {header:?} at byte {offset}: a GNU sparse map of more than {limit} \
         extension blocks; refused before the map is read"
    )]
    SparseMapTooLong {
        header: String,
        offset: u64,
        limit: u64,
    },
}

impl TarHeaderError {
    /// The refusal inside an error from reading an archive through a [`BoundedTarReader`].
    pub fn find(error: &io::Error) -> Option<&TarHeaderError> {
        error.get_ref()?.downcast_ref::<TarHeaderError>()
    }

    fn to_io(&self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, self.clone())
    }
}

/// `tar::Archive::new` over a [`BoundedTarReader`] with the default limits: how every tar
/// reader of the store opens a tar stream.
pub fn bounded_archive<R: Read>(stream: R) -> tar::Archive<BoundedTarReader<R>> {
    tar::Archive::new(BoundedTarReader::new(stream))
}

/// What the next bytes of the stream are.
#[derive(Debug)]
enum Expect {
    /// A header block, `filled` bytes of it read.
    Header,
    /// A GNU sparse extension block, the `count`th after the sparse header; `data` bytes of
    /// entry (and padding) follow the last one.
    SparseExtension {
        count: u64,
        data: u64,
        header: String,
        offset: u64,
    },
    /// A PAX extended header's body (`left` bytes still to come), then `padding`.
    PaxBody { left: u64, padding: u64 },
    /// Entry data and padding to pass through.
    Skip(u64),
    /// Past the end of the archive, or past a header the crate refuses: not looked at.
    Done,
}

/// A `Read` that refuses oversized extended headers before the `tar` crate reads them (see the
/// module documentation).
pub struct BoundedTarReader<R> {
    inner: R,
    limits: TarHeaderLimits,
    expect: Expect,
    block: [u8; BLOCK as usize],
    filled: usize,
    /// Stream offset of the next byte.
    position: u64,
    /// Where the block being collected starts.
    block_start: u64,
    /// A PAX extended header's records, kept to learn the size it gives the next entry.
    pax_body: Vec<u8>,
    /// The `size` record of the PAX header that applies to the next entry, when one does.
    pending_pax_size: Option<u64>,
    refused: Option<TarHeaderError>,
    /// Where each header started, when recorded (the fuzz target checks them against the
    /// crate's).
    headers_seen: Option<Vec<u64>>,
}

impl<R: Read> BoundedTarReader<R> {
    #[cfg(any(test, feature = "test-support"))]
    /// Also records where it saw each header (for the fuzz target; grows with the archive).
    #[doc(hidden)]
    pub fn recording_headers(inner: R) -> Self {
        BoundedTarReader {
            headers_seen: Some(Vec::new()),
            ..Self::new(inner)
        }
    }

    #[cfg(any(test, feature = "test-support"))]
    #[doc(hidden)]
    pub fn headers_seen(&self) -> &[u64] {
        self.headers_seen.as_deref().unwrap_or_default()
    }

    pub fn new(inner: R) -> Self {
        Self::with_limits(inner, TarHeaderLimits::default())
    }

    pub fn with_limits(inner: R, limits: TarHeaderLimits) -> Self {
        BoundedTarReader {
            inner,
            limits,
            expect: Expect::Header,
            block: [0; BLOCK as usize],
            filled: 0,
            position: 0,
            block_start: 0,
            pax_body: Vec::new(),
            pending_pax_size: None,
            refused: None,
            headers_seen: None,
        }
    }

    /// The stream it reads, for what follows the archive (a compressed stream's trailer).
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Follows `bytes`, the next ones of the stream, through headers and data.
    fn observe(&mut self, mut bytes: &[u8]) -> Result<(), TarHeaderError> {
        while !bytes.is_empty() {
            let taken = match &mut self.expect {
                Expect::Done => return Ok(()),
                Expect::Skip(left) => {
                    let n = (*left).min(bytes.len() as u64);
                    *left -= n;
                    if *left == 0 {
                        self.expect = Expect::Header;
                    }
                    n as usize
                }
                Expect::PaxBody { left, padding } => {
                    let n = (*left).min(bytes.len() as u64);
                    self.pax_body.extend_from_slice(&bytes[..n as usize]);
                    *left -= n;
                    if *left == 0 {
                        self.pending_pax_size = pax_size(&self.pax_body);
                        self.pax_body = Vec::new();
                        self.expect = skip(*padding);
                    }
                    n as usize
                }
                Expect::Header | Expect::SparseExtension { .. } => {
                    if self.filled == 0 {
                        self.block_start = self.position;
                    }
                    let n = (BLOCK as usize - self.filled).min(bytes.len());
                    self.block[self.filled..self.filled + n].copy_from_slice(&bytes[..n]);
                    self.filled += n;
                    if self.filled == BLOCK as usize {
                        self.filled = 0;
                        self.block_complete()?;
                    }
                    n
                }
            };
            self.position += taken as u64;
            bytes = &bytes[taken..];
        }
        Ok(())
    }

    fn block_complete(&mut self) -> Result<(), TarHeaderError> {
        match std::mem::replace(&mut self.expect, Expect::Done) {
            Expect::Header => self.header_complete(),
            Expect::SparseExtension {
                count,
                data,
                header,
                offset,
            } => {
                let mut extension = tar::GnuExtSparseHeader::new();
                extension.as_mut_bytes().copy_from_slice(&self.block);
                self.expect = if extension.is_extended() {
                    self.sparse_extension(count + 1, data, header, offset)?
                } else {
                    skip(data)
                };
                Ok(())
            }
            other => unreachable!("a block completed while expecting {other:?}"),
        }
    }

    fn sparse_extension(
        &self,
        count: u64,
        data: u64,
        header: String,
        offset: u64,
    ) -> Result<Expect, TarHeaderError> {
        if count > self.limits.sparse_extension_blocks {
            return Err(TarHeaderError::SparseMapTooLong {
                header,
                offset,
                limit: self.limits.sparse_extension_blocks,
            });
        }
        Ok(Expect::SparseExtension {
            count,
            data,
            header,
            offset,
        })
    }

    /// A header block is in: refuse it, or work out what follows it, as the crate will.
    fn header_complete(&mut self) -> Result<(), TarHeaderError> {
        if self.block.iter().all(|&b| b == 0) {
            // The crate ends the archive here.
            return Ok(());
        }
        if let Some(seen) = &mut self.headers_seen {
            seen.push(self.block_start);
        }
        let mut header = tar::Header::new_old();
        header.as_mut_bytes().copy_from_slice(&self.block);
        let Ok(declared) = header.entry_size() else {
            // The crate refuses this header: nothing after it is read as an entry.
            return Ok(());
        };
        let kind = header.entry_type().as_byte();
        let name = || short_name(&header.path_bytes());
        let extended = ExtendedHeader::of(kind);
        if let Some(extended) = extended {
            let limit = extended.limit(&self.limits);
            if declared > limit {
                return Err(TarHeaderError::TooLarge {
                    kind: extended,
                    header: name(),
                    offset: self.block_start,
                    size: declared,
                    limit,
                });
            }
        }
        // The crate folds GNU long names and links and PAX extended headers into the entry
        // that follows only when the header has a ustar or GNU magic; a PAX `size` record
        // then replaces the size of the next entry that is not itself an extended header.
        let recognized = header.as_ustar().is_some() || header.as_gnu().is_some();
        let size = match (extended, self.pending_pax_size) {
            (None, Some(pax_size)) => pax_size,
            _ => declared,
        };
        let folded = recognized && matches!(kind, b'L' | b'K' | b'x');
        if !folded {
            self.pending_pax_size = None;
        }
        let Some(padded) = size.checked_next_multiple_of(BLOCK) else {
            // The crate refuses a size it cannot step over.
            return Ok(());
        };
        self.expect = if recognized && kind == b'x' {
            self.pending_pax_size = None;
            self.pax_body = Vec::with_capacity(size as usize);
            if size == 0 {
                skip(0)
            } else {
                Expect::PaxBody {
                    left: size,
                    padding: padded - size,
                }
            }
        } else if kind == b'S' && !folded {
            match header.as_gnu() {
                Some(gnu) if gnu.is_extended() => {
                    self.sparse_extension(1, padded, name(), self.block_start)?
                }
                Some(_) => skip(padded),
                // The crate refuses a sparse entry without a GNU header.
                None => Expect::Done,
            }
        } else {
            skip(padded)
        };
        Ok(())
    }
}

fn skip(bytes: u64) -> Expect {
    if bytes == 0 {
        Expect::Header
    } else {
        Expect::Skip(bytes)
    }
}

/// The `size` record of PAX records, read as the crate reads it: the first `size` key counts,
/// and a malformed record before it or a value that is not a number means none.
fn pax_size(records: &[u8]) -> Option<u64> {
    for record in tar::PaxExtensions::new(records) {
        let record = record.ok()?;
        if record.key().ok() != Some("size") {
            continue;
        }
        return record.value().ok()?.parse::<u64>().ok();
    }
    None
}

impl<R: Read> Read for BoundedTarReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(refused) = &self.refused {
            return Err(refused.to_io());
        }
        let read = self.inner.read(buf)?;
        if let Err(refused) = self.observe(&buf[..read]) {
            let error = refused.to_io();
            self.refused = Some(refused);
            return Err(error);
        }
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header of `kind` and `size`, GNU magic unless `ustar`, size in base-256 when asked.
    fn header(name: &str, kind: u8, size: u64, base_256: bool) -> Vec<u8> {
        let mut header = tar::Header::new_gnu();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::new(kind));
        header.set_size(size);
        if base_256 {
            let field = &mut header.as_old_mut().size;
            field.fill(0);
            field[0] = 0x80;
            field[4..].copy_from_slice(&size.to_be_bytes());
        }
        header.set_cksum();
        header.as_bytes().to_vec()
    }

    fn padded(mut body: Vec<u8>) -> Vec<u8> {
        body.resize(body.len().next_multiple_of(512), 0);
        body
    }

    /// A GNU long name entry of `bytes` (the NUL included), then a file named by it.
    fn long_name_archive(bytes: usize, base_256: bool) -> Vec<u8> {
        let mut name = vec![b'n'; bytes - 1];
        name.push(0);
        let mut tar = header("././@LongLink", b'L', bytes as u64, base_256);
        tar.extend(padded(name));
        tar.extend(header("short", b'0', 3, false));
        tar.extend(padded(b"abc".to_vec()));
        tar.extend([0u8; 1024]);
        tar
    }

    /// Returns (path length, data) of every entry read through the guard.
    fn entries(reader: impl Read) -> io::Result<Vec<(usize, Vec<u8>)>> {
        let mut archive = bounded_archive(reader);
        let mut out = Vec::new();
        for entry in archive.entries()? {
            let mut entry = entry?;
            let mut data = Vec::new();
            entry.read_to_end(&mut data)?;
            out.push((entry.path_bytes().len(), data));
        }
        Ok(out)
    }

    /// Hands out at most `chunk` bytes a read, so headers arrive in pieces.
    struct Trickle<'a> {
        bytes: &'a [u8],
        chunk: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.chunk.min(buf.len()).min(self.bytes.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    fn refusal(result: io::Result<Vec<(usize, Vec<u8>)>>) -> TarHeaderError {
        let error = result.expect_err("refused");
        TarHeaderError::find(&error)
            .unwrap_or_else(|| panic!("not a header refusal: {error}"))
            .clone()
    }

    #[test]
    fn a_long_name_exactly_at_the_limit_is_read() {
        for base_256 in [false, true] {
            let read = entries(&long_name_archive(4096, base_256)[..]).unwrap();
            assert_eq!(read, vec![(4095, b"abc".to_vec())], "base-256 {base_256}");
        }
    }

    #[test]
    fn a_long_name_one_byte_over_is_refused_before_its_body() {
        for base_256 in [false, true] {
            let archive = long_name_archive(4097, base_256);
            let refused = refusal(entries(&archive[..]));
            assert_eq!(
                refused,
                TarHeaderError::TooLarge {
                    kind: ExtendedHeader::GnuLongName,
                    header: "././@LongLink".into(),
                    offset: 0,
                    size: 4097,
                    limit: 4096,
                }
            );
            let message = refused.to_string();
            assert!(message.contains("GNU long name") && message.contains("4096"));
            // Refused on the read that completes the header: not one byte of the body.
            let mut guard = BoundedTarReader::new(&archive[..]);
            let mut block = [0u8; 512];
            assert!(guard.read(&mut block).is_err());
            assert!(guard.read(&mut block).is_err(), "the refusal sticks");
        }
    }

    #[test]
    fn headers_arriving_in_pieces_are_followed() {
        // 1-byte and 7-byte reads split every header; the same refusal and the same entries.
        for chunk in [1, 7, 511, 513, 100_000] {
            let over = long_name_archive(4097, false);
            let refused = refusal(entries(Trickle {
                bytes: &over,
                chunk,
            }));
            assert_eq!(refused.to_string(), refusal(entries(&over[..])).to_string());
            let at = long_name_archive(4096, false);
            let read = entries(Trickle { bytes: &at, chunk }).unwrap();
            assert_eq!(read, vec![(4095, b"abc".to_vec())], "chunk {chunk}");
        }
    }

    #[test]
    fn a_huge_base_256_size_is_refused() {
        let archive = header("././@LongLink", b'K', u64::MAX >> 1, true);
        let refused = refusal(entries(&archive[..]));
        assert!(
            matches!(refused, TarHeaderError::TooLarge { kind: ExtendedHeader::GnuLongLink, size, .. } if size == u64::MAX >> 1)
        );
    }

    /// A PAX header of one `key=value` record.
    fn pax(kind: u8, key: &str, value: &str) -> Vec<u8> {
        let body = format!(" {key}={value}\n");
        // The record's length counts its own digits.
        let mut length = body.len() + 1;
        while body.len() + length.to_string().len() != length {
            length = body.len() + length.to_string().len();
        }
        let record = format!("{length}{body}");
        assert_eq!(record.len(), length);
        let mut tar = header("PaxHeaders/x", kind, record.len() as u64, false);
        tar.extend(padded(record.into_bytes()));
        tar
    }

    #[test]
    fn pax_headers_up_to_the_limit_are_read_and_their_size_followed() {
        // A PAX `size` record gives the next entry 1,000 bytes where its header says 0: the
        // guard must find the next header there, and refuse the long name after it.
        let mut archive = pax(b'x', "size", "1000");
        archive.extend(header("file", b'0', 0, false));
        archive.extend(padded(vec![7u8; 1000]));
        archive.extend(long_name_archive(4097, false));
        let refused = refusal(entries(&archive[..]));
        assert!(
            matches!(refused, TarHeaderError::TooLarge { offset, .. } if offset == 1024 + 512 + 1024)
        );

        // At the PAX limit: read; one byte over: refused.
        let mut at = pax(b'x', "comment", &"v".repeat(MAX_PAX_HEADER as usize - 15));
        assert_eq!(
            at.len() as u64,
            512 + MAX_PAX_HEADER,
            "the record fills the limit"
        );
        at.extend(header("file", b'0', 0, false));
        at.extend([0u8; 1024]);
        assert_eq!(entries(&at[..]).unwrap().len(), 1);
        for kind in [b'x', b'g'] {
            let over = pax(kind, "comment", &"v".repeat(MAX_PAX_HEADER as usize - 14));
            let refused = refusal(entries(&over[..]));
            assert!(
                matches!(refused, TarHeaderError::TooLarge { size, limit, .. } if size == MAX_PAX_HEADER + 1 && limit == MAX_PAX_HEADER),
                "{refused}"
            );
        }
    }

    /// A GNU sparse header followed by `blocks` extension blocks of empty regions.
    fn sparse(blocks: u64) -> Vec<u8> {
        let mut header = tar::Header::new_gnu();
        header.as_old_mut().name[..6].copy_from_slice(b"sparse");
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::GNUSparse);
        header.set_size(512);
        let gnu = header.as_gnu_mut().unwrap();
        gnu.set_real_size(512);
        gnu.sparse[0].set_offset(0);
        gnu.sparse[0].set_length(512);
        gnu.set_is_extended(blocks > 0);
        header.set_cksum();
        let mut tar = header.as_bytes().to_vec();
        for block in 0..blocks {
            let mut extension = tar::GnuExtSparseHeader::new();
            extension.set_is_extended(block + 1 < blocks);
            tar.extend_from_slice(extension.as_bytes());
        }
        tar.extend([9u8; 512]);
        tar
    }

    #[test]
    fn sparse_maps_up_to_the_limit_are_followed_and_longer_ones_refused() {
        let mut at = sparse(MAX_SPARSE_EXTENSION_BLOCKS);
        // The data after the map, then a header the guard must find where the crate does.
        at.extend(long_name_archive(4097, false));
        let refused = refusal(entries(&at[..]));
        let after_map = 512 * (2 + MAX_SPARSE_EXTENSION_BLOCKS);
        assert!(
            matches!(refused, TarHeaderError::TooLarge { offset, .. } if offset == after_map),
            "{refused}"
        );
        let over = sparse(MAX_SPARSE_EXTENSION_BLOCKS + 1);
        assert_eq!(
            refusal(entries(&over[..])),
            TarHeaderError::SparseMapTooLong {
                header: "sparse".into(),
                offset: 0,
                limit: MAX_SPARSE_EXTENSION_BLOCKS,
            }
        );
    }

    #[test]
    fn a_valid_archive_reads_as_without_the_guard() {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, data) in [
            ("a".repeat(300), &b"first"[..]),
            (format!("dir/{}", "é".repeat(1000)), &b"second"[..]),
            ("short".to_string(), &b""[..]),
        ] {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            builder.append_data(&mut header, &path, data).unwrap();
        }
        let mut pax_builder = tar::Builder::new(Vec::new());
        pax_builder
            .append_pax_extensions([("SCHILY.xattr.user.x", &b"1"[..])])
            .unwrap();
        let mut header = tar::Header::new_ustar();
        header.set_size(2);
        header.set_mode(0o644);
        pax_builder
            .append_data(&mut header, "with-xattr", &b"xy"[..])
            .unwrap();
        for bytes in [
            builder.into_inner().unwrap(),
            pax_builder.into_inner().unwrap(),
        ] {
            let plain: Vec<(usize, Vec<u8>)> = tar::Archive::new(&bytes[..])
                .entries()
                .unwrap()
                .map(|entry| {
                    let mut entry = entry.unwrap();
                    let mut data = Vec::new();
                    entry.read_to_end(&mut data).unwrap();
                    (entry.path_bytes().len(), data)
                })
                .collect();
            assert_eq!(entries(&bytes[..]).unwrap(), plain);
        }
    }
}
