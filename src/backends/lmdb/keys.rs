//! Key layout shared by the databases, and the cursor walks built on it.
//!
//! Composite keys join their parts with a NUL byte (`digest \0 data_type`). Digests and data
//! types never contain NUL, so the first NUL ends the first part, and every key starting with
//! `part \0` sorts before `part \x01`: that is how a walk skips to the next distinct first part
//! without reading the keys in between.

use heed::{RoTxn, RwTxn};

use super::environment::{HeedResultExt, RawDatabase};
use crate::traits::{Digest, StorageError, StorageResult};

pub(crate) const SEPARATOR: u8 = 0;

/// LMDB's compiled-in key size limit (`MDB_MAXKEYSIZE`).
pub(crate) const MAX_KEY_LEN: usize = 511;

/// `first \0 second`.
pub(crate) fn join(first: &[u8], second: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(first.len() + 1 + second.len());
    key.extend_from_slice(first);
    key.push(SEPARATOR);
    key.extend_from_slice(second);
    key
}

/// `first \0`: the prefix of every key whose first part is `first`.
pub(crate) fn prefix_of(first: &[u8]) -> Vec<u8> {
    join(first, b"")
}

/// The part of `key` before its first NUL (the whole key when it has none).
pub(crate) fn first_part(key: &[u8]) -> &[u8] {
    match key.iter().position(|&byte| byte == SEPARATOR) {
        Some(end) => &key[..end],
        None => key,
    }
}

/// The part of `key` after its first NUL (empty when it has none).
pub(crate) fn rest_after_first_part(key: &[u8]) -> &[u8] {
    match key.iter().position(|&byte| byte == SEPARATOR) {
        Some(end) => &key[end + 1..],
        None => &[],
    }
}

/// Refuses a key LMDB cannot store, naming what it is for.
pub(crate) fn check_key_len(key: &[u8], what: impl FnOnce() -> String) -> StorageResult<()> {
    if key.len() > MAX_KEY_LEN {
        return Err(StorageError::InvalidArgument(format!(
            "{} is too long for the lmdb backend ({} bytes, at most {MAX_KEY_LEN} in a key)",
            what(),
            key.len()
        )));
    }
    Ok(())
}

/// Refuses a NUL in a name used as the first part of a composite key.
pub(crate) fn check_no_separator(name: &str, what: &str) -> StorageResult<()> {
    if name.as_bytes().contains(&SEPARATOR) {
        return Err(StorageError::InvalidArgument(format!(
            "{what} {name:?} contains a NUL character"
        )));
    }
    Ok(())
}

pub(crate) fn utf8<'a>(bytes: &'a [u8], what: &str) -> StorageResult<&'a str> {
    std::str::from_utf8(bytes).map_err(|error| {
        StorageError::backend(
            super::BACKEND_NAME,
            format!("corrupt {what} in LMDB: {}", String::from_utf8_lossy(bytes)),
            error,
        )
    })
}

pub(crate) fn digest_from_key(bytes: &[u8]) -> StorageResult<Digest> {
    Ok(Digest::parse(utf8(bytes, "digest")?)?)
}

/// Every distinct first part of the keys of `database`, sorted, reading one key per part.
pub(crate) fn distinct_first_parts(
    database: &RawDatabase,
    rtxn: &RoTxn,
    what: &str,
) -> StorageResult<Vec<Vec<u8>>> {
    distinct_first_parts_after(database, rtxn, None, usize::MAX, what)
}

/// At most `limit` of the distinct first parts that sort after `after` (from the first key
/// when `None`), in order.
pub(crate) fn distinct_first_parts_after(
    database: &RawDatabase,
    rtxn: &RoTxn,
    after: Option<&[u8]>,
    limit: usize,
    what: &str,
) -> StorageResult<Vec<Vec<u8>>> {
    let mut parts = Vec::new();
    let mut next_start: Option<Vec<u8>> = after.map(|part| {
        let mut start = part.to_vec();
        start.push(SEPARATOR + 1);
        start
    });
    while parts.len() < limit {
        let next = match &next_start {
            None => database.first(rtxn),
            Some(start) => database.get_greater_than_or_equal_to(rtxn, start),
        }
        .with_context(|| format!("listing {what}"))?;
        let Some((key, _)) = next else { break };
        let part = first_part(key).to_vec();
        // `part \x01` sorts after every `part \0 ...` key and after `part` itself.
        let mut start = part.clone();
        start.push(SEPARATOR + 1);
        next_start = Some(start);
        parts.push(part);
    }
    Ok(parts)
}

/// The digests that are first parts of keys of `database`, a page of at most `limit` after
/// `after`, in order: a paged listing for [`crate::traits::SortedDigests`].
pub(crate) fn digest_page(
    database: &RawDatabase,
    rtxn: &RoTxn,
    after: Option<&Digest>,
    limit: usize,
    what: &str,
) -> StorageResult<Vec<Digest>> {
    let after = after.map(|digest| digest.as_str().as_bytes());
    distinct_first_parts_after(database, rtxn, after, limit, what)?
        .iter()
        .map(|part| digest_from_key(part))
        .collect()
}

/// Deletes every key starting with `prefix`. Returns how many entries and value bytes went.
pub(crate) fn delete_prefix(
    database: &RawDatabase,
    wtxn: &mut RwTxn,
    prefix: &[u8],
    what: &str,
) -> StorageResult<(u64, u64)> {
    let context = || format!("deleting {what}");
    let mut entries = 0;
    let mut bytes = 0;
    let mut cursor = database
        .prefix_iter_mut(wtxn, prefix)
        .with_context(context)?;
    while let Some(entry) = cursor.next() {
        let value_len = entry.with_context(context)?.1.len() as u64;
        // SAFETY: nothing borrowed from the entry is kept past this point.
        unsafe { cursor.del_current() }.with_context(context)?;
        entries += 1;
        bytes += value_len;
    }
    Ok((entries, bytes))
}

pub(crate) fn encode_u64(value: u64) -> [u8; 8] {
    value.to_be_bytes()
}

pub(crate) fn decode_u64(bytes: &[u8], what: impl FnOnce() -> String) -> StorageResult<u64> {
    let array: [u8; 8] = bytes
        .try_into()
        .map_err(|_| super::records::corrupt(what(), "expected an 8-byte number"))?;
    Ok(u64::from_be_bytes(array))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_split_at_first_separator() {
        let key = join(b"sha256:ab", b"type\0more");
        assert_eq!(first_part(&key), b"sha256:ab");
        assert_eq!(rest_after_first_part(&key), b"type\0more");
        assert_eq!(first_part(b"plain"), b"plain");
        assert_eq!(prefix_of(b"x"), b"x\0");
    }
}
