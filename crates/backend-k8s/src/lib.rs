//! Kubernetes Pods / EndpointSlices provider on kube-runtime's watcher.
//!
//! Status: not implemented yet; this crate is a placeholder in the workspace
//! layout and exports nothing.

#![forbid(unsafe_code)]
