//! The reference for the lmdb backend: plain heed doing the same commit, with the environment
//! settings of `src/backends/lmdb/environment.rs` (default flags, so every commit syncs; 64 MiB
//! initial map, 16 databases, 1024 readers, no thread-local read transactions), one write
//! transaction per put.

use std::path::Path;

use heed::types::Bytes;
use heed::{CommitOrAbort, Database, Env, EnvOpenOptions, WithoutTls};

use super::kv_contenders::KvContender;
use super::measure::BenchResult;

/// Large enough that the reference never has to grow its map, even with a large
/// `OCI_STORE_BENCH_SCALE` (ours starts at 64 MiB and grows by itself). The map size only
/// reserves address space; it does not change what a commit costs.
const MAP_SIZE: usize = 1 << 30;

pub struct RawLmdb {
    env: Env<WithoutTls>,
    kv: Database<'static, Bytes, Bytes>,
}

impl RawLmdb {
    pub fn open(dir: &Path) -> BenchResult<RawLmdb> {
        let path = dir.join("raw-lmdb");
        std::fs::create_dir_all(&path)?;
        let mut options = EnvOpenOptions::new().read_txn_without_tls();
        options.map_size(MAP_SIZE).max_dbs(16).max_readers(1024);
        // SAFETY: this path is opened once, by this reference only.
        let env = unsafe { options.open(&path) }?;
        let wtxn = env.write_txn()?;
        let kv = env
            .create_databases_and_commit(wtxn, |opener, wtxn| -> heed::Result<_> {
                let kv = opener.create_database::<Bytes, Bytes>(wtxn, Some("kv"))?;
                Ok(CommitOrAbort::<_, ()>::Commit(kv))
            })?
            .unwrap_commit();
        Ok(RawLmdb { env, kv })
    }
}

/// `data_type \0 key`, the slot layout of the backend.
fn slot(data_type: &str, key: &str) -> Vec<u8> {
    let mut slot = Vec::with_capacity(data_type.len() + 1 + key.len());
    slot.extend_from_slice(data_type.as_bytes());
    slot.push(0);
    slot.extend_from_slice(key.as_bytes());
    slot
}

impl KvContender for RawLmdb {
    fn put(&mut self, data_type: &str, key: &str, value: &[u8]) -> BenchResult<()> {
        // The backend's entry layout: version, blob digest length (0: none), value.
        let mut record = Vec::with_capacity(9 + value.len());
        record.extend_from_slice(&1u64.to_be_bytes());
        record.push(0);
        record.extend_from_slice(value);
        let mut wtxn = self.env.write_txn()?;
        self.kv.put(&mut wtxn, &slot(data_type, key), &record)?;
        wtxn.commit()?;
        Ok(())
    }

    fn get(&mut self, data_type: &str, key: &str) -> BenchResult<bool> {
        let rtxn = self.env.read_txn()?;
        let found = self
            .kv
            .get(&rtxn, &slot(data_type, key))?
            .map(<[u8]>::to_vec);
        Ok(found.is_some())
    }
}
