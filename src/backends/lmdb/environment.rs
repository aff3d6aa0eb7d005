//! The one LMDB environment of a store directory, shared process-wide.
//!
//! LMDB must not open the same environment twice in one process (a second open would break its
//! POSIX locks), so every trait object of every thread that names the same `meta/lmdb/`
//! directory gets the same [`SharedEnv`] from a global map. Other processes open their own copy;
//! LMDB's lock file serialises their writers and keeps their readers consistent.
//!
//! The memory map starts small and grows by itself: a write that fills it (`MDB_MAP_FULL`) is
//! aborted, the map doubled and the whole write retried; when another process has grown the
//! map (`MDB_MAP_RESIZED`) this process adopts the new size and retries. Resizing is only
//! allowed while this process has no transaction open, so every transaction runs under the read
//! side of a `RwLock` and a resize takes its write side.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Arc, LazyLock, Mutex, PoisonError, RwLock, Weak};
use std::time::Duration;

use heed::types::Bytes;
use heed::{CommitOrAbort, Database, Env, EnvOpenOptions, MdbError, RoTxn, RwTxn, WithoutTls};

use super::format::{
    read_format, record_format, status_from_record, FORMAT_KEY, UNRECORDED_VERSION, WHAT,
};
use super::BACKEND_NAME;
use crate::traits::registry::refuse_unknown_format;
use crate::traits::{FormatStatus, StorageError, StorageResult};
use crate::util::io_context::{IoContext, IoResultExt};

/// Every database of the environment stores raw bytes; the layouts are in `keys.rs` and
/// `records.rs`.
pub(crate) type RawDatabase = Database<'static, Bytes, Bytes>;

/// Small enough that an empty store costs little address space and disk, big enough that a
/// typical store never resizes.
pub(crate) const INITIAL_MAP_SIZE: usize = 64 << 20;

/// Named databases in use are listed in [`Databases`]; the rest is headroom for new ones.
const MAX_DATABASES: u32 = 16;

/// Readers are not tied to threads (`MDB_NOTLS`), so each concurrent read needs a slot.
const MAX_READERS: u32 = 1024;

/// Doubling 40 times from 64 MiB exceeds any address space; running out of attempts means
/// something other than map size is wrong.
const MAX_ATTEMPTS: usize = 40;

/// How long to wait for a closing environment of the same path to finish closing.
const CLOSE_WAIT: Duration = Duration::from_secs(30);

/// Environments of this process by the identity (device, inode) of their directory, not by
/// path: a store directory renamed or reached through another mount while open must still map
/// to the one environment. Weak, so the environment closes (and its files and memory map are
/// released) when the last store object using it is dropped.
static ENVIRONMENTS: LazyLock<Mutex<HashMap<DirectoryIdentity, Weak<SharedEnv>>>> =
    LazyLock::new(Default::default);

/// `(st_dev, st_ino)` of an environment directory.
type DirectoryIdentity = (u64, u64);

/// The named databases of one environment.
pub(crate) struct Databases {
    /// `digest` -> blob record (index).
    pub blobs: RawDatabase,
    /// `media_type \0 digest` -> empty (index by media type).
    pub blobs_by_media_type: RawDatabase,
    /// Named counters, such as the index's total size.
    pub counters: RawDatabase,
    /// `digest \0 data_type` -> value (extra data).
    pub extra: RawDatabase,
    /// `data_type \0 digest` -> empty (extra data by type).
    pub extra_by_type: RawDatabase,
    /// Key/value entries; see `kv_store.rs` for the slot layout.
    pub kv: RawDatabase,
    /// `digest \0 hash(data_type \0 key)` -> `data_type \0 key` (entries referencing a blob).
    pub kv_by_blob: RawDatabase,
    /// `digest` -> blob content record (size and chunk size).
    pub blob_contents: RawDatabase,
    /// `digest \0 sequence` -> one chunk of committed content.
    pub blob_chunks: RawDatabase,
    /// `staging id \0 sequence` -> one chunk of content still being written.
    pub blob_staging: RawDatabase,
    /// `version` -> the environment's format version (u32, big endian); see `format.rs`.
    pub format: RawDatabase,
}

pub(crate) struct SharedEnv {
    env: Env<WithoutTls>,
    /// Held open so the directory's inode cannot be reused by another directory while this
    /// environment is in the map under it.
    _directory: File,
    /// Read side: held by every transaction. Write side: held while resizing the map.
    transactions: RwLock<()>,
    pub databases: Databases,
}

