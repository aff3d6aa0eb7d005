//! Reading a blob stored in LMDB chunks: one chunk in memory at a time, each fetched in its own
//! short read transaction, so a slow reader never pins old pages of the environment.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;

use super::blob_writer::{chunk_key, chunks_prefix};
use super::environment::{HeedResultExt, SharedEnv};
use super::records::BlobContent;
use crate::traits::Digest;

pub(crate) struct LmdbBlobReader {
    env: Arc<SharedEnv>,
    digest: Digest,
    content: BlobContent,
    /// Where its chunks are (`blob_chunks` key prefix).
    chunks_prefix: String,
    position: u64,
    /// The chunk last read, by sequence number.
    chunk: Option<(u64, Vec<u8>)>,
}

impl LmdbBlobReader {
    pub(crate) fn new(env: Arc<SharedEnv>, digest: Digest, content: BlobContent) -> Self {
        LmdbBlobReader {
            env,
            chunks_prefix: chunks_prefix(&digest, &content),
            digest,
            content,
            position: 0,
            chunk: None,
        }
    }

    fn load_chunk(&mut self, sequence: u64) -> io::Result<&[u8]> {
        let cached = matches!(&self.chunk, Some((loaded, _)) if *loaded == sequence);
        if !cached {
            let key = chunk_key(&self.chunks_prefix, sequence);
            let digest = &self.digest;
            let chunks = &self.env.databases.blob_chunks;
            let chunk = self
                .env
                .read(|rtxn| {
                    Ok(chunks
                        .get(rtxn, &key)
                        .with_context(|| format!("reading chunk {sequence} of blob {digest}"))?
                        .map(<[u8]>::to_vec))
                })
                .map_err(io::Error::other)?
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("chunk {sequence} of blob {digest} is missing (blob deleted?)"),
                    )
                })?;
            self.chunk = Some((sequence, chunk));
        }
        Ok(&self.chunk.as_ref().expect("chunk loaded above").1)
    }
}

impl Read for LmdbBlobReader {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let size = self.content.size;
        if buffer.is_empty() || self.position >= size {
            return Ok(0);
        }
        let chunk_size = u64::from(self.content.chunk_size);
        let sequence = self.position / chunk_size;
        let offset = (self.position % chunk_size) as usize;
        let remaining_in_blob = size - self.position;
        let digest = self.digest.clone();
        let chunk = self.load_chunk(sequence)?;
        let available = chunk.get(offset..).unwrap_or_default();
        if available.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("chunk {sequence} of blob {digest} is shorter than its recorded size"),
            ));
        }
        let count = buffer
            .len()
            .min(available.len())
            .min(usize::try_from(remaining_in_blob).unwrap_or(usize::MAX));
        buffer[..count].copy_from_slice(&available[..count]);
        self.position += count as u64;
        Ok(count)
    }
}

impl Seek for LmdbBlobReader {
    fn seek(&mut self, target: SeekFrom) -> io::Result<u64> {
        let (base, delta) = match target {
            SeekFrom::Start(offset) => {
                self.position = offset;
                return Ok(offset);
            }
            SeekFrom::End(delta) => (self.content.size, delta),
            SeekFrom::Current(delta) => (self.position, delta),
        };
        let position = base.checked_add_signed(delta).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "seek to a negative or overflowing offset in blob {}",
                    self.digest
                ),
            )
        })?;
        self.position = position;
        Ok(position)
    }
}
