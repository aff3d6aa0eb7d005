//! The reference for the sqlite backend: plain rusqlite doing the same commit, with the settings
//! of `src/backends/sqlite/connection.rs` (WAL, `synchronous = FULL`, 30 s busy timeout) and the
//! backend's `kv` table, one `BEGIN IMMEDIATE` transaction with an `INSERT OR REPLACE` per put.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::kv_contenders::KvContender;
use super::measure::BenchResult;

pub struct RawSqlite {
    connection: Connection,
}

impl RawSqlite {
    pub fn open(dir: &Path) -> BenchResult<RawSqlite> {
        let connection = Connection::open(dir.join("raw.db"))?;
        connection.busy_timeout(Duration::from_secs(30))?;
        let mode: String =
            connection.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(format!("raw sqlite reference: journal mode is {mode}, not wal").into());
        }
        connection.execute_batch(
            "PRAGMA synchronous = FULL;
             PRAGMA foreign_keys = ON;
             PRAGMA journal_size_limit = 67108864;
             PRAGMA mmap_size = 268435456;
             CREATE TABLE IF NOT EXISTS kv (
                 data_type TEXT NOT NULL,
                 key TEXT NOT NULL,
                 value BLOB NOT NULL,
                 blob TEXT,
                 version INTEGER NOT NULL,
                 PRIMARY KEY (data_type, key)
             ) WITHOUT ROWID;",
        )?;
        Ok(RawSqlite { connection })
    }
}

impl KvContender for RawSqlite {
    fn put(&mut self, data_type: &str, key: &str, value: &[u8]) -> BenchResult<()> {
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        transaction
            .prepare_cached(
                "INSERT OR REPLACE INTO kv (data_type, key, value, blob, version)
                 VALUES (?1, ?2, ?3, NULL, 1)",
            )?
            .execute((data_type, key, value))?;
        transaction.commit()?;
        Ok(())
    }

    fn get(&mut self, data_type: &str, key: &str) -> BenchResult<bool> {
        let found = self
            .connection
            .prepare_cached(
                "SELECT value, blob, version FROM kv WHERE data_type = ?1 AND key = ?2",
            )?
            .query_row((data_type, key), |row| {
                Ok((
                    row.get::<_, Vec<u8>>(0)?,
                    row.get::<_, Option<String>>(1)?,
                    row.get::<_, i64>(2)?,
                ))
            })
            .optional()?;
        Ok(found.is_some())
    }
}