impl SharedEnv {
    /// The environment in `path`, created if needed, shared with every other user in this
    /// process.
    pub(crate) fn open(path: &Path) -> StorageResult<Arc<SharedEnv>> {
        Self::open_with_map_size(path, INITIAL_MAP_SIZE)
    }

    /// Like [`SharedEnv::open`], with the map size a new environment starts with (tests use a
    /// tiny one to exercise growth). An environment already open keeps its size.
    pub(crate) fn open_with_map_size(path: &Path, map_size: usize) -> StorageResult<Arc<Self>> {
        Self::open_checked(path, map_size, false)
    }

    /// [`SharedEnv::open`] for the store upgrade (under the exclusive store lock): also opens
    /// an environment of an older format this code can upgrade, to back it up and record the
    /// new version.
    pub(crate) fn open_for_upgrade(path: &Path) -> StorageResult<Arc<Self>> {
        Self::open_checked(path, INITIAL_MAP_SIZE, true)
    }

    fn open_checked(path: &Path, map_size: usize, upgrading: bool) -> StorageResult<Arc<Self>> {
        std::fs::create_dir_all(path).io_context("creating the LMDB directory", path)?;
        let canonical = path
            .canonicalize()
            .io_context("resolving the LMDB directory", path)?;
        let directory = File::open(&canonical).io_context("opening the LMDB directory", path)?;
        let metadata = directory
            .metadata()
            .io_context("reading the LMDB directory", path)?;
        let identity = (metadata.dev(), metadata.ino());
        let mut environments = ENVIRONMENTS.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(existing) = environments.get(&identity).and_then(Weak::upgrade) {
            return Ok(existing);
        }
        let env = open_env(&canonical, map_size)?;
        // Never run on a layout this code does not know: checked before anything is created.
        let status = read_format(&env, &canonical)?;
        let upgradable = matches!(status, FormatStatus::NeedsMigration { from, .. } if from >= UNRECORDED_VERSION);
        if !(upgrading && upgradable) {
            refuse_unknown_format(BACKEND_NAME, WHAT, &canonical, status)?;
        }
        // A process killed inside a read transaction leaves its reader slot taken, and LMDB
        // only resets the reader table when the first process opens the environment: while
        // any other process keeps it open, the dead slot pins old pages (the file grows without
        // bound) and uses up one of MAX_READERS. Free such slots on every open.
        env.clear_stale_readers()
            .with_context(|| format!("clearing stale readers of {}", canonical.display()))?;
        let databases = create_databases(&env, &canonical, status == FormatStatus::Absent)?;
        let shared = Arc::new(SharedEnv {
            env,
            _directory: directory,
            transactions: RwLock::new(()),
            databases,
        });
        environments.retain(|_, weak| weak.strong_count() > 0);
        environments.insert(identity, Arc::downgrade(&shared));
        Ok(shared)
    }

    /// Runs `operation` in a read transaction. The transaction ends when it returns, so never
    /// hand out anything borrowed from it.
    pub(crate) fn read<T>(
        &self,
        mut operation: impl FnMut(&RoTxn) -> StorageResult<T>,
    ) -> StorageResult<T> {
        for _ in 0..MAX_ATTEMPTS {
            let guard = self
                .transactions
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            let outcome = self
                .env
                .read_txn()
                .with_context(|| "starting a read transaction".to_string())
                .and_then(|rtxn| operation(&rtxn));
            drop(guard);
            match outcome {
                Err(error) if is_mdb_error(&error, MdbError::MapResized) => {
                    self.adopt_grown_map()?;
                }
                other => return other,
            }
        }
        Err(out_of_attempts("read"))
    }

