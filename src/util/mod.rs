//! Small helpers every layer needs, written once: an io error that names what was being done
//! and where, the clock, a directory fsync, opening a compressed stream by its magic bytes, and
//! freeing large structures off the caller's path.

pub mod background_drop;
pub mod clock;
pub mod compression;
pub mod fsync;
pub mod io_context;
pub mod pipe;
