//! Last-used records (DESIGN.md, "Serving, mirroring and retention"): when a flavour's name (a
//! ref) and a blob were last used, for retention to evict the least recently used first.
//!
//! - A name's record is the key/value entry `store.last-used/<holder>/<name>`, a blob's the
//!   extra data `store.last-used` of the blob; both decimal Unix milliseconds. A blob's record
//!   goes with the blob; a name's with the holder's next `forget_use`.
//! - Throttled: an item recorded within the interval ([`Store::set_last_used_interval`],
//!   five minutes unless set; zero records every use) is not written again, whether this
//!   process wrote it (remembered here) or another one did (read first). So a hot path writes
//!   at most once per item per interval, and several processes may record at once (the last
//!   write wins; each is a time the item was in use).
//! - Best effort: a record that cannot be written (a read-only store, a full disk) does not
//!   fail the use that asked for it. Readers never wait for it: the metadata backends let
//!   readers go on while a writer commits.

use std::collections::HashMap;
use std::time::Duration;

use super::base::Store;
use super::error::StoreResult;
use super::holder::Holder;
use crate::traits::{Digest, KvOp};
use crate::util::clock::now_unix_ms;

/// Extra-data type of a blob's last use, and key/value data type of a name's.
pub const LAST_USED_TYPE: &str = "store.last-used";

/// The interval when none was set: a busy server writes a ref's record every five minutes.
pub const DEFAULT_LAST_USED_INTERVAL: Duration = Duration::from_secs(300);

/// What this process recorded, and when (Unix ms): the in-memory half of the throttle.
#[derive(Default)]
pub(crate) struct UseRecords {
    interval_ms: Option<i64>,
    written: HashMap<String, i64>,
}

fn name_key(holder: &Holder, name: &str) -> String {
    format!("{}/{name}", holder.name())
}

fn parse_ms(bytes: &[u8]) -> Option<i64> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

impl Store {
    /// Sets how often one item's use is written at most (zero: every use; `Duration::MAX`:
    /// never, recording is off).
    pub fn set_last_used_interval(&self, interval: Duration) {
        let mut records = self.use_records();
        records.interval_ms = Some(i64::try_from(interval.as_millis()).unwrap_or(i64::MAX));
    }

    fn use_records(&self) -> std::sync::MutexGuard<'_, UseRecords> {
        self.use_records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records that `holder`'s `name` (when given) and `blobs` are being used now, throttled
    /// and best effort (see the module documentation).
    pub fn record_use(&self, holder: &Holder, name: Option<&str>, blobs: &[Digest]) {
        let _ = self.try_record_use(holder, name, blobs);
    }

    fn try_record_use(
        &self,
        holder: &Holder,
        name: Option<&str>,
        blobs: &[Digest],
    ) -> StoreResult<()> {
        let now = now_unix_ms();
        let interval = self
            .use_records()
            .interval_ms
            .unwrap_or(DEFAULT_LAST_USED_INTERVAL.as_millis() as i64);
        if interval == i64::MAX {
            return Ok(());
        }
        let fresh = |stored: Option<i64>| stored.is_some_and(|at| now - at < interval);
        let recently_written = |key: &str| fresh(self.use_records().written.get(key).copied());
        let value = now.to_string();
        if let Some(name) = name {
            let key = name_key(holder, name);
            let memo = format!("name {key}");
            if !recently_written(&memo) {
                let stored = self
                    .get_data(LAST_USED_TYPE, &key)?
                    .and_then(|entry| parse_ms(&entry.value));
                if !fresh(stored) {
                    self.put_data(LAST_USED_TYPE, &key, value.as_bytes(), None)?;
                }
                self.use_records().written.insert(memo, now);
            }
        }
        for digest in blobs {
            let memo = format!("blob {digest}");
            if recently_written(&memo) {
                continue;
            }
            let stored = self
                .get_extra(digest, LAST_USED_TYPE)?
                .and_then(|bytes| parse_ms(&bytes));
            if !fresh(stored) {
                self.set_extra(digest, LAST_USED_TYPE, value.as_bytes())?;
            }
            self.use_records().written.insert(memo, now);
        }
        Ok(())
    }