    /// Runs `operation` in a write transaction and commits it. When the map is full or was
    /// grown by another process, the transaction is aborted, the map resized and `operation`
    /// run again from the start, so it must not have effects outside the transaction.
    pub(crate) fn write<T>(
        &self,
        mut operation: impl FnMut(&mut RwTxn) -> StorageResult<T>,
    ) -> StorageResult<T> {
        for _ in 0..MAX_ATTEMPTS {
            let guard = self
                .transactions
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            let map_size_at_start = self.env.info().map_size;
            let outcome = self
                .env
                .write_txn()
                .with_context(|| "starting a write transaction".to_string())
                .and_then(|mut wtxn| {
                    let value = operation(&mut wtxn)?;
                    wtxn.commit().map_err(|error| {
                        write_error(
                            self.env.path(),
                            "committing a write transaction".to_string(),
                            error,
                        )
                    })?;
                    Ok(value)
                });
            drop(guard);
            match outcome {
                Err(error) if is_mdb_error(&error, MdbError::MapFull) => {
                    self.grow_map(map_size_at_start)?;
                }
                Err(error) if is_mdb_error(&error, MdbError::MapResized) => {
                    self.adopt_grown_map()?;
                }
                other => return other,
            }
        }
        Err(out_of_attempts("write"))
    }

    /// Copies the environment, compacted, to `target` and syncs the copy. The copy is one
    /// consistent snapshot (LMDB copies inside a read transaction).
    pub(crate) fn copy_to(&self, target: &Path) -> StorageResult<()> {
        let _guard = self
            .transactions
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let file = self
            .env
            .copy_to_path(target, heed::CompactionOption::Enabled)
            .with_context(|| format!("copying the LMDB environment to {}", target.display()))?;
        file.sync_all().map_err(|error| {
            StorageError::from(IoContext::new("syncing the LMDB copy", target, error))
        })
    }

    /// Current size of this process's memory map.
    #[cfg(test)]
    pub(crate) fn map_size(&self) -> usize {
        self.env.info().map_size
    }

    /// Doubles the map, unless another thread already grew it since `seen_size` was read.
    fn grow_map(&self, seen_size: usize) -> StorageResult<()> {
        let _exclusive = self
            .transactions
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let current = self.env.info().map_size;
        if current > seen_size {
            return Ok(());
        }
        // Readers of killed processes pin old pages; freeing their slots may make the growth
        // unnecessary next time, and keeps a long-lived process from growing the map forever.
        self.env
            .clear_stale_readers()
            .with_context(|| "clearing readers of dead processes".to_string())?;
        let doubled = current.checked_mul(2).ok_or_else(|| {
            StorageError::InvalidArgument(format!(
                "the LMDB map of {} cannot grow beyond {current} bytes",
                self.env.path().display()
            ))
        })?;
        // SAFETY: the write side of `transactions` is held, so no transaction of this process
        // is open; other processes are unaffected (they adopt the size on MDB_MAP_RESIZED).
        unsafe { self.env.resize(doubled) }
            .with_context(|| format!("growing the LMDB map to {doubled} bytes"))
    }

    /// Adopts the map size another process set (`mdb_env_set_mapsize(0)`).
    fn adopt_grown_map(&self) -> StorageResult<()> {
        let _exclusive = self
            .transactions
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        // SAFETY: as in `grow_map`, no transaction of this process is open.
        unsafe { self.env.resize(0) }
            .with_context(|| "adopting the LMDB map size set by another process".to_string())
    }
}

/// Bytes of the lock file LMDB maps: its reader table (one 64-byte slot per reader after a
/// header), rounded up to whole pages.
const LOCK_FILE_BYTES: u64 = MAX_READERS as u64 * 64 + 4096;

/// LMDB keeps its reader table in `lock.mdb`, sized with `ftruncate` (a sparse file) and
/// written through a shared memory map. On a full file system, the first touch of a page the
/// file system cannot back raises SIGBUS and kills the process, instead of an error. So the
/// file's blocks are allocated before LMDB maps it: a full disk fails here, with `ENOSPC`,
/// before anything is mapped. The size is left as it is (`FALLOC_FL_KEEP_SIZE`): LMDB derives
/// the number of reader slots from it, and every process must agree. Nothing is written into
/// the file (another process may be using the table). A file system without `fallocate`
/// keeps LMDB's behaviour.
fn back_the_lock_file(path: &Path) -> StorageResult<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let lock_path = path.join("lock.mdb");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        // The mode LMDB itself creates its files with.
        .mode(0o600)
        .open(&lock_path)
        .io_context("opening the LMDB lock file", &lock_path)?;
    let keep_size = rustix::fs::FallocateFlags::KEEP_SIZE;
    match rustix::fs::fallocate(&file, keep_size, 0, LOCK_FILE_BYTES) {
        Ok(()) => Ok(()),
        Err(errno)
            if errno == rustix::io::Errno::OPNOTSUPP || errno == rustix::io::Errno::NOSYS =>
        {
            Ok(())
        }
        Err(errno) => Err(StorageError::from(IoContext::new(
            "allocating the LMDB lock file (its reader table is memory-mapped)",
            &lock_path,
            errno.into(),
        ))),
    }
}

