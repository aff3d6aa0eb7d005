//! Extra data in LMDB: `digest \0 data_type -> value`, so a blob's items are one key range
//! (types sorted, remove-all by prefix), plus `data_type \0 digest` in a second database so
//! the items of one type come out in digest order without a full scan.

use std::path::Path;
use std::sync::Arc;

use heed::{RoTxn, RwTxn};

use super::environment::{HeedResultExt, SharedEnv};
use super::keys::{
    check_key_len, check_no_separator, delete_prefix, digest_from_key, digest_page, first_part,
    join, prefix_of, rest_after_first_part, utf8,
};
use crate::traits::{Digest, ExtraData, ExtraOp, SortedDigests, StorageResult};

pub struct LmdbExtraData {
    env: Arc<SharedEnv>,
}

impl LmdbExtraData {
    /// Opens (creating if needed) the extra data in `dir/meta/lmdb/`.
    pub fn open(dir: &Path) -> StorageResult<Self> {
        Ok(Self::with_environment(SharedEnv::open(
            &super::environment_dir(dir),
        )?))
    }

    pub(crate) fn with_environment(env: Arc<SharedEnv>) -> Self {
        LmdbExtraData { env }
    }

    /// Writes one item into both databases.
    fn set_in(&self, wtxn: &mut RwTxn, item: &PreparedItem, value: &[u8]) -> StorageResult<()> {
        let context = || format!("writing extra data {:?} of {}", item.data_type, item.digest);
        let databases = &self.env.databases;
        databases
            .extra
            .put(wtxn, &item.key, value)
            .with_context(context)?;
        databases
            .extra_by_type
            .put(wtxn, &item.by_type, b"")
            .with_context(context)
    }

    /// Removes one item from both databases; returns whether it was there.
    fn remove_in(&self, wtxn: &mut RwTxn, digest: &Digest, data_type: &str) -> StorageResult<bool> {
        let context = || format!("removing extra data {data_type:?} of {digest}");
        let databases = &self.env.databases;
        let removed = databases
            .extra
            .delete(wtxn, &item_key(digest, data_type))
            .with_context(context)?;
        databases
            .extra_by_type
            .delete(wtxn, &type_key(data_type, digest))
            .with_context(context)?;
        Ok(removed)
    }

    /// Removes every item of one blob from both databases; returns how many there were.
    fn remove_all_in(&self, wtxn: &mut RwTxn, digest: &Digest) -> StorageResult<u64> {
        let databases = &self.env.databases;
        let mut types = Vec::new();
        {
            let context = || format!("listing extra data types of {digest}");
            let items = databases
                .extra
                .prefix_iter(wtxn, &prefix_of(digest.as_str().as_bytes()))
                .with_context(context)?;
            for item in items {
                let (key, _) = item.with_context(context)?;
                types.push(rest_after_first_part(key).to_vec());
            }
        }
        for data_type in &types {
            databases
                .extra_by_type
                .delete(wtxn, &join(data_type, digest.as_str().as_bytes()))
                .with_context(|| format!("removing extra data of {digest}"))?;
        }
        let (removed, _) = delete_prefix(
            &databases.extra,
            wtxn,
            &prefix_of(digest.as_str().as_bytes()),
            &format!("extra data of {digest}"),
        )?;
        Ok(removed)
    }

    /// The data types of one blob, sorted, read in the caller's transaction.
    fn types_in(&self, rtxn: &RoTxn, digest: &Digest) -> StorageResult<Vec<String>> {
        let context = || format!("listing extra data types of {digest}");
        let items = self
            .env
            .databases
            .extra
            .prefix_iter(rtxn, &prefix_of(digest.as_str().as_bytes()))
            .with_context(context)?;
        let mut types = Vec::new();
        for item in items {
            let (key, _) = item.with_context(context)?;
            types.push(utf8(rest_after_first_part(key), "extra data type")?.to_string());
        }
        Ok(types)
    }
}