    /// When `holder`'s `name` was last used (Unix ms), if it was recorded.
    pub fn name_last_used(&self, holder: &Holder, name: &str) -> StoreResult<Option<i64>> {
        Ok(self
            .get_data(LAST_USED_TYPE, &name_key(holder, name))?
            .and_then(|entry| parse_ms(&entry.value)))
    }

    /// Every recorded name of `holder` with its last use (Unix ms), by name.
    pub fn names_last_used(&self, holder: &Holder) -> StoreResult<HashMap<String, i64>> {
        let prefix = format!("{}/", holder.name());
        Ok(self
            .list_data(LAST_USED_TYPE, &prefix)?
            .into_iter()
            .filter_map(|(key, entry)| {
                let name = key.strip_prefix(&prefix)?.to_string();
                Some((name, parse_ms(&entry.value)?))
            })
            .collect())
    }

    /// When a blob was last used (Unix ms), if it was recorded.
    pub fn blob_last_used(&self, digest: &Digest) -> StoreResult<Option<i64>> {
        Ok(self
            .get_extra(digest, LAST_USED_TYPE)?
            .and_then(|bytes| parse_ms(&bytes)))
    }

    /// What removing `holder`'s `name` takes with it, as batch operations for the same
    /// transaction as the name's own removal: its last-use record and its pin (each removed
    /// if there), so no crash or failed write leaves them behind the name.
    pub(crate) fn name_records_removal(&self, holder: &Holder, name: &str) -> Vec<KvOp> {
        vec![
            KvOp::Remove {
                data_type: LAST_USED_TYPE.to_string(),
                key: name_key(holder, name),
            },
            KvOp::Remove {
                data_type: super::retention::PIN_TYPE.to_string(),
                key: super::retention::pin_key(holder, name),
            },
        ]
    }

    /// Forgets `holder`'s `name`'s record (the name is gone).
    pub fn forget_use(&self, holder: &Holder, name: &str) -> StoreResult<()> {
        self.remove_data(LAST_USED_TYPE, &name_key(holder, name))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{open_store, BackendChoice, WriteOptions};

    const OCI: Holder = Holder::flavour("oci");

    #[test]
    fn uses_are_recorded_throttled_and_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(dir.path(), &BackendChoice::default()).unwrap();
        let blob = store
            .write_bytes(b"used", &WriteOptions::default())
            .unwrap()
            .digest;
        store.record_use(&OCI, Some("app:1"), std::slice::from_ref(&blob));
        let first = store
            .name_last_used(&OCI, "app:1")
            .unwrap()
            .expect("recorded");
        assert!(store.blob_last_used(&blob).unwrap().is_some());
        assert_eq!(store.names_last_used(&OCI).unwrap()["app:1"], first);

        // Within the interval: not written again, even when the stored time is old (this
        // process remembers it wrote it).
        store
            .put_data(LAST_USED_TYPE, "oci/app:1", b"1", None)
            .unwrap();
        store.record_use(&OCI, Some("app:1"), &[]);
        assert_eq!(store.name_last_used(&OCI, "app:1").unwrap(), Some(1));
        // Another process recorded it lately: not written either.
        let other = Holder::flavour("appc");
        store
            .put_data(
                LAST_USED_TYPE,
                "appc/x",
                now_unix_ms().to_string().as_bytes(),
                None,
            )
            .unwrap();
        let before = store.name_last_used(&other, "x").unwrap();
        store.record_use(&other, Some("x"), &[]);
        assert_eq!(store.name_last_used(&other, "x").unwrap(), before);

        // A zero interval: every use is written.
        store.set_last_used_interval(Duration::ZERO);
        store.record_use(&OCI, Some("app:1"), &[]);
        assert!(store.name_last_used(&OCI, "app:1").unwrap().unwrap() >= first);

        store.forget_use(&OCI, "app:1").unwrap();
        assert_eq!(store.name_last_used(&OCI, "app:1").unwrap(), None);

        // Off: nothing is written, not even a first record.
        store.set_last_used_interval(Duration::MAX);
        store.record_use(&OCI, Some("app:2"), &[]);
        assert_eq!(store.name_last_used(&OCI, "app:2").unwrap(), None);
    }
}
