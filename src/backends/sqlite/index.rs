//! [`Index`] over the `blobs` table, keyed by the canonical digest string so that SQL order is
//! [`Digest`] order.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::connection::{Database, Durability};
use super::key_range::prefix_upper_bound;
use super::values::{digest_column, limit_parameter, to_integer, u64_column};
use crate::traits::{BlobRecord, Digest, DigestPrefix, Index, IndexTotals, StorageResult};

pub struct SqliteIndex {
    database: Database,
}

impl SqliteIndex {
    /// Opens the index in the store directory `dir` (database `dir/meta/sqlite/store.db`).
    pub fn open(dir: &Path) -> StorageResult<Self> {
        Ok(SqliteIndex {
            database: Database::open(dir)?,
        })
    }
}

/// The record of one digest, by the primary key.
fn record_of(connection: &Connection, digest: &Digest) -> rusqlite::Result<Option<BlobRecord>> {
    connection
        .prepare_cached(
            "SELECT digest, size, media_type, created_unix_ms FROM blobs
             WHERE digest = ?1",
        )?
        .query_row([digest.as_str()], record_from_row)
        .optional()
}

fn record_from_row(row: &Row<'_>) -> rusqlite::Result<BlobRecord> {
    Ok(BlobRecord {
        digest: digest_column(row, 0)?,
        size: u64_column(row, 1)?,
        media_type: row.get(2)?,
        created_unix_ms: row.get(3)?,
    })
}

impl Index for SqliteIndex {
    /// One transaction (and one sync) for the whole batch.
    fn upsert_many(&self, records: &[BlobRecord]) -> StorageResult<()> {
        let sizes = records
            .iter()
            .map(|record| to_integer(record.size, || format!("size of {}", record.digest)))
            .collect::<StorageResult<Vec<_>>>()?;
        let context = || match records {
            [record] => format!("indexing {}", record.digest),
            _ => format!("indexing {} records", records.len()),
        };
        self.database
            .write(Durability::Full, context, |transaction| {
                let mut statement = transaction.prepare_cached(
                    "INSERT INTO blobs (digest, size, media_type, created_unix_ms)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (digest) DO UPDATE SET size = excluded.size,
                     media_type = excluded.media_type,
                     created_unix_ms = excluded.created_unix_ms",
                )?;
                for (record, size) in records.iter().zip(sizes) {
                    statement.execute(params![
                        record.digest.as_str(),
                        size,
                        record.media_type,
                        record.created_unix_ms
                    ])?;
                }
                Ok(())
            })
    }

    /// One transaction (one sync) for all of them.
    fn remove_many(&self, digests: &[Digest]) -> StorageResult<u64> {
        if digests.is_empty() {
            return Ok(0);
        }
        let context = || match digests {
            [digest] => format!("removing the index record of {digest}"),
            _ => format!("removing the index records of {} blobs", digests.len()),
        };
        self.database
            .write(Durability::Full, context, |transaction| {
                let mut statement =
                    transaction.prepare_cached("DELETE FROM blobs WHERE digest = ?1")?;
                let mut removed = 0;
                for digest in digests {
                    removed += statement.execute([digest.as_str()])? as u64;
                }
                Ok(removed)
            })
    }

    /// A point lookup on the primary key. The provided form (a `by_prefix` range of one key)
    /// costs twice as much here: SQLite re-plans a range statement each time its bounds change.
    fn get(&self, digest: &Digest) -> StorageResult<Option<BlobRecord>> {
        self.database.read(
            || format!("reading the index record of {digest}"),
            |connection| record_of(connection, digest),
        )
    }

    /// One read transaction for all of them: outside a transaction every statement takes the
    /// WAL read lock anew.
    fn get_many(&self, digests: &[Digest]) -> StorageResult<Vec<Option<BlobRecord>>> {
        self.database.read(
            || format!("reading the index records of {} blobs", digests.len()),
            |connection| {
                let _snapshot = connection.unchecked_transaction()?;
                digests
                    .iter()
                    .map(|digest| record_of(connection, digest))
                    .collect()
            },
        )
    }