/// An item's keys, built and checked before its write transaction starts, so the transaction
/// (which LMDB may retry after growing the map) does no more than write.
struct PreparedItem<'a> {
    digest: &'a Digest,
    data_type: &'a str,
    key: Vec<u8>,
    by_type: Vec<u8>,
}

impl<'a> PreparedItem<'a> {
    fn new(digest: &'a Digest, data_type: &'a str) -> StorageResult<Self> {
        check_no_separator(data_type, "extra data type")?;
        let key = item_key(digest, data_type);
        check_key_len(&key, || format!("extra data type {data_type:?}"))?;
        Ok(PreparedItem {
            digest,
            data_type,
            key,
            by_type: type_key(data_type, digest),
        })
    }
}

fn item_key(digest: &Digest, data_type: &str) -> Vec<u8> {
    join(digest.as_str().as_bytes(), data_type.as_bytes())
}

fn type_key(data_type: &str, digest: &Digest) -> Vec<u8> {
    join(data_type.as_bytes(), digest.as_str().as_bytes())
}

impl ExtraData for LmdbExtraData {
    fn get(&self, digest: &Digest, data_type: &str) -> StorageResult<Option<Vec<u8>>> {
        let key = item_key(digest, data_type);
        if check_key_len(&key, String::new).is_err() {
            return Ok(None);
        }
        self.env.read(|rtxn| {
            Ok(self
                .env
                .databases
                .extra
                .get(rtxn, &key)
                .with_context(|| format!("reading extra data {data_type:?} of {digest}"))?
                .map(<[u8]>::to_vec))
        })
    }

    fn types(&self, digest: &Digest) -> StorageResult<Vec<String>> {
        self.env.read(|rtxn| self.types_in(rtxn, digest))
    }

    /// One read transaction for all of them.
    fn types_many(&self, digests: &[Digest]) -> StorageResult<Vec<Vec<String>>> {
        self.env.read(|rtxn| {
            digests
                .iter()
                .map(|digest| self.types_in(rtxn, digest))
                .collect()
        })
    }

