//! [`KvStore`] over the `kv` table: primary key `(data_type, key)` for lookups and prefix range
//! scans, a partial index on `blob` for the delete cascade and GC.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};

use super::connection::{Database, Durability, WriteFailure};
use super::key_range::prefix_upper_bound;
use super::values::{digest_page, optional_digest_column, to_integer, u64_column};
use crate::traits::{
    Digest, KvEntry, KvKey, KvOp, KvOpOutcome, KvStore, SortedDigests, StorageError, StorageResult,
};

pub struct SqliteKvStore {
    database: Database,
}

impl SqliteKvStore {
    /// Opens the key/value store in the store directory `dir` (database
    /// `dir/meta/sqlite/store.db`).
    pub fn open(dir: &Path) -> StorageResult<Self> {
        Ok(SqliteKvStore {
            database: Database::open(dir)?,
        })
    }
}

/// Reads `value, blob, version` starting at column `first`.
/// The entries that reference one digest, sorted.
fn keys_referencing(connection: &Connection, digest: &Digest) -> rusqlite::Result<Vec<KvKey>> {
    connection
        .prepare_cached(
            // `?1 || ''`, not `?1`: proving the partial index `kv_by_blob` usable from a bare
            // parameter makes SQLite prepare the statement again at every new value;
            // `blob = <expression>` implies non-NULL on its own.
            "SELECT data_type, key FROM kv WHERE blob = (?1 || '') ORDER BY data_type, key",
        )?
        .query_map([digest.as_str()], |row| {
            Ok(KvKey {
                data_type: row.get(0)?,
                key: row.get(1)?,
            })
        })?
        .collect()
}

fn entry_from_row(row: &Row<'_>, first: usize) -> rusqlite::Result<KvEntry> {
    Ok(KvEntry {
        value: row.get(first)?,
        blob: optional_digest_column(row, first + 1)?,
        version: u64_column(row, first + 2)?,
    })
}

fn current_version(
    transaction: &Transaction<'_>,
    data_type: &str,
    key: &str,
) -> rusqlite::Result<Option<u64>> {
    transaction
        .prepare_cached("SELECT version FROM kv WHERE data_type = ?1 AND key = ?2")?
        .query_row(params![data_type, key], |row| u64_column(row, 0))
        .optional()
}

fn write_entry(
    transaction: &Transaction<'_>,
    data_type: &str,
    key: &str,
    value: &[u8],
    blob: Option<&Digest>,
    version: i64,
) -> rusqlite::Result<()> {
    transaction
        .prepare_cached(
            "INSERT INTO kv (data_type, key, value, blob, version) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (data_type, key) DO UPDATE SET value = excluded.value,
                 blob = excluded.blob, version = excluded.version",
        )?
        .execute(params![
            data_type,
            key,
            value,
            blob.map(Digest::as_str),
            version
        ])?;
    Ok(())
}

/// The version after one more write: 1 for a new entry.
fn next_version(data_type: &str, key: &str, current: Option<u64>) -> Result<u64, WriteFailure> {
    match current {
        None => Ok(1),
        Some(version) => version.checked_add(1).ok_or_else(|| {
            WriteFailure::Refused(StorageError::InvalidArgument(format!(
                "key {data_type}/{key}: version {version} cannot grow any further"
            )))
        }),
    }
}

fn version_parameter(data_type: &str, key: &str, version: u64) -> Result<i64, WriteFailure> {
    to_integer(version, || format!("version of key {data_type}/{key}"))
        .map_err(WriteFailure::Refused)
}

/// Writes an entry inside `transaction`, after checking its version when `expected` is given
/// (`Some(None)`: the key must not exist). Returns the new version.
fn write_in(
    transaction: &Transaction<'_>,
    data_type: &str,
    key: &str,
    value: &[u8],
    blob: Option<&Digest>,
    expected: Option<Option<u64>>,
) -> Result<u64, WriteFailure> {
    // The IMMEDIATE transaction holds the write lock from here to commit, so no other writer
    // can slip in between this check and the write.
    let current = current_version(transaction, data_type, key)?;
    if let Some(expected_version) = expected {
        if current != expected_version {
            return Err(WriteFailure::Refused(StorageError::VersionConflict {
                data_type: data_type.to_string(),
                key: key.to_string(),
                expected: expected_version,
                found: current,
            }));
        }
    }
    let version = next_version(data_type, key, current)?;
    let stored = version_parameter(data_type, key, version)?;
    write_entry(transaction, data_type, key, value, blob, stored)?;
    Ok(version)
}

fn remove_in(transaction: &Transaction<'_>, data_type: &str, key: &str) -> rusqlite::Result<bool> {
    let removed = transaction
        .prepare_cached("DELETE FROM kv WHERE data_type = ?1 AND key = ?2")?
        .execute(params![data_type, key])?;
    Ok(removed > 0)
}

