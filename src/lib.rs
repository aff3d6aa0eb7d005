//! oci-store: a local, content-addressable store for container images, safe for many
//! processes and threads at once. See docs/ARCHITECTURE.md.

pub mod backends;
pub mod traits;
