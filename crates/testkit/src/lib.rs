//! Test kit for cluster providers: the conformance suite every provider must
//! pass (public, so third-party providers run it too), with the driver trait
//! a backend implements to change membership and inject faults.
//!
//! ```no_run
//! # async fn demo<D: provisioning_testkit::ConformanceDriver>(
//! #     provider: &dyn provisioning_provider_api::ClusterProvider, driver: &D) {
//! use std::time::Duration;
//! use provisioning_testkit::{run_conformance, SuiteConfig};
//! let report = run_conformance(provider, driver, &SuiteConfig::new(Duration::from_millis(200))).await;
//! // Prints every case and panics unless all mandatory cases ran and passed.
//! let executed = report.assert_conformant();
//! assert!(executed >= provisioning_testkit::MANDATORY_CASES.len());
//! # }
//! ```
//!
//! Fakes of Consul and the Kubernetes API server and an etcd launcher join
//! this crate with their backends; [`net_hosts`] gives partition tests hosts
//! of their own (network namespaces).

#![forbid(unsafe_code)]

mod change_lines;
mod conformance;
mod driver;
pub mod etcd_cluster;
pub mod fake_consul;
pub mod fake_kube;
mod in_memory_driver;
pub mod net_hosts;
mod report;
mod roster_kind;
mod roster_provider;

pub use change_lines::change_lines;
pub use conformance::*;
pub use driver::{Capabilities, ConformanceDriver, DriverError, InjectedFault, MembershipChange};
pub use in_memory_driver::InMemoryDriver;
pub use report::{CaseOutcome, CaseRecord, ConformanceReport};
pub use roster_kind::{RosterKind, roster_kind};
pub use roster_provider::RosterProvider;
