//! A fake Consul HTTP API on loopback for testing the Consul provider.
//!
//! Status: not implemented yet; it arrives with the Consul backend.
