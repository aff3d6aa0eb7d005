//! [`ExtraData`] over the `extra` table: primary key `(digest, data_type)` answers per-blob
//! questions, the index `(data_type, digest)` answers per-type ones, both already sorted.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use super::connection::{Database, Durability};
use super::values::{digest_column, digest_page};
use crate::traits::{Digest, ExtraData, ExtraOp, SortedDigests, StorageResult};

const SET_ITEM: &str = "INSERT INTO extra (digest, data_type, value) VALUES (?1, ?2, ?3)
     ON CONFLICT (digest, data_type) DO UPDATE SET value = excluded.value";
const REMOVE_ITEM: &str = "DELETE FROM extra WHERE digest = ?1 AND data_type = ?2";

/// The data types of one blob, sorted.
fn types_of(connection: &Connection, digest: &Digest) -> rusqlite::Result<Vec<String>> {
    connection
        .prepare_cached("SELECT data_type FROM extra WHERE digest = ?1 ORDER BY data_type")?
        .query_map([digest.as_str()], |row| row.get(0))?
        .collect()
}

pub struct SqliteExtraData {
    database: Database,
}

impl SqliteExtraData {
    /// Opens the extra data in the store directory `dir` (database `dir/meta/sqlite/store.db`).
    pub fn open(dir: &Path) -> StorageResult<Self> {
        Ok(SqliteExtraData {
            database: Database::open(dir)?,
        })
    }
}

impl ExtraData for SqliteExtraData {
    fn get(&self, digest: &Digest, data_type: &str) -> StorageResult<Option<Vec<u8>>> {
        self.database.read(
            || format!("reading extra data {data_type:?} of {digest}"),
            |connection| {
                connection
                    .prepare_cached("SELECT value FROM extra WHERE digest = ?1 AND data_type = ?2")?
                    .query_row(params![digest.as_str(), data_type], |row| row.get(0))
                    .optional()
            },
        )
    }

    fn types(&self, digest: &Digest) -> StorageResult<Vec<String>> {
        self.database.read(
            || format!("listing extra data types of {digest}"),
            |connection| types_of(connection, digest),
        )
    }

    /// One read transaction for all of them.
    fn types_many(&self, digests: &[Digest]) -> StorageResult<Vec<Vec<String>>> {
        self.database.read(
            || format!("listing extra data types of {} blobs", digests.len()),
            |connection| {
                let _snapshot = connection.unchecked_transaction()?;
                digests
                    .iter()
                    .map(|digest| types_of(connection, digest))
                    .collect()
            },
        )
    }