fn open_env(path: &Path, map_size: usize) -> StorageResult<Env<WithoutTls>> {
    back_the_lock_file(path)?;
    let mut options = EnvOpenOptions::new().read_txn_without_tls();
    options
        .map_size(map_size)
        .max_dbs(MAX_DATABASES)
        .max_readers(MAX_READERS);
    for _ in 0..3 {
        // SAFETY: ENVIRONMENTS guarantees one open per path in this process, and nothing in
        // this crate touches the environment's files except through LMDB.
        match unsafe { options.open(path) } {
            Ok(env) => return Ok(env),
            Err(heed::Error::EnvAlreadyOpened) => {
                // The previous environment of this path lost its last user and is closing on
                // another thread; wait until it is closed, then open it afresh.
                if let Some(closing) = heed::env_closing_event(path) {
                    closing.wait_timeout(CLOSE_WAIT);
                }
            }
            Err(error) => {
                return Err(StorageError::backend(
                    BACKEND_NAME,
                    format!("opening the LMDB environment {}", path.display()),
                    error,
                ))
            }
        }
    }
    Err(StorageError::backend(
        BACKEND_NAME,
        format!("opening the LMDB environment {}", path.display()),
        heed::Error::EnvAlreadyOpened,
    ))
}

/// The format status of the environment in `path` (an existing `data.mdb`), changing nothing:
/// read through this process's open environment, or through one opened just for this and
/// closed again (under the map's lock, so no other open of this process overlaps it).
pub(crate) fn format_status_of(path: &Path) -> StorageResult<FormatStatus> {
    let canonical = path
        .canonicalize()
        .io_context("resolving the LMDB directory", path)?;
    let metadata = std::fs::metadata(&canonical).io_context("reading the LMDB directory", path)?;
    let environments = ENVIRONMENTS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(existing) = environments
        .get(&(metadata.dev(), metadata.ino()))
        .and_then(Weak::upgrade)
    {
        drop(environments);
        return existing.read(|rtxn| {
            let record = existing
                .databases
                .format
                .get(rtxn, FORMAT_KEY)
                .with_context(|| format!("reading the format of {}", canonical.display()))?;
            status_from_record(record, true, &canonical)
        });
    }
    let env = open_env(&canonical, INITIAL_MAP_SIZE)?;
    let status = read_format(&env, &canonical);
    env.prepare_for_closing().wait();
    drop(environments);
    status
}

fn create_databases(
    env: &Env<WithoutTls>,
    path: &Path,
    record_version: bool,
) -> StorageResult<Databases> {
    let context = || format!("creating the databases of {}", path.display());
    for _ in 0..MAX_ATTEMPTS {
        let wtxn = match env.write_txn() {
            Ok(wtxn) => wtxn,
            Err(heed::Error::Mdb(MdbError::MapResized)) => {
                // SAFETY: the environment is not shared yet, so no transaction is open.
                unsafe { env.resize(0) }.with_context(context)?;
                continue;
            }
            Err(error) => return Err(StorageError::backend(BACKEND_NAME, context(), error)),
        };
        let created = env
            .create_databases_and_commit(wtxn, |opener, wtxn| -> heed::Result<_> {
                let mut create =
                    |name: &str| opener.create_database::<Bytes, Bytes>(wtxn, Some(name));
                let databases = (
                    create("blobs")?,
                    create("blobs_by_media_type")?,
                    create("counters")?,
                    create("extra")?,
                    create("extra_by_type")?,
                    create("kv")?,
                    create("kv_by_blob")?,
                    create("blob_contents")?,
                    create("blob_chunks")?,
                    create("blob_staging")?,
                    create("format")?,
                );
                if record_version {
                    // A new environment: recorded in the transaction that creates it.
                    record_format(&databases.10, wtxn)?;
                }
                Ok(CommitOrAbort::<_, ()>::Commit(databases))
            })
            .map_err(|error| write_error(path, context(), error))?;
        let (
            blobs,
            blobs_by_media_type,
            counters,
            extra,
            extra_by_type,
            kv,
            kv_by_blob,
            blob_contents,
            blob_chunks,
            blob_staging,
            format,
        ) = created.unwrap_commit();
        return Ok(Databases {
            blobs,
            blobs_by_media_type,
            counters,
            extra,
            extra_by_type,
            kv,
            kv_by_blob,
            blob_contents,
            blob_chunks,
            blob_staging,
            format,
        });
    }
    Err(out_of_attempts("database creation"))
}

