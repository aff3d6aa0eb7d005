//! Opening the database file and running reads and writes on it.
//!
//! Settings, and why:
//! - `journal_mode=WAL`: readers (in any process) never wait for a writer and a writer never
//!   waits for readers; only writers queue behind each other.
//! - `busy_timeout` of 30 s: a writer waits for another process's write transaction instead of
//!   failing at once with `SQLITE_BUSY`.
//! - `synchronous=FULL`, not `NORMAL`: with WAL, `NORMAL` keeps the database consistent but a
//!   power loss may drop the last committed transactions. That would break invariant 1 when
//!   this backend holds blob content and another backend (LMDB, which syncs every commit) holds
//!   the index: the index record could survive while the content vanished. It would also lose a
//!   ref the user was told is saved. `FULL` costs one WAL fsync per commit; large staged blob
//!   chunks opt out with [`Durability::Deferred`], because the commit that makes them visible
//!   syncs the WAL and with it every frame written before.
//! - `foreign_keys=ON`: the blob-content tables reference each other (see [`super::schema`]).
//! - `journal_size_limit`: after a checkpoint, shrink a WAL that a big blob write inflated.
//! - Every write runs in `BEGIN IMMEDIATE`, so it takes the write lock up front (waiting via the
//!   busy handler) instead of failing with `SQLITE_BUSY_SNAPSHOT` when upgrading a read.
//! - A persistent WAL (`SQLITE_FCNTL_PERSIST_WAL`): the last connection to close leaves the
//!   (checkpointed, truncated) `-wal` and `-shm` files in place, so the next process to open
//!   the store does not create both again (file creation was a third of a short command's time).
//!
//! One [`Database`] per database file per process: every role (index, extra data, key/value,
//! blob content) opened on one store shares its connections. Their writes then queue on one
//! in-process mutex, woken the moment the writer is free, instead of contending through
//! SQLite's busy handler, which sleeps between retries; and opening a store opens two
//! connections, not eight.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::thread;
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, Transaction, TransactionBehavior};

use super::migrations::{migrate, Upgrade};
use super::schema::MIGRATIONS;
use super::BACKEND_NAME;
use crate::traits::{StorageError, StorageResult};
use crate::util::io_context::IoResultExt;

/// How long a statement waits for another connection's lock before giving up.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Prepared statements kept per connection; more than the backend has distinct statements.
const STATEMENT_CACHE_CAPACITY: usize = 64;

/// WAL size kept after a checkpoint (bytes); a larger WAL is truncated to this.
const JOURNAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// `dir/meta/sqlite`: the folder of the database file and of the staging lock files.
pub(crate) fn database_dir(store_dir: &Path) -> PathBuf {
    store_dir.join("meta").join("sqlite")
}

/// `dir/meta/sqlite/store.db`.
pub(crate) fn database_path(store_dir: &Path) -> PathBuf {
    database_dir(store_dir).join("store.db")
}

/// `dir/backups`: where a database is copied before a migration.
pub(crate) fn backups_dir(store_dir: &Path) -> PathBuf {
    store_dir.join("backups")
}

/// Errors of this backend that are not SQLite's own.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectionError {
    #[error("journal mode is {0:?}, not \"wal\" (does the filesystem support shared memory?)")]
    NotWriteAheadLog(String),
}

pub(crate) fn sqlite_error(context: impl Into<String>, error: rusqlite::Error) -> StorageError {
    StorageError::backend(BACKEND_NAME, context, error)
}

/// [`sqlite_error`] of an operation on the database at `path`: an I/O, open or full-disk
/// failure also says whether the file system holding it is full (SQLite's own words for a
/// full disk met while growing its shared-memory file are only "disk I/O error").
pub(crate) fn sqlite_error_at(
    path: &Path,
    context: impl Into<String>,
    error: rusqlite::Error,
) -> StorageError {
    let mut context = context.into();
    let may_be_space = matches!(
        &error,
        rusqlite::Error::SqliteFailure(failure, _)
            if matches!(
                failure.code,
                ErrorCode::SystemIoFailure | ErrorCode::DiskFull | ErrorCode::CannotOpen
            )
    );
    if may_be_space {
        if let Some(note) = crate::backends::disk_space::full_file_system_note(path) {
            context = format!("{context} ({note})");
        }
    }
    sqlite_error(context, error)
}

