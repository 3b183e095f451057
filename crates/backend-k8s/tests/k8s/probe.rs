//! The preflight probe.
