//! FailoverPolicy and FailoverController: the pure failover decision state machine.
//!
//! Status: not implemented yet; this crate is a placeholder in the workspace
//! layout and exports nothing.

#![forbid(unsafe_code)]