fn apply_in(transaction: &Transaction<'_>, op: &KvOp) -> Result<KvOpOutcome, WriteFailure> {
    Ok(match op {
        KvOp::Put {
            data_type,
            key,
            value,
            blob,
        } => KvOpOutcome::Written(write_in(
            transaction,
            data_type,
            key,
            value,
            blob.as_ref(),
            None,
        )?),
        KvOp::CompareAndSet {
            data_type,
            key,
            value,
            blob,
            expected_version,
        } => KvOpOutcome::Written(write_in(
            transaction,
            data_type,
            key,
            value,
            blob.as_ref(),
            Some(*expected_version),
        )?),
        KvOp::Remove { data_type, key } => {
            KvOpOutcome::Removed(remove_in(transaction, data_type, key)?)
        }
        KvOp::Restore {
            data_type,
            key,
            entry,
        } => {
            let version = to_integer(entry.version, || {
                format!("version of key {data_type}/{key}")
            })
            .map_err(WriteFailure::Refused)?;
            write_entry(
                transaction,
                data_type,
                key,
                &entry.value,
                entry.blob.as_ref(),
                version,
            )?;
            KvOpOutcome::Written(entry.version)
        }
    })
}

impl KvStore for SqliteKvStore {
    fn get(&self, data_type: &str, key: &str) -> StorageResult<Option<KvEntry>> {
        self.database.read(
            || format!("reading key {data_type}/{key}"),
            |connection| {
                connection
                    .prepare_cached(
                        "SELECT value, blob, version FROM kv WHERE data_type = ?1 AND key = ?2",
                    )?
                    .query_row(params![data_type, key], |row| entry_from_row(row, 0))
                    .optional()
            },
        )
    }

    fn list(&self, data_type: &str, key_prefix: &str) -> StorageResult<Vec<(String, KvEntry)>> {
        let keyed_entry = |row: &Row<'_>| Ok((row.get(0)?, entry_from_row(row, 1)?));
        self.database.read(
            || format!("listing keys of {data_type} starting with {key_prefix:?}"),
            |connection| match prefix_upper_bound(key_prefix) {
                Some(upper_bound) => connection
                    .prepare_cached(
                        "SELECT key, value, blob, version FROM kv
                         WHERE data_type = ?1 AND key >= ?2 AND key < ?3 ORDER BY key",
                    )?
                    .query_map(params![data_type, key_prefix, upper_bound], keyed_entry)?
                    .collect(),
                None => connection
                    .prepare_cached(
                        "SELECT key, value, blob, version FROM kv
                         WHERE data_type = ?1 AND key >= ?2 ORDER BY key",
                    )?
                    .query_map(params![data_type, key_prefix], keyed_entry)?
                    .collect(),
            },
        )
    }

    fn data_types(&self) -> StorageResult<Vec<String>> {
        self.database.read(
            || "listing key/value data types".to_string(),
            |connection| {
                connection
                    .prepare_cached("SELECT DISTINCT data_type FROM kv ORDER BY data_type")?
                    .query_map([], |row| row.get(0))?
                    .collect()
            },
        )
    }

    fn referencing(&self, digest: &Digest) -> StorageResult<Vec<KvKey>> {
        self.database.read(
            || format!("listing keys that reference {digest}"),
            |connection| keys_referencing(connection, digest),
        )
    }

    /// One read transaction for all of them.
    fn referencing_many(&self, digests: &[Digest]) -> StorageResult<Vec<Vec<KvKey>>> {
        self.database.read(
            || format!("listing keys that reference {} blobs", digests.len()),
            |connection| {
                let _snapshot = connection.unchecked_transaction()?;
                digests
                    .iter()
                    .map(|digest| keys_referencing(connection, digest))
                    .collect()
            },
        )
    }

    /// One transaction (one sync) for all of them.
    fn remove_referencing_many(&self, digests: &[Digest]) -> StorageResult<u64> {
        if digests.is_empty() {
            return Ok(0);
        }
        let context = || match digests {
            [digest] => format!("removing keys that reference {digest}"),
            _ => format!("removing keys that reference {} blobs", digests.len()),
        };
        self.database
            .write(Durability::Full, context, |transaction| {
                let mut statement = transaction.prepare_cached("DELETE FROM kv WHERE blob = ?1")?;
                let mut removed = 0;
                for digest in digests {
                    removed += statement.execute([digest.as_str()])? as u64;
                }
                Ok(removed)
            })
    }

