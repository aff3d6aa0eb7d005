//! The migration framework: a version table and an ordered list of migrations.
//!
//! Opening ([`Upgrade::CreateOnly`]) creates a new database at the last version and refuses any
//! other version than the last: an older database is migrated only by the store's upgrade
//! ([`Upgrade::Migrate`]), which runs under the exclusive store lock so that no process still
//! running older code has the store open. Many processes may create the same database at once,
//! so the version is first read without a lock (the common case: nothing to do), then re-read
//! inside `BEGIN EXCLUSIVE`; whoever gets the lock first creates it, the others find the work
//! done. Before an existing database is changed it is copied to
//! `dir/backups/<unix-ms>-sqlite-v<from>.db` (as rkt did), so a failed or unwanted upgrade can be
//! undone by hand. A database newer than this code is refused, never touched.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::connection::{sqlite_error_at, BUSY_TIMEOUT};
use super::BACKEND_NAME;
use crate::traits::registry::refuse_unknown_format;
use crate::traits::{FormatStatus, StorageError, StorageResult};
use crate::util::clock::now_unix_ms;
use crate::util::fsync::fsync_dir;
use crate::util::io_context::{IoContext, IoResultExt};

/// One step of the schema: applying `sql` to a database at `version - 1` brings it to `version`.
pub(crate) struct Migration {
    pub(crate) version: u32,
    pub(crate) description: &'static str,
    pub(crate) sql: &'static str,
}

/// What [`migrate`] may do to an existing database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Upgrade {
    /// Create a new (empty) database; refuse one at an older version.
    CreateOnly,
    /// Also back up and migrate an older one (the caller holds the exclusive store lock).
    Migrate,
}

const WHAT: &str = "sqlite database";

const CREATE_VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
)";

/// Brings the database at `database_path` (open as `connection`) to the last version of
/// `migrations`, backing it up into `backups_dir` first when it holds anything.
pub(crate) fn migrate(
    connection: &mut Connection,
    database_path: &Path,
    backups_dir: &Path,
    migrations: &[Migration],
    upgrade: Upgrade,
) -> StorageResult<()> {
    let context = |what: &str| format!("{what} of {}", database_path.display());
    let known = migrations.last().map_or(0, |m| m.version);
    let current = read_version(connection)
        .map_err(|e| sqlite_error_at(database_path, context("reading the schema version"), e))?;
    refuse_newer(current, known, database_path)?;
    if current == known {
        return Ok(());
    }

    let transaction = connection
        .transaction_with_behavior(TransactionBehavior::Exclusive)
        .map_err(|e| sqlite_error_at(database_path, context("locking for migration"), e))?;
    let current = read_version(&transaction)
        .map_err(|e| sqlite_error_at(database_path, context("re-reading the schema version"), e))?;
    refuse_newer(current, known, database_path)?;
    if current == known {
        // Another connection migrated while this one waited for the lock.
        return Ok(());
    }
    let holds_data = has_user_tables(&transaction)
        .map_err(|e| sqlite_error_at(database_path, context("inspecting the schema"), e))?;
    if holds_data && upgrade == Upgrade::CreateOnly {
        return refuse_unknown_format(
            BACKEND_NAME,
            WHAT,
            database_path,
            FormatStatus::NeedsMigration {
                from: current,
                to: known,
            },
        );
    }
    if holds_data {
        // The copy is read through a second connection: in WAL mode (set by `open_connection`
        // before this runs) the exclusive lock only stops writers, and no one has written since
        // the version was re-read, so the copy is exactly what is migrated.
        backup_database(database_path, backups_dir, current)?;
        crate::crash_point!("sqlite.migrate.after-backup");
    }
    transaction
        .execute_batch(CREATE_VERSION_TABLE)
        .map_err(|e| {
            sqlite_error_at(
                database_path,
                context("creating the schema_version table"),
                e,
            )
        })?;
    for migration in migrations.iter().filter(|m| m.version > current) {
        transaction.execute_batch(migration.sql).map_err(|e| {
            sqlite_error_at(
                database_path,
                format!(
                    "migrating {} to version {} ({})",
                    database_path.display(),
                    migration.version,
                    migration.description
                ),
                e,
            )
        })?;
    }
    transaction
        .execute(
            "INSERT INTO schema_version (id, version) VALUES (1, ?1)
             ON CONFLICT (id) DO UPDATE SET version = excluded.version",
            [known],
        )
        .and_then(|_| {
            crate::crash_point!("sqlite.migrate.before-commit");
            transaction.commit()
        })
        .map_err(|e| sqlite_error_at(database_path, context("recording the schema version"), e))
}

/// The recorded schema version; 0 when the version table does not exist yet.
pub(crate) fn read_version(connection: &Connection) -> rusqlite::Result<u32> {
    let has_table: bool = connection.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version')",
        [],
        |row| row.get(0),
    )?;
    if !has_table {
        return Ok(0);
    }
    let version = connection
        .query_row(
            "SELECT version FROM schema_version WHERE id = 1",
            [],
            |row| row.get(0),
        )
        .optional()?;
    Ok(version.unwrap_or(0))
}

