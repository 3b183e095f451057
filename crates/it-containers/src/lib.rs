//! Container-backed tests of the Consul provider (the design card's
//! testcontainers test): the shared conformance suite against a real
//! `hashicorp/consul` agent in dev mode with ACLs on.
//!
//! The tests live in `tests/consul_container.rs`. They need a Docker engine
//! and the image (pulled on first use). `cargo xtask integration` (and so
//! `cargo xtask ci`) builds them with the committed `Cargo.lock`, so they
//! keep compiling; `cargo xtask integration --containers` also runs them,
//! and fails with a one-line reason where no Docker engine answers — "not
//! run" is never a pass.

#![forbid(unsafe_code)]
