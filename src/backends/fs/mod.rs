//! fs blob store