fn refuse_newer(found: u32, known: u32, database_path: &Path) -> StorageResult<()> {
    if found > known {
        return refuse_unknown_format(
            BACKEND_NAME,
            WHAT,
            database_path,
            FormatStatus::Newer {
                found,
                supported: known,
            },
        );
    }
    Ok(())
}

/// The format status of the database at `database_path`, read through a connection of its own
/// that changes nothing (no journal mode switch, no schema).
pub(crate) fn status(
    database_path: &Path,
    migrations: &[Migration],
) -> StorageResult<FormatStatus> {
    if !database_path.exists() {
        return Ok(FormatStatus::Absent);
    }
    let context = || format!("reading the schema version of {}", database_path.display());
    let connection = Connection::open_with_flags(
        database_path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| sqlite_error_at(database_path, context(), e))?;
    connection
        .busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| sqlite_error_at(database_path, context(), e))?;
    let found =
        read_version(&connection).map_err(|e| sqlite_error_at(database_path, context(), e))?;
    let known = migrations.last().map_or(0, |m| m.version);
    if found == 0
        && !has_user_tables(&connection)
            .map_err(|e| sqlite_error_at(database_path, context(), e))?
    {
        return Ok(FormatStatus::Absent);
    }
    Ok(if found == known {
        FormatStatus::Current
    } else if found > known {
        FormatStatus::Newer {
            found,
            supported: known,
        }
    } else {
        FormatStatus::NeedsMigration {
            from: found,
            to: known,
        }
    })
}

/// Whether the database holds anything besides the version table (a fresh file holds nothing
/// and needs no backup).
fn has_user_tables(connection: &Connection) -> rusqlite::Result<bool> {
    connection.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master
                        WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
                          AND name <> 'schema_version')",
        [],
        |row| row.get(0),
    )
}

/// Copies the database with `VACUUM INTO` to a temporary name, syncs it (SQLite does not),
/// renames it into place and syncs the folder. Returns the backup's path.
pub(crate) fn backup_database(
    database_path: &Path,
    backups_dir: &Path,
    version: u32,
) -> StorageResult<PathBuf> {
    fs::create_dir_all(backups_dir).io_context("creating the backups folder", backups_dir)?;
    let backup_path = unused_backup_path(backups_dir, version);
    let temporary_path = backup_path.with_extension("db.partial");
    match fs::remove_file(&temporary_path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(StorageError::from(IoContext::new(
                "removing a stale partial backup",
                &temporary_path,
                e,
            )))
        }
    }

    let context = || {
        format!(
            "backing up {} (schema version {version}) to {}",
            database_path.display(),
            backup_path.display()
        )
    };
    let source = Connection::open(database_path)
        .map_err(|e| sqlite_error_at(database_path, context(), e))?;
    source
        .busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| sqlite_error_at(database_path, context(), e))?;
    let temporary_name = temporary_path.to_str().ok_or_else(|| {
        StorageError::InvalidArgument(format!(
            "backup path {} is not valid UTF-8",
            temporary_path.display()
        ))
    })?;
    source
        .execute("VACUUM INTO ?1", [temporary_name])
        .map_err(|e| sqlite_error_at(database_path, context(), e))?;
    drop(source);

    File::open(&temporary_path)
        .and_then(|file| file.sync_all())
        .io_context("syncing the database backup", &temporary_path)?;
    fs::rename(&temporary_path, &backup_path).map_err(|e| {
        StorageError::from(IoContext::new(
            "renaming the database backup into place",
            &backup_path,
            e,
        ))
    })?;
    fsync_dir(backups_dir).io_context("syncing the backups folder", backups_dir)?;
    Ok(backup_path)
}