/// Whether waiting and trying again may help.
pub(crate) fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.code == ErrorCode::DatabaseBusy || failure.code == ErrorCode::DatabaseLocked
    )
}

/// Opens one connection to `path` with the settings described at the top of this file.
pub(crate) fn open_connection(path: &Path) -> StorageResult<Connection> {
    let context = || format!("opening {}", path.display());
    let connection = Connection::open(path).map_err(|e| sqlite_error_at(path, context(), e))?;
    connection
        .busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| sqlite_error_at(path, context(), e))?;
    enable_write_ahead_log(&connection, path)?;
    connection
        // mmap: index lookups and chunk reads map pages instead of one pread per page.
        .execute_batch(
            "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA mmap_size = 268435456;",
        )
        .map_err(|e| sqlite_error_at(path, context(), e))?;
    connection
        .pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)
        .map_err(|e| sqlite_error_at(path, context(), e))?;
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
    keep_write_ahead_log_on_close(&connection);
    Ok(connection)
}

/// Sets `SQLITE_FCNTL_PERSIST_WAL` (see the top of this file). Best effort: without it the
/// files are only created again by the next open.
fn keep_write_ahead_log_on_close(connection: &Connection) {
    let mut persist: std::ffi::c_int = 1;
    // SAFETY: the handle is this open connection's; the file-control call reads and writes
    // the one int it is given, which outlives the call.
    unsafe {
        rusqlite::ffi::sqlite3_file_control(
            connection.handle(),
            c"main".as_ptr(),
            rusqlite::ffi::SQLITE_FCNTL_PERSIST_WAL,
            (&raw mut persist).cast(),
        );
    }
}

/// Switches the file to WAL (a no-op once done: the mode is persistent). The switch needs an
/// exclusive lock, and when many processes open a fresh store at once it can report
/// `SQLITE_BUSY` without consulting the busy handler, so it is retried here.
fn enable_write_ahead_log(connection: &Connection, path: &Path) -> StorageResult<()> {
    let context = || format!("enabling WAL on {}", path.display());
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        let mode = connection
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0));
        match mode {
            Ok(mode) if mode.eq_ignore_ascii_case("wal") => return Ok(()),
            Ok(mode) => {
                return Err(StorageError::backend(
                    BACKEND_NAME,
                    context(),
                    ConnectionError::NotWriteAheadLog(mode),
                ))
            }
            Err(error) if is_busy(&error) && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(20));
            }
            Err(error) => return Err(sqlite_error_at(path, context(), error)),
        }
    }
}

/// How durable a write must be when it returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Durability {
    /// Synced to disk before returning (`synchronous=FULL`).
    Full,
    /// Written to the WAL but not synced; the next [`Durability::Full`] commit on the file syncs
    /// it too. For staged blob chunks and clean-ups that are worthless until a later commit.
    Deferred,
}

/// Why a write closure stopped: SQLite failed, or the write itself refused (a version conflict,
/// vanished staged content). Either way the transaction rolls back.
#[derive(Debug)]
pub(crate) enum WriteFailure {
    Sql(rusqlite::Error),
    Refused(StorageError),
}

impl From<rusqlite::Error> for WriteFailure {
    fn from(error: rusqlite::Error) -> Self {
        WriteFailure::Sql(error)
    }
}

/// The database of one store directory: a handle on the connections this process shares for
/// it. A connection for writes, and read connections apart from it, so a read in this process
/// never queues behind a write that is waiting for another process's lock.
#[derive(Clone)]
pub(crate) struct Database {
    shared: Arc<SharedDatabase>,
}