    fn sorted_digests(&self) -> StorageResult<SortedDigests<'_>> {
        Ok(SortedDigests::paged(|after, limit| {
            self.env.read(|rtxn| {
                digest_page(
                    &self.env.databases.extra,
                    rtxn,
                    after,
                    limit,
                    "blobs with extra data",
                )
            })
        }))
    }

    fn sorted_digests_with_type_prefix(
        &self,
        type_prefix: &str,
    ) -> StorageResult<SortedDigests<'_>> {
        let prefix = type_prefix.as_bytes().to_vec();
        Ok(SortedDigests::paged(move |after, limit| {
            self.env.read(|rtxn| {
                let context = || {
                    format!(
                        "listing blobs with extra data of types {}*",
                        String::from_utf8_lossy(&prefix)
                    )
                };
                // Keys are `digest \0 type`: one pass in digest order from after the last
                // page's digest (`digest \x01` sorts after all its keys).
                // (LMDB refuses an empty key: no lower bound for the first page.)
                let start: Option<Vec<u8>> = after.map(|digest| {
                    let mut start = digest.as_str().as_bytes().to_vec();
                    start.push(super::keys::SEPARATOR + 1);
                    start
                });
                let bounds = (
                    start
                        .as_deref()
                        .map_or(std::ops::Bound::Unbounded, std::ops::Bound::Included),
                    std::ops::Bound::Unbounded,
                );
                let mut digests: Vec<Digest> = Vec::new();
                let mut last: Option<Vec<u8>> = None;
                for entry in self
                    .env
                    .databases
                    .extra
                    .range(rtxn, &bounds)
                    .with_context(context)?
                {
                    let (key, _) = entry.with_context(context)?;
                    let digest = first_part(key);
                    if last.as_deref() == Some(digest)
                        || !rest_after_first_part(key).starts_with(&prefix)
                    {
                        continue;
                    }
                    digests.push(digest_from_key(digest)?);
                    last = Some(digest.to_vec());
                    if digests.len() >= limit {
                        break;
                    }
                }
                Ok(digests)
            })
        }))
    }

    fn entries_of_type(&self, data_type: &str) -> StorageResult<Vec<(Digest, Vec<u8>)>> {
        if data_type.as_bytes().contains(&super::keys::SEPARATOR) {
            return Ok(Vec::new());
        }
        self.env.read(|rtxn| {
            let context = || format!("listing extra data of type {data_type:?}");
            let databases = &self.env.databases;
            let keys = databases
                .extra_by_type
                .prefix_iter(rtxn, &prefix_of(data_type.as_bytes()))
                .with_context(context)?;
            let mut entries = Vec::new();
            for key in keys {
                let (key, _) = key.with_context(context)?;
                let digest = digest_from_key(rest_after_first_part(key))?;
                let value = databases
                    .extra
                    .get(rtxn, &item_key(&digest, data_type))
                    .with_context(context)?;
                if let Some(value) = value {
                    entries.push((digest, value.to_vec()));
                }
            }
            Ok(entries)
        })
    }

    /// One write transaction for the whole batch.
    fn write_batch(&self, ops: &[ExtraOp]) -> StorageResult<Vec<u64>> {
        ops.iter().try_for_each(ExtraOp::check)?;
        let prepared = ops
            .iter()
            .map(|op| {
                let item = match op.data_type() {
                    Some(data_type) => Some(PreparedItem::new(op.digest(), data_type)?),
                    None => None,
                };
                Ok((op, item))
            })
            .collect::<StorageResult<Vec<_>>>()?;
        if prepared.is_empty() {
            return Ok(Vec::new());
        }
        self.env.write(|wtxn| {
            let mut changed = Vec::with_capacity(prepared.len());
            for (op, item) in &prepared {
                let count = match (op, item) {
                    (ExtraOp::Set { value, .. }, Some(item)) => {
                        self.set_in(wtxn, item, value)?;
                        1
                    }
                    (ExtraOp::Remove { digest, data_type }, _) => {
                        u64::from(self.remove_in(wtxn, digest, data_type)?)
                    }
                    (ExtraOp::RemoveAll { digest }, _) => self.remove_all_in(wtxn, digest)?,
                    (ExtraOp::Set { .. }, None) => unreachable!("a set has a data type"),
                };
                changed.push(count);
            }
            Ok(changed)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traits::Algorithm;

    #[test]
    fn items_are_listed_sorted_and_removed_together() {
        let dir = tempfile::tempdir().unwrap();
        let extra = LmdbExtraData::open(dir.path()).unwrap();
        let a = Digest::of_bytes(Algorithm::Sha256, b"a");
        let b = Digest::of_bytes(Algorithm::Sha512, b"b");
        extra.set(&a, "zeta", b"1").unwrap();
        extra.set(&a, "alpha", b"2").unwrap();
        extra.set(&b, "alpha", b"3").unwrap();
        assert_eq!(extra.types(&a).unwrap(), vec!["alpha", "zeta"]);
        let mut expected = vec![a.clone(), b.clone()];
        expected.sort();
        assert_eq!(
            extra.sorted_digests().unwrap().into_vec().unwrap(),
            expected
        );
        let alpha = extra.entries_of_type("alpha").unwrap();
        assert_eq!(
            alpha.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>(),
            expected
        );
        assert_eq!(extra.remove_all(&a).unwrap(), 2);
        assert_eq!(extra.get(&a, "zeta").unwrap(), None);
        assert_eq!(
            extra.entries_of_type("alpha").unwrap(),
            vec![(b, b"3".to_vec())]
        );
        assert_eq!(extra.entries_of_type("zeta").unwrap(), vec![]);
    }
}
