//! The schema, as the ordered list of migrations that build it. Version N is reached by applying
//! `MIGRATIONS[..N]`; a new change is a new entry at the end, never an edit of an old one.
//!
//! Blob content is split in three so that committing a write never copies its bytes:
//! `chunk_data` holds the bytes (one row per chunk), `staged_chunks` maps a writer's staging id
//! to its chunks while it writes, and commit moves only the small `(seq, chunk_id)` mapping
//! rows into `blob_chunks`. Foreign keys between them are deferred, so a transaction may delete
//! in any order and is checked at commit.

use super::migrations::Migration;

pub(crate) const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    description: "index, extra data, key/value entries and chunked blob content",
    sql: "
        CREATE TABLE blobs (
            digest TEXT NOT NULL PRIMARY KEY,
            size INTEGER NOT NULL,
            media_type TEXT NOT NULL,
            created_unix_ms INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX blobs_by_media_type ON blobs (media_type, digest);

        CREATE TABLE extra (
            digest TEXT NOT NULL,
            data_type TEXT NOT NULL,
            value BLOB NOT NULL,
            PRIMARY KEY (digest, data_type)
        ) WITHOUT ROWID;
        CREATE INDEX extra_by_data_type ON extra (data_type, digest);

        CREATE TABLE kv (
            data_type TEXT NOT NULL,
            key TEXT NOT NULL,
            value BLOB NOT NULL,
            blob TEXT,
            version INTEGER NOT NULL,
            PRIMARY KEY (data_type, key)
        ) WITHOUT ROWID;
        CREATE INDEX kv_by_blob ON kv (blob) WHERE blob IS NOT NULL;

        CREATE TABLE chunk_data (
            chunk_id INTEGER PRIMARY KEY,
            data BLOB NOT NULL
        );

        CREATE TABLE blob_content (
            digest TEXT NOT NULL PRIMARY KEY,
            size INTEGER NOT NULL,
            chunk_size INTEGER NOT NULL CHECK (chunk_size > 0)
        ) WITHOUT ROWID;
        CREATE TABLE blob_chunks (
            digest TEXT NOT NULL
                REFERENCES blob_content (digest) DEFERRABLE INITIALLY DEFERRED,
            seq INTEGER NOT NULL,
            chunk_id INTEGER NOT NULL UNIQUE
                REFERENCES chunk_data (chunk_id) DEFERRABLE INITIALLY DEFERRED,
            PRIMARY KEY (digest, seq)
        ) WITHOUT ROWID;

        CREATE TABLE staging (
            staging_id TEXT NOT NULL PRIMARY KEY,
            owner_pid INTEGER NOT NULL,
            started_unix_ms INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE staged_chunks (
            staging_id TEXT NOT NULL
                REFERENCES staging (staging_id) DEFERRABLE INITIALLY DEFERRED,
            seq INTEGER NOT NULL,
            chunk_id INTEGER NOT NULL UNIQUE
                REFERENCES chunk_data (chunk_id) DEFERRABLE INITIALLY DEFERRED,
            PRIMARY KEY (staging_id, seq)
        ) WITHOUT ROWID;
    ",
}];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_consecutive_from_one() {
        assert!(!MIGRATIONS.is_empty());
        for (position, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(migration.version as usize, position + 1);
            assert!(!migration.description.is_empty());
        }
    }
}
