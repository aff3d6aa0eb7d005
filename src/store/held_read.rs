//! Reading a blob that stays readable to the end (DESIGN.md, "Reads under a hold"): what a
//! server sends a client, however long the client takes, while a GC may decide to remove the
//! blob. On a blob store whose open readers outlive a delete (`fs`) the reader is the hold;
//! on the others the read runs under an operation's hold, which lets go (deleting the blob if
//! it was the last holder) when the reader is dropped.

use std::io::{Read, Seek, SeekFrom};

use super::base::Store;
use super::error::{StoreError, StoreResult};
use super::holder::Holder;
use super::operation::Operation;
use crate::traits::{BlobRead, Digest};

/// A reader of a blob that no GC can take away while it reads; from [`Store::read_held`].
pub struct HeldRead<'s> {
    // Dropped first (fields drop in order): the reader ends before the hold does.
    reader: Box<dyn BlobRead + 's>,
    hold: Option<Operation<'s>>,
    size: u64,
}

impl HeldRead<'_> {
    /// The blob's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether the read holds the blob through an operation (a blob store whose readers do
    /// not outlive a delete), rather than through the open reader itself.
    pub fn is_held_by_operation(&self) -> bool {
        self.hold.is_some()
    }
}

impl Read for HeldRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.reader.read(buf)
    }
}

impl Seek for HeldRead<'_> {
    fn seek(&mut self, position: SeekFrom) -> std::io::Result<u64> {
        self.reader.seek(position)
    }
}

impl Store {
    /// Opens `digest` for a read that stays whole to its end, whatever a concurrent GC or
    /// release decides meanwhile. [`StoreError::NotFound`] when it is not in the store.
    pub fn read_held(&self, digest: &Digest) -> StoreResult<HeldRead<'_>> {
        let record = self
            .record(digest)?
            .ok_or_else(|| StoreError::NotFound(digest.to_string()))?;
        if self.blobs.reads_outlive_delete() {
            return Ok(HeldRead {
                reader: self.read(digest)?,
                hold: None,
                size: record.size,
            });
        }
        let mut operation = self.begin_operation(&Holder::BASE)?;
        let held = operation.hold_present(&[(digest.clone(), record.size)])?;
        if !held.first().copied().unwrap_or(false) {
            return Err(StoreError::NotFound(digest.to_string()));
        }
        Ok(HeldRead {
            reader: self.read(digest)?,
            hold: Some(operation),
            size: record.size,
        })
    }
}
