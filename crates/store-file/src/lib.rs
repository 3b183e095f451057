//! FileProviderStore: crash-safe JSON Lines storage of provider descriptors.
//!
//! Status: not implemented yet; this crate is a placeholder in the workspace
//! layout and exports nothing.

#![forbid(unsafe_code)]
