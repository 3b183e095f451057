//! Real etcd members on loopback ports for testing the etcd provider.
//!
//! Status: not implemented yet; it arrives with the etcd backend.
