//! ProviderWatchHub: numbering, diff, shrink guard and fan-out of topology to consumers.
//!
//! Status: not implemented yet; this crate is a placeholder in the workspace
//! layout and exports nothing.

#![forbid(unsafe_code)]
