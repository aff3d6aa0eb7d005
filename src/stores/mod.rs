//! Store flavours built on the base store (DESIGN.md): each is generic over `Store<B, I, X, K>`
//! and never names a backend.

pub mod appc;
pub mod oci;
pub mod rootfs;
