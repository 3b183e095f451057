//! Container-backed tests of the Consul provider (the design card's
//! testcontainers test): the shared conformance suite against a real
//! `hashicorp/consul` agent in dev mode with ACLs on.
//!
//! The tests live in `tests/consul_container.rs`. They need a Docker engine
//! and the image (pulled on first use); `cargo xtask integration
//! --containers` runs them where Docker answers and reports them as
//! "not run" otherwise — never as passed.

#![forbid(unsafe_code)]