    fn by_prefix(&self, prefix: &DigestPrefix, limit: usize) -> StorageResult<Vec<BlobRecord>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut records = self.database.read(
            || format!("searching the index for digests starting with {prefix}"),
            |connection| {
                let mut records = Vec::new();
                // One read transaction around the scans: the WAL read lock is taken once per
                // lookup, not once per algorithm.
                let snapshot = connection.unchecked_transaction()?;
                // One range scan per algorithm the prefix may belong to (bare hex: all of them).
                for key_prefix in prefix.key_prefixes() {
                    let found = match prefix_upper_bound(&key_prefix) {
                        Some(upper_bound) => connection
                            .prepare_cached(
                                "SELECT digest, size, media_type, created_unix_ms FROM blobs
                                 WHERE digest >= ?1 AND digest < ?2
                                 ORDER BY digest LIMIT ?3",
                            )?
                            .query_map(
                                params![key_prefix, upper_bound, limit_parameter(limit)],
                                record_from_row,
                            )?
                            .collect::<rusqlite::Result<Vec<_>>>()?,
                        None => connection
                            .prepare_cached(
                                "SELECT digest, size, media_type, created_unix_ms FROM blobs
                                 WHERE digest >= ?1 ORDER BY digest LIMIT ?2",
                            )?
                            .query_map(
                                params![key_prefix, limit_parameter(limit)],
                                record_from_row,
                            )?
                            .collect::<rusqlite::Result<Vec<_>>>()?,
                    };
                    records.extend(found);
                }
                snapshot.finish()?;
                Ok(records)
            },
        )?;
        records.sort_by(|a, b| a.digest.cmp(&b.digest));
        records.truncate(limit);
        Ok(records)
    }

    fn by_media_type(&self, media_type: &str) -> StorageResult<Vec<BlobRecord>> {
        self.database.read(
            || format!("listing index records of media type {media_type:?}"),
            |connection| {
                connection
                    .prepare_cached(
                        "SELECT digest, size, media_type, created_unix_ms FROM blobs
                         WHERE media_type = ?1 ORDER BY digest",
                    )?
                    .query_map([media_type], record_from_row)?
                    .collect()
            },
        )
    }

    fn page(&self, after: Option<&Digest>, limit: usize) -> StorageResult<Vec<BlobRecord>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // Every digest sorts after the empty string, so "no start" is the same statement.
        let after = after.map_or("", Digest::as_str);
        self.database.read(
            || format!("listing index records after {after:?}"),
            |connection| {
                connection
                    .prepare_cached(
                        "SELECT digest, size, media_type, created_unix_ms FROM blobs
                         WHERE digest > ?1 ORDER BY digest LIMIT ?2",
                    )?
                    .query_map(params![after, limit_parameter(limit)], record_from_row)?
                    .collect()
            },
        )
    }

    fn totals(&self) -> StorageResult<IndexTotals> {
        self.database.read(
            || "counting index records and their sizes".to_string(),
            |connection| {
                connection
                    .prepare_cached("SELECT count(*), COALESCE(SUM(size), 0) FROM blobs")?
                    .query_row([], |row| {
                        Ok(IndexTotals {
                            records: u64_column(row, 0)?,
                            bytes: u64_column(row, 1)?,
                        })
                    })
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traits::Algorithm;

    fn digest(algorithm: Algorithm, hex_start: &str) -> Digest {
        let hex = format!("{hex_start:0<width$}", width = algorithm.hex_len());
        Digest::parse(&format!("{}:{hex}", algorithm.name())).unwrap()
    }

    fn record(digest: &Digest, size: u64) -> BlobRecord {
        BlobRecord {
            digest: digest.clone(),
            size,
            media_type: if size.is_multiple_of(2) {
                "even"
            } else {
                "odd"
            }
            .to_string(),
            created_unix_ms: 1_700_000_000_000,
        }
    }

    fn digests(records: &[BlobRecord]) -> Vec<Digest> {
        records.iter().map(|r| r.digest.clone()).collect()
    }

    #[test]
    fn upsert_many_writes_a_batch_like_single_upserts() {
        let dir = tempfile::tempdir().unwrap();
        let index = SqliteIndex::open(dir.path()).unwrap();
        let a = digest(Algorithm::Sha256, "aa");
        let b = digest(Algorithm::Sha256, "bb");
        index.upsert(&record(&a, 100)).unwrap();
        index
            .upsert_many(&[record(&b, 5), record(&a, 10), record(&b, 6)])
            .unwrap();
        assert_eq!(index.count().unwrap(), 2);
        assert_eq!(index.total_size().unwrap(), 16);
        assert_eq!(digests(&index.by_media_type("even").unwrap()), vec![a, b]);
        index.upsert_many(&[]).unwrap();
        assert_eq!(index.count().unwrap(), 2);
    }

    #[test]
    fn prefix_scan_spans_algorithms_for_bare_hex_and_respects_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let index = SqliteIndex::open(dir.path()).unwrap();
        let sha256_abcd = digest(Algorithm::Sha256, "abcd");
        let sha256_abcd1 = digest(Algorithm::Sha256, "abcd1");
        let sha256_abce = digest(Algorithm::Sha256, "abce");
        let sha256_abcc = digest(Algorithm::Sha256, "abccf");
        let sha512_abcd = digest(Algorithm::Sha512, "abcd");
        let sha256_ffff = digest(Algorithm::Sha256, "ffff");
        for (position, d) in [
            &sha512_abcd,
            &sha256_abce,
            &sha256_abcd1,
            &sha256_abcd,
            &sha256_abcc,
            &sha256_ffff,
        ]
        .into_iter()
        .enumerate()
        {
            index.upsert(&record(d, position as u64)).unwrap();
        }

        let bare = DigestPrefix::parse("abcd").unwrap();
        assert_eq!(
            digests(&index.by_prefix(&bare, 10).unwrap()),
            vec![
                sha256_abcd.clone(),
                sha256_abcd1.clone(),
                sha512_abcd.clone()
            ]
        );
        assert_eq!(
            digests(&index.by_prefix(&bare, 2).unwrap()),
            vec![sha256_abcd.clone(), sha256_abcd1]
        );
        let sha512 = DigestPrefix::parse("sha512-abcd").unwrap();
        assert_eq!(
            digests(&index.by_prefix(&sha512, 10).unwrap()),
            vec![sha512_abcd]
        );
        let top = DigestPrefix::parse("sha256:ffff").unwrap();
        assert_eq!(
            digests(&index.by_prefix(&top, 10).unwrap()),
            vec![sha256_ffff]
        );
        let complete = DigestPrefix::parse(sha256_abcd.as_str()).unwrap();
        assert_eq!(
            digests(&index.by_prefix(&complete, 10).unwrap()),
            vec![sha256_abcd]
        );
        assert!(index
            .by_prefix(&DigestPrefix::parse("0000").unwrap(), 10)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn pages_counts_sizes_and_media_types() {
        let dir = tempfile::tempdir().unwrap();
        let index = SqliteIndex::open(dir.path()).unwrap();
        assert_eq!(index.count().unwrap(), 0);
        assert_eq!(index.total_size().unwrap(), 0);
        assert!(index.page(None, 10).unwrap().is_empty());

        let all: Vec<Digest> = ["1111", "2222", "3333", "4444", "5555"]
            .iter()
            .map(|hex| digest(Algorithm::Sha256, hex))
            .collect();
        for (position, d) in all.iter().enumerate().rev() {
            index.upsert(&record(d, position as u64 + 1)).unwrap();
        }
        assert_eq!(digests(&index.page(None, 2).unwrap()), all[..2]);
        assert_eq!(digests(&index.page(Some(&all[1]), 2).unwrap()), all[2..4]);
        assert_eq!(
            digests(&index.page(Some(&all[4]), 2).unwrap()),
            Vec::<Digest>::new()
        );
        assert_eq!(index.count().unwrap(), 5);
        assert_eq!(index.total_size().unwrap(), 15);
        assert_eq!(
            digests(&index.by_media_type("odd").unwrap()),
            vec![all[0].clone(), all[2].clone(), all[4].clone()]
        );

        let mut replaced = record(&all[0], 100);
        replaced.media_type = "even".to_string();
        index.upsert(&replaced).unwrap();
        assert_eq!(index.get(&all[0]).unwrap(), Some(replaced));
        assert_eq!(index.total_size().unwrap(), 114);
        assert!(index.remove(&all[0]).unwrap());
        assert!(!index.remove(&all[0]).unwrap());
        assert_eq!(index.get(&all[0]).unwrap(), None);
        assert_eq!(index.count().unwrap(), 4);
    }
}
