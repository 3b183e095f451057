//! The shared conformance suite against Consul through the fake.

use std::time::Duration;

use provisioning_backend_consul::ConsulProvider;
use provisioning_provider_api::{ClusterProvider, MemberSpec};
use provisioning_testkit::fake_consul::{FakeConsul, FakeFailure, FakeInstance};
use provisioning_testkit::{
    Capabilities, ConformanceDriver, DriverError, InjectedFault, MANDATORY_CASES, MembershipChange,
    OPTIONAL_CASES, SuiteConfig, run_conformance,
};

use crate::{SERVICE, setup};

/// The tag that blocks a member (`watch.blocked_tag`).
const BLOCKED_TAG: &str = "blocked";

/// Drives the fake for the suite:
/// - membership changes are instance writes (labels travel as service
///   meta, the block flag as the `blocked` tag);
/// - `Retryable` = every request answers 500 until `Heal`;
/// - `Permanent` = every request answers 403 until `Heal`;
/// - `Terminate` = the provider is told to stop ([`ConsulProvider::close`]):
///   Consul itself never ends a watch, so the only faithful end of a Consul
///   stream is the service stopping the provider.
struct Driver<'a> {
    consul: &'a FakeConsul,
    provider: &'a ConsulProvider,
}

fn instance(spec: &MemberSpec) -> FakeInstance {
    let mut i = FakeInstance::new(SERVICE, spec.id.as_str(), &spec.host, spec.port);
    for (k, v) in &spec.labels {
        i = i.with_meta(k, v);
    }
    if spec.blocked {
        i = i.with_tag(BLOCKED_TAG);
    }
    i
}

impl ConformanceDriver for Driver<'_> {
    fn capabilities(&self) -> Capabilities {
        // Labels: meta comes back verbatim. A block list naming a
        // non-member cannot exist: blocking is a tag on an instance.
        // initial_snapshot: the provider keeps the last view.
        Capabilities::none()
            .with_labels(true)
            .with_block_non_members(false)
            .with_initial_snapshot(true)
    }

    async fn apply(&self, change: MembershipChange) -> Result<(), DriverError> {
        let missing = |id: &str| DriverError(format!("no instance {id}"));
        match change {
            MembershipChange::Reset(specs) => {
                self.consul
                    .set_instances(SERVICE, specs.iter().map(instance).collect());
            }
            MembershipChange::Upsert(spec) => self.consul.upsert(instance(&spec)),
            MembershipChange::Remove(id) => {
                if !self.consul.remove(SERVICE, id.as_str()) {
                    return Err(missing(id.as_str()));
                }
            }
            MembershipChange::Block(id) => {
                if !self.consul.update(SERVICE, id.as_str(), |i| {
                    i.tags.push(BLOCKED_TAG.into());
                }) {
                    return Err(missing(id.as_str()));
                }
            }
            MembershipChange::Unblock(id) => {
                if !self.consul.update(SERVICE, id.as_str(), |i| {
                    i.tags.retain(|t| t != BLOCKED_TAG);
                }) {
                    return Err(missing(id.as_str()));
                }
            }
        }
        Ok(())
    }

    async fn inject(&self, fault: InjectedFault) -> Result<(), DriverError> {
        match fault {
            InjectedFault::Retryable => self.consul.set_failure(FakeFailure::ServerError),
            InjectedFault::Permanent => self.consul.set_failure(FakeFailure::Forbidden),
            InjectedFault::Terminate => self.provider.close(),
            InjectedFault::Heal => self.consul.set_failure(FakeFailure::None),
        }
        Ok(())
    }
}

#[tokio::test]
async fn conformance_consul_through_the_fake() {
    let (consul, provider) = setup(&format!(r#""blocked_tag":"{BLOCKED_TAG}""#)).await;
    let driver = Driver {
        consul: &consul,
        provider: &provider,
    };
    // wait = 1 s: quiet period 1.0625 s inside the 1.5 s heartbeat interval.
    let config =
        SuiteConfig::new(Duration::from_millis(1500)).with_event_timeout(Duration::from_secs(8));
    let report = run_conformance(&provider, &driver, &config).await;
    println!("{report}");
    let executed = report.assert_conformant();
    assert_eq!(executed, MANDATORY_CASES.len() + OPTIONAL_CASES.len() - 1);
    assert!(provider.initial_snapshot().is_some());
}
