//! The shared conformance suite through the fake, for both member sources.

use std::time::Duration;

use provisioning_testkit::fake_kube::KubeDriverMode;
use provisioning_testkit::{MANDATORY_CASES, SuiteConfig, run_conformance};
use serde_json::json;

use crate::support::{driver, fake, provider};

fn config() -> SuiteConfig {
    SuiteConfig::new(Duration::from_secs(1)).with_event_timeout(Duration::from_secs(10))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_pods() {
    let fake = fake().await;
    let driver = driver(&fake, KubeDriverMode::Pods);
    let provider = provider(&driver, json!({}));
    let report = run_conformance(&provider, &driver, &config()).await;
    let executed = report.assert_conformant();
    // labels, initial_snapshot, restart_yields_new_incarnation and
    // draining_before_leave run; block_non_members is not declared.
    assert_eq!(executed, MANDATORY_CASES.len() + 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_endpointslices() {
    let fake = fake().await;
    let driver = driver(&fake, KubeDriverMode::EndpointSlices);
    let provider = provider(&driver, json!({}));
    let report = run_conformance(&provider, &driver, &config()).await;
    let executed = report.assert_conformant();
    // initial_snapshot and the two lifecycle cases.
    assert_eq!(executed, MANDATORY_CASES.len() + 3);
}
