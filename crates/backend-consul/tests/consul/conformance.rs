//! The shared conformance suite against Consul through the fake, driven by
//! the testkit's [`FakeConsulDriver`]. `Terminate` is the provider being
//! told to stop ([`ConsulProvider::close`](provisioning_backend_consul::ConsulProvider::close)):
//! Consul itself never ends a blocking-query watch.

use std::time::Duration;

use provisioning_provider_api::ClusterProvider;
use provisioning_testkit::fake_consul::FakeConsulDriver;
use provisioning_testkit::{MANDATORY_CASES, OPTIONAL_CASES, SuiteConfig, run_conformance};

use crate::{SERVICE, setup};

/// The tag that blocks a member (`watch.blocked_tag`).
const BLOCKED_TAG: &str = "blocked";

#[tokio::test]
async fn conformance_consul_through_the_fake() {
    let (consul, provider) = setup(&format!(r#""blocked_tag":"{BLOCKED_TAG}""#)).await;
    let driver = FakeConsulDriver::new(&consul, SERVICE, BLOCKED_TAG, || provider.close());
    // wait = 1 s: quiet period 1.0625 s inside the 1.5 s heartbeat interval.
    let config =
        SuiteConfig::new(Duration::from_millis(1500)).with_event_timeout(Duration::from_secs(8));
    let report = run_conformance(&provider, &driver, &config).await;
    println!("{report}");
    let executed = report.assert_conformant();
    // All but block_non_member and draining_before_leave, which the driver
    // declares unsupported (Consul has no draining signal).
    assert_eq!(executed, MANDATORY_CASES.len() + OPTIONAL_CASES.len() - 2);
    assert!(provider.initial_snapshot().is_some());
}