/// `<unix-ms>-sqlite-v<version>.db`, moved one millisecond on if that name is taken.
fn unused_backup_path(backups_dir: &Path, version: u32) -> PathBuf {
    let mut unix_ms = now_unix_ms();
    loop {
        let path = backups_dir.join(format!("{unix_ms}-sqlite-v{version}.db"));
        if !path.exists() {
            return path;
        }
        unix_ms += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::super::connection::open_connection;
    use super::*;

    const FIRST: Migration = Migration {
        version: 1,
        description: "notes table",
        sql: "CREATE TABLE notes (text TEXT NOT NULL);",
    };
    const SECOND: Migration = Migration {
        version: 2,
        description: "tags table",
        sql: "CREATE TABLE tags (name TEXT NOT NULL);",
    };

    struct Fixture {
        _dir: tempfile::TempDir,
        database: PathBuf,
        backups: PathBuf,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        Fixture {
            database: dir.path().join("store.db"),
            backups: dir.path().join("backups"),
            _dir: dir,
        }
    }

    fn backups(fixture: &Fixture) -> Vec<PathBuf> {
        match fs::read_dir(&fixture.backups) {
            Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
            Err(_) => Vec::new(),
        }
    }

    #[test]
    fn fresh_database_is_migrated_without_backup() {
        let f = fixture();
        let mut connection = open_connection(&f.database).unwrap();
        migrate(
            &mut connection,
            &f.database,
            &f.backups,
            &[FIRST, SECOND],
            Upgrade::Migrate,
        )
        .unwrap();
        assert_eq!(read_version(&connection).unwrap(), 2);
        assert!(backups(&f).is_empty());
    }

    #[test]
    fn older_database_is_backed_up_then_migrated() {
        let f = fixture();
        let mut connection = open_connection(&f.database).unwrap();
        migrate(
            &mut connection,
            &f.database,
            &f.backups,
            &[FIRST],
            Upgrade::Migrate,
        )
        .unwrap();
        connection
            .execute("INSERT INTO notes (text) VALUES ('kept')", [])
            .unwrap();

        migrate(
            &mut connection,
            &f.database,
            &f.backups,
            &[FIRST, SECOND],
            Upgrade::Migrate,
        )
        .unwrap();
        assert_eq!(read_version(&connection).unwrap(), 2);
        connection
            .execute("INSERT INTO tags (name) VALUES ('x')", [])
            .unwrap();

        let found = backups(&f);
        assert_eq!(found.len(), 1, "{found:?}");
        let name = found[0].file_name().unwrap().to_str().unwrap().to_string();
        assert!(name.ends_with("-sqlite-v1.db"), "{name}");
        name.trim_end_matches("-sqlite-v1.db")
            .parse::<u128>()
            .unwrap();

        let backup = Connection::open(&found[0]).unwrap();
        assert_eq!(read_version(&backup).unwrap(), 1);
        let note: String = backup
            .query_row("SELECT text FROM notes", [], |r| r.get(0))
            .unwrap();
        assert_eq!(note, "kept");
        assert!(backup.prepare("SELECT name FROM tags").is_err());

        // Up to date now: opening again takes no second backup.
        migrate(
            &mut connection,
            &f.database,
            &f.backups,
            &[FIRST, SECOND],
            Upgrade::Migrate,
        )
        .unwrap();
        assert_eq!(backups(&f).len(), 1);
    }

    #[test]
    fn unversioned_database_with_tables_is_backed_up_as_v0() {
        let f = fixture();
        let mut connection = open_connection(&f.database).unwrap();
        connection
            .execute_batch("CREATE TABLE legacy (x);")
            .unwrap();
        migrate(
            &mut connection,
            &f.database,
            &f.backups,
            &[FIRST],
            Upgrade::Migrate,
        )
        .unwrap();
        let found = backups(&f);
        assert_eq!(found.len(), 1);
        assert!(found[0].to_str().unwrap().ends_with("-sqlite-v0.db"));
    }

    #[test]
    fn opening_creates_a_fresh_database_but_never_migrates_an_older_one() {
        let f = fixture();
        let mut connection = open_connection(&f.database).unwrap();
        migrate(
            &mut connection,
            &f.database,
            &f.backups,
            &[FIRST],
            Upgrade::CreateOnly,
        )
        .unwrap();
        assert_eq!(read_version(&connection).unwrap(), 1);
        assert_eq!(
            status(&f.database, &[FIRST, SECOND]).unwrap(),
            FormatStatus::NeedsMigration { from: 1, to: 2 }
        );
        let error = migrate(
            &mut connection,
            &f.database,
            &f.backups,
            &[FIRST, SECOND],
            Upgrade::CreateOnly,
        )
        .unwrap_err();
        let message = format!("{error}: {}", std::error::Error::source(&error).unwrap());
        assert!(message.contains("must be upgraded to 2"), "{message}");
        assert_eq!(read_version(&connection).unwrap(), 1);
        assert!(backups(&f).is_empty());
        assert_eq!(
            status(&f.database, &[FIRST]).unwrap(),
            FormatStatus::Current
        );
    }

    #[test]
    fn newer_database_is_refused_and_untouched() {
        let f = fixture();
        let mut connection = open_connection(&f.database).unwrap();
        migrate(
            &mut connection,
            &f.database,
            &f.backups,
            &[FIRST, SECOND],
            Upgrade::Migrate,
        )
        .unwrap();
        let error = migrate(
            &mut connection,
            &f.database,
            &f.backups,
            &[FIRST],
            Upgrade::Migrate,
        )
        .unwrap_err();
        let message = format!("{error}: {}", std::error::Error::source(&error).unwrap());
        assert!(
            message.contains("format version 2, but this oci-store supports 1"),
            "{message}"
        );
        assert!(message.contains("upgrade oci-store"), "{message}");
        assert!(message.contains("store.db"), "{message}");
        assert_eq!(read_version(&connection).unwrap(), 2);
        assert!(backups(&f).is_empty());
    }
}
