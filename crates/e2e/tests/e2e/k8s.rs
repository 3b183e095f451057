//! Kubernetes (the fake API server, driven through the unmodified kube
//! client and watcher) as the primary, an in-memory standby: the API server
//! goes down → failover; it comes back → fail-back after the cooldown.

use std::sync::Arc;
use std::time::Duration;

use cluster_provisioning::{ClusterProvisioningService, FailoverPolicy};
use provisioning_backend_memory::InMemoryProvider;
use provisioning_e2e::Recorder;
use provisioning_provider_api::{ProviderId, SwitchReason};
use provisioning_testkit::fake_kube::{FakeKube, KubeDriver, KubeDriverMode};
use provisioning_testkit::{ConformanceDriver, MembershipChange, member};

use super::harness::Harness;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_primary_fails_over_to_the_standby_and_back() {
    let fake = Arc::new(FakeKube::start().await.expect("fake API server"));
    let driver = KubeDriver::new(fake.clone(), KubeDriverMode::Pods, "apps");
    let specs = vec![
        member("p1", "10.0.0.1", 4000),
        member("p2", "10.0.0.2", 4000),
        member("p3", "10.0.0.3", 4000),
    ];
    driver
        .apply(MembershipChange::Reset(specs.clone()))
        .await
        .expect("pods");
    let mut descriptor = driver
        .descriptor("k8s", serde_json::json!({}))
        .expect("descriptor");
    descriptor.priority = 20;

    let standby = InMemoryProvider::new(ProviderId::new("standby").unwrap(), 10);
    for spec in specs {
        standby.handle().add(spec.into_node().0).unwrap();
    }
    standby
        .handle()
        .add(provisioning_provider_api::ClusterNode::new(
            "p4", "10.0.0.4", 4000,
        ))
        .unwrap();
    let standby_hash = standby.handle().snapshot().hash();

    let registry = cluster_provisioning::builtin_registry();
    registry.register(descriptor).unwrap();
    let policy = FailoverPolicy::tight();
    let placement = Recorder::new();
    let service = ClusterProvisioningService::build(registry)
        .with_failover(policy.clone())
        .with_provider(Arc::new(standby))
        .with_placement("placement", placement.clone())
        .start()
        .expect("service starts");

    let limit = Harness::margin(Duration::from_secs(2));
    let on = |provider: &'static str| {
        move |s: &provisioning_e2e::RecorderState| {
            s.snapshots
                .last()
                .is_some_and(|l| l.provider_id().as_str() == provider)
        }
    };
    let took = placement.wait_for(limit, on("k8s")).await;
    println!("k8s: first snapshot at the bridge after {took:?}");
    assert!(
        took.is_some(),
        "the Kubernetes view never reached the bridge"
    );
    let k8s_hash = placement
        .last_snapshot()
        .map(|s| s.hash())
        .unwrap_or_default();
    assert_eq!(
        placement.last_snapshot().map(|s| s.members().len()),
        Some(3)
    );

    fake.down();
    let took = placement
        .wait_for(limit, |s| {
            s.snapshots.last().is_some_and(|l| l.hash() == standby_hash)
        })
        .await;
    println!("API server down -> consumers on the standby after {took:?}");
    assert!(took.is_some(), "no failover with the API server down");
    assert_eq!(
        placement.state().changes.last().map(|c| c.reason),
        Some(SwitchReason::HealthDegraded)
    );

    fake.up().await.expect("API server back");
    let bound = policy.cooldown + policy.backoff_cap * 2;
    let took = placement
        .wait_for(Harness::margin(bound), |s| {
            s.snapshots
                .last()
                .is_some_and(|l| l.provider_id().as_str() == "k8s" && l.hash() == k8s_hash)
        })
        .await;
    println!(
        "API server back -> fail-back after {took:?} (cooldown {:?})",
        policy.cooldown
    );
    assert!(took.is_some(), "no fail-back to Kubernetes");
    assert_eq!(
        placement.state().changes.last().map(|c| c.reason),
        Some(SwitchReason::PriorityRestored)
    );
    assert!(placement.state().violations.is_empty());
    service.shutdown().await.unwrap();
}