/// A failed write to the environment at `path`. LMDB reports a write that a full disk cut
/// short as `EIO`: say so when the file system holding it is full.
fn write_error(path: &Path, mut context: String, error: heed::Error) -> StorageError {
    if matches!(error, heed::Error::Io(_)) {
        if let Some(note) = crate::backends::disk_space::full_file_system_note(path) {
            context = format!("{context} ({note})");
        }
    }
    StorageError::backend(BACKEND_NAME, context, error)
}

/// Maps heed errors into [`StorageError`] with a message naming what was being done.
pub(crate) trait HeedResultExt<T> {
    fn with_context(self, context: impl FnOnce() -> String) -> StorageResult<T>;
}

impl<T> HeedResultExt<T> for heed::Result<T> {
    fn with_context(self, context: impl FnOnce() -> String) -> StorageResult<T> {
        self.map_err(|error| StorageError::backend(BACKEND_NAME, context(), error))
    }
}

/// Whether `error` is the LMDB error `expected` (kept as the source of a backend error so
/// the retry loops can recognise it after it went through the operation's `?`).
fn is_mdb_error(error: &StorageError, expected: MdbError) -> bool {
    let StorageError::Backend { source, .. } = error else {
        return false;
    };
    match source.downcast_ref::<heed::Error>() {
        Some(heed::Error::Mdb(found)) => {
            std::mem::discriminant(found) == std::mem::discriminant(&expected)
        }
        _ => false,
    }
}

fn out_of_attempts(what: &str) -> StorageError {
    StorageError::InvalidArgument(format!(
        "LMDB {what} transaction still failed after {MAX_ATTEMPTS} map resizes"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_path_shares_one_environment() {
        let dir = tempfile::tempdir().unwrap();
        let first = SharedEnv::open(dir.path()).unwrap();
        let second = SharedEnv::open(&dir.path().join(".")).unwrap();
        assert!(Arc::ptr_eq(&first, &second));
    }

    #[test]
    fn moved_directory_shares_the_open_environment() {
        let dir = tempfile::tempdir().unwrap();
        let before = dir.path().join("before");
        let after = dir.path().join("after");
        let first = SharedEnv::open(&before).unwrap();
        std::fs::rename(&before, &after).unwrap();
        // Opening the same files a second time in this process would break LMDB's locks.
        let second = SharedEnv::open(&after).unwrap();
        assert!(Arc::ptr_eq(&first, &second));
    }

    #[test]
    fn reopens_after_last_user_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = SharedEnv::open(dir.path()).unwrap();
        first
            .write(|wtxn| {
                first
                    .databases
                    .counters
                    .put(wtxn, b"probe", b"1")
                    .with_context(|| "probe".to_string())
            })
            .unwrap();
        drop(first);
        let second = SharedEnv::open(dir.path()).unwrap();
        let value = second
            .read(|rtxn| {
                Ok(second
                    .databases
                    .counters
                    .get(rtxn, b"probe")
                    .with_context(|| "probe".to_string())?
                    .map(<[u8]>::to_vec))
            })
            .unwrap();
        assert_eq!(value.as_deref(), Some(&b"1"[..]));
    }

    #[test]
    fn writes_beyond_the_initial_map_grow_it() {
        let dir = tempfile::tempdir().unwrap();
        let initial = 256 * 1024;
        let env = SharedEnv::open_with_map_size(dir.path(), initial).unwrap();
        let value = vec![7u8; 64 * 1024];
        // One transaction bigger than the whole initial map, then many small ones.
        env.write(|wtxn| {
            for number in 0..16u32 {
                env.databases
                    .counters
                    .put(wtxn, &number.to_be_bytes(), &value)
                    .with_context(|| "filling".to_string())?;
            }
            Ok(())
        })
        .unwrap();
        for number in 16..64u32 {
            env.write(|wtxn| {
                env.databases
                    .counters
                    .put(wtxn, &number.to_be_bytes(), &value)
                    .with_context(|| "filling".to_string())
            })
            .unwrap();
        }
        assert!(env.map_size() > initial);
        let count = env
            .read(|rtxn| {
                env.databases
                    .counters
                    .len(rtxn)
                    .with_context(|| "count".to_string())
            })
            .unwrap();
        assert_eq!(count, 64);
    }

    /// Set for the child process started by `growth_by_another_process_is_adopted`.
    const CHILD_DIR_VARIABLE: &str = "OCI_STORE_LMDB_TEST_CHILD_DIR";

    fn put_numbered(env: &SharedEnv, name: &str, value: &[u8]) {
        env.write(|wtxn| {
            env.databases
                .counters
                .put(wtxn, name.as_bytes(), value)
                .with_context(|| format!("writing {name}"))
        })
        .unwrap();
    }

    /// Does nothing unless started as the child of `growth_by_another_process_is_adopted`:
    /// then it opens the same environment in a second process and grows its map.
    #[test]
    fn child_process_growing_the_map() {
        let Ok(dir) = std::env::var(CHILD_DIR_VARIABLE) else {
            return;
        };
        let env = SharedEnv::open_with_map_size(Path::new(&dir), 256 * 1024).unwrap();
        let value = vec![9u8; 64 * 1024];
        for number in 0..32 {
            put_numbered(&env, &format!("child-{number:02}"), &value);
        }
    }

    #[test]
    fn growth_by_another_process_is_adopted() {
        let dir = tempfile::tempdir().unwrap();
        let env = SharedEnv::open_with_map_size(dir.path(), 256 * 1024).unwrap();
        put_numbered(&env, "parent-0", b"before");
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "backends::lmdb::environment::tests::child_process_growing_the_map",
                "--test-threads=1",
                "--quiet",
            ])
            .env(CHILD_DIR_VARIABLE, dir.path())
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        // The child wrote far beyond this process's map: reading and writing must adopt the
        // size the child set.
        let count = env
            .read(|rtxn| {
                env.databases
                    .counters
                    .len(rtxn)
                    .with_context(|| "count".to_string())
            })
            .unwrap();
        assert_eq!(count, 33);
        put_numbered(&env, "parent-1", b"after");
        assert!(env.map_size() > 2 << 20);
    }
}

