//! Leases: key/value entries `oci.lease/<id>` with value `{expires_unix_ms, digests}`. A live
//! lease is a GC root for its digests, so multi-step work across processes (write blobs now,
//! tag later) is not swept in between. Expired leases are ignored, and removed by the OCI GC.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::{OciError, OciResult};
use super::{OciStore, LEASE_DATA_TYPE};
use crate::traits::{Algorithm, Digest, KvOp};
use crate::util::clock::{now_unix_ms, now_unix_nanos};

/// A lease: keeps blobs from the OCI GC until it expires, whether or not a ref reaches them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Lease {
    /// The lease's id, generated at creation.
    pub id: String,
    /// When it expires, in milliseconds since the Unix epoch.
    pub expires_unix_ms: i64,
    /// The blobs it keeps, sorted, without duplicates.
    pub digests: Vec<Digest>,
}

/// What is stored as the entry's value (the id is the key).
#[derive(Serialize, Deserialize)]
struct LeaseValue {
    expires_unix_ms: i64,
    digests: Vec<Digest>,
}

impl Lease {
    /// Whether the lease has expired at `now_unix_ms` (milliseconds since the Unix epoch).
    pub fn is_expired_at(&self, now_unix_ms: i64) -> bool {
        self.expires_unix_ms <= now_unix_ms
    }

    /// Whether the lease has expired now.
    pub fn is_expired(&self) -> bool {
        self.is_expired_at(now_unix_ms())
    }
}

/// A lease id unique across processes and threads: a hash of time, process id and a
/// per-process counter, shortened (collisions are caught by compare-and-set anyway).
fn new_lease_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = now_unix_nanos();
    let seed = format!(
        "{nanos}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    Digest::of_bytes(Algorithm::Sha256, seed.as_bytes()).hex()[..24].to_string()
}

/// A new lease on `digests` for `ttl` from now, and the key/value operation that records it:
/// a compare-and-set on an absent key (the id must be new), so it can land in an operation's
/// commit batch with what it protects. The entry references `references` when given (a lease
/// on one blob written with it, such as an upload's), so it never outlives that blob.
pub(super) fn new_lease(
    ttl: Duration,
    digests: &[Digest],
    references: Option<&Digest>,
) -> (Lease, KvOp) {
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let mut digests = digests.to_vec();
    digests.sort();
    digests.dedup();
    let lease = Lease {
        id: new_lease_id(),
        expires_unix_ms: now_unix_ms().saturating_add(ttl_ms),
        digests,
    };
    let value = serde_json::to_vec(&LeaseValue {
        expires_unix_ms: lease.expires_unix_ms,
        digests: lease.digests.clone(),
    })
    .expect("a lease always serializes");
    let entry = KvOp::CompareAndSet {
        data_type: LEASE_DATA_TYPE.to_string(),
        key: lease.id.clone(),
        value,
        blob: references.cloned(),
        expected_version: None,
    };
    (lease, entry)
}

impl OciStore<'_> {
    /// Creates a lease on `digests` for `ttl`. The digests need not be stored yet.
    pub fn lease_create(&self, ttl: Duration, digests: &[Digest]) -> OciResult<Lease> {
        let _gc_lock = self.mutation_lock()?;
        let (lease, entry) = new_lease(ttl, digests, None);
        self.store.write_data_batch(&[entry])?;
        Ok(lease)
    }

    /// Every lease, expired ones included, in id order.
    pub fn lease_list(&self) -> OciResult<Vec<Lease>> {
        self.store
            .list_data(LEASE_DATA_TYPE, "")?
            .into_iter()
            .map(|(id, entry)| {
                let value: LeaseValue = serde_json::from_slice(&entry.value)
                    .map_err(|e| OciError::document(format!("lease {id}"), e))?;
                Ok(Lease {
                    id,
                    expires_unix_ms: value.expires_unix_ms,
                    digests: value.digests,
                })
            })
            .collect()
    }

    /// Removes the lease `id`; [`OciError::LeaseNotFound`] when there is none.
    pub fn lease_remove(&self, id: &str) -> OciResult<()> {
        if !self.store.remove_data(LEASE_DATA_TYPE, id)? {
            return Err(OciError::LeaseNotFound(id.to_string()));
        }
        Ok(())
    }
}
