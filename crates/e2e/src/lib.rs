//! End-to-end tests and harnesses over the facade, backends and testkit.
//!
//! Status: not implemented yet; this crate is a placeholder in the workspace
//! layout and exports nothing.

#![forbid(unsafe_code)]
