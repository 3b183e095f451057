//! A fake Kubernetes API server on loopback for testing the Kubernetes
//! provider.
//!
//! Status: not implemented yet; it arrives with the Kubernetes backend.