struct SharedDatabase {
    path: PathBuf,
    writer: Mutex<Connection>,
    /// Idle read connections; a read takes one (or opens one when all are in use by other
    /// threads) and puts it back.
    readers: Mutex<Vec<Connection>>,
}

/// Idle read connections kept per database; more threads reading at once open more, and the
/// surplus is closed when they are done.
const IDLE_READERS_KEPT: usize = 4;

/// The databases open in this process, by device and inode of the database file. By inode, not
/// by path: a store reached through another path (a symlink, a bind mount) is the same
/// database, and a file replaced at the same path is not. Weak, so a database closes when the
/// last store using it is dropped; while it is open its inode cannot be reused.
fn open_databases() -> &'static Mutex<OpenDatabases> {
    static OPEN: OnceLock<Mutex<OpenDatabases>> = OnceLock::new();
    OPEN.get_or_init(Default::default)
}

type OpenDatabases = HashMap<(u64, u64), Weak<SharedDatabase>>;

fn file_identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path)
        .ok()
        .map(|metadata| (metadata.dev(), metadata.ino()))
}

fn already_open(identity: Option<(u64, u64)>) -> Option<Arc<SharedDatabase>> {
    let identity = identity?;
    lock(open_databases()).get(&identity)?.upgrade()
}

impl Database {
    /// Opens (creating if needed) `dir/meta/sqlite/store.db`, or shares the connections this
    /// process has open on it. A database at another version than the current one is refused:
    /// migrating is the store upgrade's job (see `super::format`).
    pub(crate) fn open(store_dir: &Path) -> StorageResult<Database> {
        let dir = database_dir(store_dir);
        std::fs::create_dir_all(&dir).io_context("creating the sqlite database folder", &dir)?;
        let path = database_path(store_dir);
        if let Some(shared) = already_open(file_identity(&path)) {
            return Ok(Database { shared });
        }
        let mut writer = open_connection(&path)?;
        migrate(
            &mut writer,
            &path,
            &backups_dir(store_dir),
            MIGRATIONS,
            Upgrade::CreateOnly,
        )?;
        let reader = open_connection(&path)?;
        let opened = Arc::new(SharedDatabase {
            path: path.clone(),
            writer: Mutex::new(writer),
            readers: Mutex::new(vec![reader]),
        });
        let Some(identity) = file_identity(&path) else {
            // Removed while being opened: nothing to share it with.
            return Ok(Database { shared: opened });
        };
        let mut open = lock(open_databases());
        open.retain(|_, database| database.strong_count() > 0);
        // Another thread may have opened it meanwhile: one of the two is shared, the other
        // closes.
        if let Some(shared) = open.get(&identity).and_then(Weak::upgrade) {
            return Ok(Database { shared });
        }
        open.insert(identity, Arc::downgrade(&opened));
        Ok(Database { shared: opened })
    }

