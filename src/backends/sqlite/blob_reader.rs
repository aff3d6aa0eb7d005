//! Reading a stored blob chunk by chunk: one chunk in memory at a time, and seeking is
//! arithmetic (every chunk but the last holds exactly the blob's `chunk_size` bytes).
//!
//! Each chunk is fetched in its own short read, so a long read never pins an old WAL snapshot
//! (which would stop checkpoints). The price: if the blob is deleted mid-read, the next fetch
//! fails with a clear error instead of returning stale bytes.

use std::io::{self, Read, Seek, SeekFrom};

use rusqlite::{params, OptionalExtension};

use super::connection::Database;
use crate::traits::Digest;

struct LoadedChunk {
    seq: u64,
    data: Vec<u8>,
}

pub(crate) struct SqliteBlobReader<'a> {
    database: &'a Database,
    digest: Digest,
    size: u64,
    chunk_size: u64,
    position: u64,
    chunk: Option<LoadedChunk>,
}

impl<'a> SqliteBlobReader<'a> {
    pub(crate) fn new(database: &'a Database, digest: Digest, size: u64, chunk_size: u64) -> Self {
        SqliteBlobReader {
            database,
            digest,
            size,
            chunk_size: chunk_size.max(1),
            position: 0,
            chunk: None,
        }
    }

    /// Makes chunk `seq` the loaded one, reusing the buffer of the previous chunk.
    fn load(&mut self, seq: u64) -> io::Result<()> {
        if self.chunk.as_ref().is_some_and(|chunk| chunk.seq == seq) {
            return Ok(());
        }
        let mut data = self
            .chunk
            .take()
            .map(|chunk| chunk.data)
            .unwrap_or_default();
        data.clear();
        let digest = &self.digest;
        let stored_seq = i64::try_from(seq).map_err(io::Error::other)?;
        let found = self
            .database
            .read(
                || format!("reading chunk {seq} of blob {digest}"),
                |connection| {
                    connection
                        .prepare_cached(
                            "SELECT chunk_data.data FROM blob_chunks JOIN chunk_data USING (chunk_id)
                             WHERE blob_chunks.digest = ?1 AND blob_chunks.seq = ?2",
                        )?
                        .query_row(params![digest.as_str(), stored_seq], |row| {
                            data.extend_from_slice(row.get_ref(0)?.as_blob()?);
                            Ok(())
                        })
                        .optional()
                },
            )
            .map_err(io::Error::other)?;
        if found.is_none() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("chunk {seq} of blob {digest} is missing (was the blob deleted while being read?)"),
            ));
        }
        self.chunk = Some(LoadedChunk { seq, data });
        Ok(())
    }
}

impl Read for SqliteBlobReader<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if buffer.is_empty() || self.position >= self.size {
            return Ok(0);
        }
        let seq = self.position / self.chunk_size;
        let offset = (self.position % self.chunk_size) as usize;
        let left_in_blob = self.size - self.position;
        self.load(seq)?;
        let chunk = &self.chunk.as_ref().expect("loaded above").data;
        if offset >= chunk.len() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "chunk {seq} of blob {} holds {} bytes, fewer than its size requires",
                    self.digest,
                    chunk.len()
                ),
            ));
        }
        let count = buffer
            .len()
            .min(chunk.len() - offset)
            .min(usize::try_from(left_in_blob).unwrap_or(usize::MAX));
        buffer[..count].copy_from_slice(&chunk[offset..offset + count]);
        self.position += count as u64;
        Ok(count)
    }
}

impl Seek for SqliteBlobReader<'_> {
    /// Seeking past the end is allowed (reads there return 0 bytes), before the start is not.
    fn seek(&mut self, target: SeekFrom) -> io::Result<u64> {
        let (base, offset) = match target {
            SeekFrom::Start(position) => (i128::from(position), 0),
            SeekFrom::End(offset) => (i128::from(self.size), offset),
            SeekFrom::Current(offset) => (i128::from(self.position), offset),
        };
        let position = base + i128::from(offset);
        if position < 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "seek to {position}, before the start of blob {}",
                    self.digest
                ),
            ));
        }
        self.position = u64::try_from(position).map_err(io::Error::other)?;
        Ok(self.position)
    }
}