#[cfg(test)]
mod stale_reader_tests {
    use super::*;

    /// Set for the children started by `open_clears_readers_of_killed_processes`: what the
    /// child does, and in which directory.
    const ROLE_VARIABLE: &str = "OCI_STORE_LMDB_TEST_STALE_ROLE";
    const DIR_VARIABLE: &str = "OCI_STORE_LMDB_TEST_STALE_DIR";

    /// Does nothing unless started as a child of `open_clears_readers_of_killed_processes`.
    #[test]
    fn child_process_for_stale_readers() {
        let (Ok(role), Ok(dir)) = (std::env::var(ROLE_VARIABLE), std::env::var(DIR_VARIABLE))
        else {
            return;
        };
        let env = SharedEnv::open(Path::new(&dir)).unwrap();
        match role.as_str() {
            // Dies in the middle of a read transaction, as a killed process would: its reader
            // slot stays taken.
            "die-reading" => {
                let _guard = env.transactions.read().unwrap();
                let _rtxn = env.env.read_txn().unwrap();
                std::process::abort();
            }
            // A process opening the environment afterwards must find no stale reader left.
            "count-stale" => {
                assert_eq!(env.env.clear_stale_readers().unwrap(), 0);
            }
            other => panic!("unknown role {other}"),
        }
    }

    fn run_child(role: &str, dir: &Path) -> std::process::ExitStatus {
        std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "backends::lmdb::environment::stale_reader_tests::child_process_for_stale_readers",
                "--test-threads=1",
                "--quiet",
            ])
            .env(ROLE_VARIABLE, role)
            .env(DIR_VARIABLE, dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
    }

    #[test]
    fn open_clears_readers_of_killed_processes() {
        let dir = tempfile::tempdir().unwrap();
        // Kept open so the lock file is never re-initialised (LMDB resets the reader table only
        // when the first process opens the environment).
        let _env = SharedEnv::open(dir.path()).unwrap();
        assert!(!run_child("die-reading", dir.path()).success());
        assert!(run_child("count-stale", dir.path()).success());
    }
}
