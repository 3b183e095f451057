//! ClusterProvisioningService: runs providers, failover and the watch hub for a cluster runtime.
//!
//! Status: not implemented yet; this crate is a placeholder in the workspace
//! layout and exports nothing.

#![forbid(unsafe_code)]
