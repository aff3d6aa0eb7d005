//! Several key/value writes as one atomic step: what an import needs to make all its refs (and
//! referrer-index entries) appear at once or not at all.

use super::base::Store;
use super::data::{validate_key, validate_name};
use super::error::{StoreError, StoreResult};
use super::locks::LockMode;
use crate::traits::{Digest, Index, KvOp, KvOpOutcome, KvStore};

impl Store {
    /// Applies `ops` in order in one key/value transaction: every one lands or none does (a
    /// compare-and-set that finds another version, a missing blob or any error writes
    /// nothing). Every blob an operation references must be in the store; the shared digest
    /// locks of all of them are held, taken in stripe order, from the check to the commit, so
    /// no delete can remove one in between (the same rule as [`Store::put_data`]).
    pub fn write_data_batch(&self, ops: &[KvOp]) -> StoreResult<Vec<KvOpOutcome>> {
        for op in ops {
            validate_name("data type", op.data_type())?;
            validate_key(op.key())?;
        }
        let digests: Vec<Digest> = ops.iter().filter_map(KvOp::blob).cloned().collect();
        let _locks = self.locks.lock_digests(&digests, LockMode::Shared)?;
        for op in ops {
            if let Some(digest) = op.blob() {
                if self.index.get(digest)?.is_none() {
                    return Err(StoreError::MissingBlob {
                        what: format!("key {}/{}", op.data_type(), op.key()),
                        digest: digest.clone(),
                    });
                }
            }
        }
        Ok(self.kv.write_batch(ops)?)
    }
}
