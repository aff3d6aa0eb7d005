//! Backends. Each folder implements traits from `crate::traits` and registers itself with
//! `inventory::submit!`; nothing here knows about OCI or appc. The backends share one sibling
//! module, [`staging_lock`]: the one protocol by which a staged write proves it is live.

mod disk_space;
pub mod fs;
pub mod lmdb;
pub mod sqlite;
mod staging_lock;
