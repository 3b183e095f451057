//! The shared conformance suite against a real single-member etcd.

use std::time::Duration;

use provisioning_provider_api::ClusterProvider;
use provisioning_testkit::etcd_cluster::EtcdCluster;
use provisioning_testkit::{MANDATORY_CASES, SuiteConfig, run_conformance};

use crate::driver::EtcdDriver;
use crate::support::{provider, serial};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_real_etcd() {
    let _serial = serial().await;
    let cluster = EtcdCluster::start(1).await.expect("etcd");
    let driver = EtcdDriver::new(cluster).await;
    let provider = provider(&driver.endpoints().await);
    let config =
        SuiteConfig::new(Duration::from_secs(1)).with_event_timeout(Duration::from_secs(10));
    let started = tokio::time::Instant::now();
    let report = run_conformance(&provider as &dyn ClusterProvider, &driver, &config).await;
    let executed = report.assert_conformant();
    println!(
        "conformance against etcd: {executed} cases in {:?}",
        started.elapsed()
    );
    assert_eq!(
        executed,
        MANDATORY_CASES.len() + 4,
        "labels, initial_snapshot, restart_yields_new_incarnation, draining_before_leave"
    );
}
