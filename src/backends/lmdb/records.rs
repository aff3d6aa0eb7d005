//! Binary layouts of the values stored in LMDB. Fixed-width numbers are big-endian; a variable
//! part comes last or is preceded by its length, so decoding needs no parser and no serde.
//!
//! - blob record (key: digest): `size u64 | created_unix_ms i64 | media_type utf-8`
//! - key/value entry: `version u64 | blob_len u8 | blob digest utf-8 | value`
//! - key/value bucket (see `kv_store.rs`): `count u32 | (key_len u32 | key | entry_len u32 |
//!   entry)*`, sorted by key
//! - blob content (key: digest): `size u64 | chunk_size u32`

use crate::traits::{BlobRecord, Digest, KvEntry, StorageError, StorageResult};

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct CorruptRecord(&'static str);

/// The error for a stored value that does not decode.
pub(crate) fn corrupt(what: String, reason: &'static str) -> StorageError {
    StorageError::backend(
        super::BACKEND_NAME,
        format!("corrupt {what}"),
        CorruptRecord(reason),
    )
}

/// Reads fixed-width and length-prefixed fields off the front of a value.
struct Fields<'a> {
    bytes: &'a [u8],
    what: &'a dyn Fn() -> String,
}

impl<'a> Fields<'a> {
    fn take(&mut self, len: usize) -> StorageResult<&'a [u8]> {
        if self.bytes.len() < len {
            return Err(corrupt((self.what)(), "value ends early"));
        }
        let (head, tail) = self.bytes.split_at(len);
        self.bytes = tail;
        Ok(head)
    }

    fn u64(&mut self) -> StorageResult<u64> {
        Ok(u64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn u32(&mut self) -> StorageResult<u32> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn u8(&mut self) -> StorageResult<u8> {
        Ok(self.take(1)?[0])
    }

    fn text(&mut self, len: usize) -> StorageResult<&'a str> {
        std::str::from_utf8(self.take(len)?).map_err(|_| corrupt((self.what)(), "invalid UTF-8"))
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }
}

pub(crate) fn encode_blob_record(record: &BlobRecord) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(16 + record.media_type.len());
    bytes.extend_from_slice(&record.size.to_be_bytes());
    bytes.extend_from_slice(&record.created_unix_ms.to_be_bytes());
    bytes.extend_from_slice(record.media_type.as_bytes());
    bytes
}

pub(crate) fn decode_blob_record(digest: Digest, bytes: &[u8]) -> StorageResult<BlobRecord> {
    let what = || format!("index record of {digest}");
    let mut fields = Fields { bytes, what: &what };
    let size = fields.u64()?;
    let created_unix_ms = fields.u64()? as i64;
    let remaining = fields.bytes.len();
    let media_type = fields.text(remaining)?.to_string();
    Ok(BlobRecord {
        digest,
        size,
        media_type,
        created_unix_ms,
    })
}

pub(crate) fn encode_kv_entry(entry: &KvEntry) -> Vec<u8> {
    let blob = entry.blob.as_ref().map_or("", Digest::as_str);
    let mut bytes = Vec::with_capacity(9 + blob.len() + entry.value.len());
    bytes.extend_from_slice(&entry.version.to_be_bytes());
    // A digest is at most `sha512:` + 128 hex characters, well under 255 bytes.
    bytes.push(blob.len() as u8);
    bytes.extend_from_slice(blob.as_bytes());
    bytes.extend_from_slice(&entry.value);
    bytes
}

pub(crate) fn decode_kv_entry(bytes: &[u8], what: &dyn Fn() -> String) -> StorageResult<KvEntry> {
    let mut fields = Fields { bytes, what };
    let version = fields.u64()?;
    let blob_len = fields.u8()? as usize;
    let blob = match blob_len {
        0 => None,
        len => Some(Digest::parse(fields.text(len)?)?),
    };
    Ok(KvEntry {
        value: fields.rest().to_vec(),
        blob,
        version,
    })
}

/// Entries sharing one bucket slot, sorted by key.
pub(crate) fn encode_kv_bucket(entries: &[(String, KvEntry)]) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    for (key, entry) in entries {
        let encoded = encode_kv_entry(entry);
        bytes.extend_from_slice(&(key.len() as u32).to_be_bytes());
        bytes.extend_from_slice(key.as_bytes());
        bytes.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&encoded);
    }
    bytes
}

pub(crate) fn decode_kv_bucket(
    bytes: &[u8],
    what: &dyn Fn() -> String,
) -> StorageResult<Vec<(String, KvEntry)>> {
    let mut fields = Fields { bytes, what };
    let count = fields.u32()?;
    let mut entries = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let key_len = fields.u32()? as usize;
        let key = fields.text(key_len)?.to_string();
        let entry_len = fields.u32()? as usize;
        let entry = decode_kv_entry(fields.take(entry_len)?, what)?;
        entries.push((key, entry));
    }
    Ok(entries)
}

/// What the blob store keeps per committed blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BlobContent {
    pub size: u64,
    /// Every chunk but the last holds exactly this many bytes, so an offset maps to a chunk.
    pub chunk_size: u32,
    /// The key prefix of its chunks in `blob_chunks`.
    pub chunks: ChunkLocation,
}

/// Where a committed blob's chunks are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ChunkLocation {
    /// Under the digest (`digest \0 sequence`): blobs committed by format 1, which copied
    /// the staged chunks at commit.
    Digest,
    /// Where its writer staged them (`staged/<id> \0 sequence`): the commit only pointed the
    /// content record at them (format 2).
    Staged(String),
}

/// 8 bytes of size, 4 of chunk size, then (format 2) the staging id the chunks are under.
pub(crate) fn encode_blob_content(content: &BlobContent) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(12 + 32);
    bytes.extend_from_slice(&content.size.to_be_bytes());
    bytes.extend_from_slice(&content.chunk_size.to_be_bytes());
    if let ChunkLocation::Staged(id) = &content.chunks {
        bytes.extend_from_slice(id.as_bytes());
    }
    bytes
}

pub(crate) fn decode_blob_content(bytes: &[u8], digest: &Digest) -> StorageResult<BlobContent> {
    let what = || format!("content record of {digest}");
    let mut fields = Fields { bytes, what: &what };
    let size = fields.u64()?;
    let chunk_size = fields.u32()?;
    let chunks = match fields.bytes.len() {
        0 => ChunkLocation::Digest,
        len => ChunkLocation::Staged(fields.text(len)?.to_string()),
    };
    let content = BlobContent {
        size,
        chunk_size,
        chunks,
    };
    if content.chunk_size == 0 {
        return Err(corrupt(what(), "chunk size is zero"));
    }
    Ok(content)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traits::Algorithm;

    #[test]
    fn kv_bucket_round_trips() {
        let entries = vec![
            (
                "a".to_string(),
                KvEntry {
                    value: b"one".to_vec(),
                    blob: Some(Digest::of_bytes(Algorithm::Sha512, b"x")),
                    version: 3,
                },
            ),
            (
                "b".to_string(),
                KvEntry {
                    value: Vec::new(),
                    blob: None,
                    version: 1,
                },
            ),
        ];
        let what = || "test bucket".to_string();
        let decoded = decode_kv_bucket(&encode_kv_bucket(&entries), &what).unwrap();
        assert_eq!(decoded, entries);
    }

    #[test]
    fn truncated_record_is_an_error() {
        let digest = Digest::of_bytes(Algorithm::Sha256, b"x");
        assert!(decode_blob_record(digest, &[0, 1, 2]).is_err());
    }
}
