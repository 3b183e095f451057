//! The etcd provider against real etcd servers on loopback (Debian's
//! `etcd-server`; `ETCD_BIN` overrides the binary). Every test that starts
//! etcd holds [`serial`] for its whole run: they share two cores and their
//! timing matters.

#[path = "etcd/cluster.rs"]
mod cluster;
#[path = "etcd/conformance.rs"]
mod conformance;
#[path = "etcd/driver.rs"]
mod driver;
#[path = "etcd/faults.rs"]
mod faults;
#[path = "etcd/harness.rs"]
mod harness;
#[path = "etcd/injected_client.rs"]
mod injected_client;
#[path = "etcd/lifecycle.rs"]
mod lifecycle;
#[path = "etcd/registration.rs"]
mod registration;
#[path = "etcd/relist_pacing.rs"]
mod relist_pacing;
#[path = "etcd/support.rs"]
mod support;
#[path = "etcd/tls.rs"]
mod tls;