    fn sorted_referenced_digests(&self) -> StorageResult<SortedDigests<'_>> {
        Ok(SortedDigests::paged(|after, limit| {
            self.database.read(
                || "listing digests referenced by keys".to_string(),
                |connection| {
                    digest_page(
                        connection,
                        "SELECT DISTINCT blob FROM kv WHERE blob IS NOT NULL AND blob > ?1 \
                         ORDER BY blob LIMIT ?2",
                        after,
                        limit,
                    )
                },
            )
        }))
    }

    fn write_batch(&self, ops: &[KvOp]) -> StorageResult<Vec<KvOpOutcome>> {
        // One IMMEDIATE transaction: an error from any operation returns before the commit,
        // and dropping the transaction rolls every earlier operation back.
        let context = || match ops {
            [KvOp::Remove { data_type, key }] => format!("removing key {data_type}/{key}"),
            [KvOp::Restore { data_type, key, .. }] => format!("restoring key {data_type}/{key}"),
            [KvOp::CompareAndSet { data_type, key, .. }] => {
                format!("compare-and-set of key {data_type}/{key}")
            }
            [op] => format!("writing key {}/{}", op.data_type(), op.key()),
            _ => format!("writing a batch of {} key/value operations", ops.len()),
        };
        self.database
            .write(Durability::Full, context, |transaction| {
                ops.iter().map(|op| apply_in(transaction, op)).collect()
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traits::Algorithm;

    fn store() -> (tempfile::TempDir, SqliteKvStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteKvStore::open(dir.path()).unwrap();
        (dir, store)
    }

    #[test]
    fn versions_start_at_one_and_compare_and_set_detects_conflicts() {
        let (_dir, kv) = store();
        assert_eq!(kv.put("ref", "a", b"1", None).unwrap(), 1);
        assert_eq!(kv.put("ref", "a", b"2", None).unwrap(), 2);

        match kv.compare_and_set("ref", "a", b"x", None, None) {
            Err(StorageError::VersionConflict {
                expected: None,
                found: Some(2),
                ..
            }) => {}
            other => panic!("expected a conflict, got {other:?}"),
        }
        match kv.compare_and_set("ref", "missing", b"x", None, Some(1)) {
            Err(StorageError::VersionConflict {
                expected: Some(1),
                found: None,
                ..
            }) => {}
            other => panic!("expected a conflict, got {other:?}"),
        }
        assert_eq!(kv.get("ref", "a").unwrap().unwrap().value, b"2");
        assert_eq!(kv.get("ref", "missing").unwrap(), None);

        assert_eq!(
            kv.compare_and_set("ref", "a", b"3", None, Some(2)).unwrap(),
            3
        );
        assert_eq!(
            kv.compare_and_set("ref", "new", b"n", None, None).unwrap(),
            1
        );
        assert_eq!(kv.get("ref", "a").unwrap().unwrap().version, 3);
    }

    #[test]
    fn lists_by_prefix_in_key_order() {
        let (_dir, kv) = store();
        for key in [
            "tags/b",
            "tags/a",
            "tags/é",
            "tag",
            "tags0",
            "tagsz",
            "tags/\u{10ffff}",
        ] {
            kv.put("ref", key, key.as_bytes(), None).unwrap();
        }
        kv.put("other", "tags/a", b"", None).unwrap();
        let keys: Vec<String> = kv
            .list("ref", "tags/")
            .unwrap()
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        assert_eq!(keys, vec!["tags/a", "tags/b", "tags/é", "tags/\u{10ffff}"]);
        assert_eq!(kv.list("ref", "").unwrap().len(), 7);
        assert_eq!(kv.data_types().unwrap(), vec!["other", "ref"]);
        assert!(kv.remove("ref", "tag").unwrap());
        assert!(!kv.remove("ref", "tag").unwrap());
    }

    #[test]
    fn references_are_found_removed_and_restored_verbatim() {
        let (_dir, kv) = store();
        let layer = Digest::of_bytes(Algorithm::Sha256, b"layer");
        let config = Digest::of_bytes(Algorithm::Sha512, b"config");
        kv.put("ref", "b", b"", Some(&layer)).unwrap();
        kv.put("cache", "z", b"", Some(&layer)).unwrap();
        kv.put("ref", "a", b"", Some(&layer)).unwrap();
        kv.put("ref", "c", b"", Some(&config)).unwrap();
        kv.put("ref", "plain", b"", None).unwrap();

        let keys = kv.referencing(&layer).unwrap();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert_eq!(keys.len(), 3);
        let mut expected_digests = vec![layer.clone(), config.clone()];
        expected_digests.sort();
        assert_eq!(
            kv.sorted_referenced_digests().unwrap().into_vec().unwrap(),
            expected_digests
        );

        assert_eq!(kv.remove_referencing(&layer).unwrap(), 3);
        assert!(kv.referencing(&layer).unwrap().is_empty());
        assert_eq!(
            kv.sorted_referenced_digests().unwrap().into_vec().unwrap(),
            vec![config.clone()]
        );

        let entry = KvEntry {
            value: b"restored".to_vec(),
            blob: Some(config.clone()),
            version: 41,
        };
        kv.restore("ref", "c", &entry).unwrap();
        assert_eq!(kv.get("ref", "c").unwrap(), Some(entry));
        assert_eq!(kv.put("ref", "c", b"next", None).unwrap(), 42);
        assert_eq!(kv.get("ref", "c").unwrap().unwrap().blob, None);
    }
}
