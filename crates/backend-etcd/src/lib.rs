//! etcd prefix-watch provider.
//!
//! Status: not implemented yet; this crate is a placeholder in the workspace
//! layout and exports nothing.

#![forbid(unsafe_code)]
