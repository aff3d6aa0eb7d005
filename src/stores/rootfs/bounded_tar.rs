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
}

impl<R: Read> BoundedTarReader<R> {
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
