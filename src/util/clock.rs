//! The wall clock, as the store records it: Unix time in milliseconds (record timestamps,
//! leases, backup names) and in nanoseconds (unique names). A clock before 1970 reads 0.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now.
pub fn now_unix_ms() -> i64 {
    since_epoch().map_or(0, |elapsed| {
        i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
    })
}

/// Nanoseconds since the Unix epoch, now: part of names that must not repeat.
pub fn now_unix_nanos() -> u128 {
    since_epoch().map_or(0, |elapsed| elapsed.as_nanos())
}

fn since_epoch() -> Option<std::time::Duration> {
    SystemTime::now().duration_since(UNIX_EPOCH).ok()
}
