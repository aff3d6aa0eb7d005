//! Small helpers every layer needs, written once: an io error that names what was being done
//! and where, the clock, a directory fsync, and opening a compressed stream by its magic bytes.

pub mod clock;
pub mod compression;
pub mod fsync;
pub mod io_context;
pub mod pipe;
