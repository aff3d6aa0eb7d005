//! Backends. Each folder implements traits from `crate::traits` and registers itself with
//! `inventory::submit!`; nothing here knows about OCI or appc.

pub mod fs;
pub mod lmdb;
pub mod sqlite;