    /// Runs `query` on a read connection, outside any explicit transaction.
    pub(crate) fn read<T>(
        &self,
        context: impl FnOnce() -> String,
        query: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> StorageResult<T> {
        let idle = lock(&self.shared.readers).pop();
        let connection = match idle {
            Some(connection) => connection,
            None => open_connection(&self.shared.path)?,
        };
        let result =
            query(&connection).map_err(|e| sqlite_error_at(&self.shared.path, context(), e));
        let mut readers = lock(&self.shared.readers);
        if readers.len() < IDLE_READERS_KEPT {
            readers.push(connection);
        }
        result
    }

    /// Runs `change` in one `BEGIN IMMEDIATE` transaction, committed when it returns `Ok`.
    pub(crate) fn write<T>(
        &self,
        durability: Durability,
        context: impl FnOnce() -> String,
        change: impl FnOnce(&Transaction<'_>) -> Result<T, WriteFailure>,
    ) -> StorageResult<T> {
        let mut connection = lock(&self.shared.writer);
        let outcome = match durability {
            Durability::Full => run_transaction(&mut connection, change),
            Durability::Deferred => {
                // `synchronous` is per connection: relax it for this commit only.
                match connection.execute_batch("PRAGMA synchronous = NORMAL") {
                    Err(error) => Err(WriteFailure::Sql(error)),
                    Ok(()) => {
                        let outcome = run_transaction(&mut connection, change);
                        let restored = connection.execute_batch("PRAGMA synchronous = FULL");
                        match (outcome, restored) {
                            (Ok(value), Ok(())) => Ok(value),
                            (Ok(_), Err(error)) => Err(WriteFailure::Sql(error)),
                            (Err(failure), _) => Err(failure),
                        }
                    }
                }
            }
        };
        outcome.map_err(|failure| match failure {
            WriteFailure::Sql(error) => sqlite_error_at(&self.shared.path, context(), error),
            WriteFailure::Refused(error) => error,
        })
    }
}

fn run_transaction<T>(
    connection: &mut Connection,
    change: impl FnOnce(&Transaction<'_>) -> Result<T, WriteFailure>,
) -> Result<T, WriteFailure> {
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let value = change(&transaction)?;
    transaction.commit()?;
    Ok(value)
}

/// A panic while holding a connection cannot leave a transaction open (rusqlite rolls back on
/// drop), so a poisoned mutex still guards a usable connection (or list of them).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_in_wal_with_full_sync_and_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let database = Database::open(dir.path()).unwrap();
        assert!(dir.path().join("meta/sqlite/store.db").is_file());
        let (mode, synchronous, foreign_keys) = database
            .read(String::new, |c| {
                let mode: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
                let synchronous: i64 = c.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
                let foreign_keys: i64 = c.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
                Ok((mode, synchronous, foreign_keys))
            })
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(synchronous, 2, "2 is FULL");
        assert_eq!(foreign_keys, 1);
    }

    #[test]
    fn deferred_write_restores_full_sync() {
        let dir = tempfile::tempdir().unwrap();
        let database = Database::open(dir.path()).unwrap();
        database
            .write(Durability::Deferred, String::new, |_| Ok(()))
            .unwrap();
        let synchronous: i64 = lock(&database.shared.writer)
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(synchronous, 2);
    }

    #[test]
    fn many_threads_open_a_fresh_store_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let path = path.clone();
                thread::spawn(move || Database::open(&path).map(|_| ()))
            })
            .collect();
        for handle in handles {
            handle.join().unwrap().unwrap();
        }
        assert!(
            !backups_dir(&path).exists(),
            "a fresh store needs no backup"
        );
    }

    /// Descriptors this process has open on `path` (connections to it).
    fn descriptors_open_on(path: &Path) -> usize {
        let path = path.canonicalize().unwrap();
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
            .filter(|target| *target == path)
            .count()
    }

    #[test]
    fn every_role_of_a_store_shares_one_database() {
        use crate::traits::{ExtraData, Index, KvStore};
        let dir = tempfile::tempdir().unwrap();
        let index = super::super::SqliteIndex::open(dir.path()).unwrap();
        let extra = super::super::SqliteExtraData::open(dir.path()).unwrap();
        let kv = super::super::SqliteKvStore::open(dir.path()).unwrap();
        let blobs = super::super::SqliteBlobStore::open(dir.path()).unwrap();
        index.count().unwrap();
        extra.sorted_digests().unwrap().into_vec().unwrap();
        kv.data_types().unwrap();
        let path = database_path(dir.path());
        assert_eq!(
            descriptors_open_on(&path),
            2,
            "one writer and one reader connection for all four roles"
        );
        drop((index, extra, kv, blobs));
        assert_eq!(descriptors_open_on(&path), 0, "closed with its last user");
        let reopened = super::super::SqliteKvStore::open(dir.path()).unwrap();
        assert_eq!(reopened.data_types().unwrap(), Vec::<String>::new());
    }
}
