//! Store flavours built on the base store (DESIGN.md): each is generic over `Store`
//! and never names a backend.

pub mod appc;
pub mod oci;
pub mod rootfs;