    fn sorted_digests(&self) -> StorageResult<SortedDigests<'_>> {
        Ok(SortedDigests::paged(|after, limit| {
            self.database.read(
                || "listing blobs that have extra data".to_string(),
                |connection| {
                    digest_page(
                        connection,
                        "SELECT DISTINCT digest FROM extra WHERE digest > ?1 ORDER BY digest \
                         LIMIT ?2",
                        after,
                        limit,
                    )
                },
            )
        }))
    }

    fn sorted_digests_with_type_prefix(
        &self,
        type_prefix: &str,
    ) -> StorageResult<SortedDigests<'_>> {
        let prefix = type_prefix.to_string();
        Ok(SortedDigests::paged(move |after, limit| {
            self.database.read(
                || format!("listing blobs with extra data of types {prefix}*"),
                |connection| {
                    let after = after.map_or("", Digest::as_str);
                    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
                    // A range on the primary key's second column; `substr` keeps `LIKE`'s
                    // wildcards and case folding out of it.
                    connection
                        .prepare_cached(
                            "SELECT DISTINCT digest FROM extra WHERE digest > ?1 \
                             AND substr(data_type, 1, length(?2)) = ?2 \
                             ORDER BY digest LIMIT ?3",
                        )?
                        .query_map(rusqlite::params![after, prefix, limit], |row| {
                            digest_column(row, 0)
                        })?
                        .collect()
                },
            )
        }))
    }

    fn entries_of_type(&self, data_type: &str) -> StorageResult<Vec<(Digest, Vec<u8>)>> {
        self.database.read(
            || format!("listing extra data of type {data_type:?}"),
            |connection| {
                connection
                    .prepare_cached(
                        "SELECT digest, value FROM extra WHERE data_type = ?1 ORDER BY digest",
                    )?
                    .query_map([data_type], |row| Ok((digest_column(row, 0)?, row.get(1)?)))?
                    .collect()
            },
        )
    }

    /// One `BEGIN IMMEDIATE` transaction (one sync) for the whole batch.
    fn write_batch(&self, ops: &[ExtraOp]) -> StorageResult<Vec<u64>> {
        ops.iter().try_for_each(ExtraOp::check)?;
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        let context = || match ops {
            [ExtraOp::Set {
                digest, data_type, ..
            }] => format!("setting extra data {data_type:?} of {digest}"),
            [ExtraOp::Remove { digest, data_type }] => {
                format!("removing extra data {data_type:?} of {digest}")
            }
            [ExtraOp::RemoveAll { digest }] => format!("removing all extra data of {digest}"),
            _ if ops.iter().all(|op| matches!(op, ExtraOp::RemoveAll { .. })) => {
                format!("removing all extra data of {} blobs", ops.len())
            }
            _ => format!("writing a batch of {} extra data items", ops.len()),
        };
        self.database
            .write(Durability::Full, context, |transaction| {
                let mut set = transaction.prepare_cached(SET_ITEM)?;
                let mut remove = transaction.prepare_cached(REMOVE_ITEM)?;
                let mut remove_all =
                    transaction.prepare_cached("DELETE FROM extra WHERE digest = ?1")?;
                let mut changed = Vec::with_capacity(ops.len());
                for op in ops {
                    let rows = match op {
                        ExtraOp::Set {
                            digest,
                            data_type,
                            value,
                        } => set.execute(params![digest.as_str(), data_type, value])?,
                        ExtraOp::Remove { digest, data_type } => {
                            remove.execute(params![digest.as_str(), data_type])?
                        }
                        ExtraOp::RemoveAll { digest } => remove_all.execute([digest.as_str()])?,
                    };
                    changed.push(rows as u64);
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
    fn items_are_sorted_replaced_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let extra = SqliteExtraData::open(dir.path()).unwrap();
        let mut blobs = vec![
            Digest::of_bytes(Algorithm::Sha256, b"one"),
            Digest::of_bytes(Algorithm::Sha512, b"two"),
            Digest::of_bytes(Algorithm::Sha256, b"three"),
        ];
        for blob in &blobs {
            extra.set(blob, "owner.oci", b"1").unwrap();
        }
        extra.set(&blobs[0], "last-used", b"old").unwrap();
        extra.set(&blobs[0], "last-used", b"new").unwrap();
        extra.set(&blobs[0], "empty", b"").unwrap();

        assert_eq!(
            extra.get(&blobs[0], "last-used").unwrap(),
            Some(b"new".to_vec())
        );
        assert_eq!(extra.get(&blobs[0], "empty").unwrap(), Some(Vec::new()));
        assert_eq!(extra.get(&blobs[1], "last-used").unwrap(), None);
        assert_eq!(
            extra.types(&blobs[0]).unwrap(),
            vec!["empty", "last-used", "owner.oci"]
        );

        blobs.sort();
        assert_eq!(extra.sorted_digests().unwrap().into_vec().unwrap(), blobs);
        let owners = extra.entries_of_type("owner.oci").unwrap();
        assert_eq!(
            owners.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>(),
            blobs
        );

        assert!(extra.remove(&blobs[1], "owner.oci").unwrap());
        assert!(!extra.remove(&blobs[1], "owner.oci").unwrap());
        let first = Digest::of_bytes(Algorithm::Sha256, b"one");
        assert_eq!(extra.remove_all(&first).unwrap(), 3);
        assert_eq!(extra.remove_all(&first).unwrap(), 0);
        assert!(extra.types(&first).unwrap().is_empty());
    }
}
