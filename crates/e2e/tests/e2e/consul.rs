//! Consul (through the fake) as the primary, an in-memory standby, under the
//! DEFAULT policy (timeout 15 s, cooldown 10 s, backoff 2 s ×2).

use std::sync::Arc;
use std::time::Duration;

use cluster_provisioning::{ClusterProvisioningService, FailoverPolicy, ProvisioningHandle};
use provisioning_backend_memory::{InMemoryHandle, InMemoryProvider};
use provisioning_e2e::Recorder;
use provisioning_provider_api::{
    ClusterNode, Incarnation, ProviderId, ProviderSnapshot, SwitchReason,
};
use provisioning_testkit::fake_consul::{FakeConsul, FakeInstance};

use super::harness::Harness;

struct ConsulSetup {
    fake: FakeConsul,
    service: ProvisioningHandle,
    standby: InMemoryHandle,
    placement: Arc<Recorder>,
    consul_view: ProviderSnapshot,
}

async fn start() -> ConsulSetup {
    let fake = FakeConsul::start().await.expect("fake consul");
    let mut nodes = Vec::new();
    for i in 1..=3u16 {
        let id = format!("app-{i}");
        let host = format!("10.0.0.{i}");
        fake.upsert(FakeInstance::new("app", &id, &host, 4000 + i));
        nodes.push(ClusterNode::new(id, host, 4000 + i));
    }
    // The provider's view carries each instance's CreateIndex as its
    // incarnation (CONTRACTS §1); the standby's members have none.
    let instances = fake.instances("app");
    let seen: Vec<ClusterNode> = nodes
        .iter()
        .map(|node| {
            let index = instances
                .iter()
                .find(|i| i.id == node.id.as_str())
                .map(|i| i.create_index.to_string())
                .expect("registered");
            node.clone()
                .with_incarnation(Incarnation::new(index).expect("an index"))
        })
        .collect();
    let consul_view = ProviderSnapshot::new(seen, vec![]).unwrap();
    // The standby sees the same cluster plus one member the agent has not
    // caught up with.
    let standby = InMemoryProvider::new(ProviderId::new("standby").unwrap(), 10);
    for node in nodes {
        standby.handle().add(node).unwrap();
    }
    standby
        .handle()
        .add(ClusterNode::new("app-4", "10.0.0.4", 4004))
        .unwrap();
    let registry = cluster_provisioning::builtin_registry();
    let descriptor = provisioning_registry::descriptor_from_json(&format!(
        r#"{{"id":"consul-a","kind":"consul","priority":20,"endpoints":["{}"],"watch":{{"service":"app","wait":"4s"}}}}"#,
        fake.url()
    ))
    .unwrap();
    registry.register(descriptor).unwrap();
    let placement = Recorder::new();
    let standby_handle = standby.handle();
    let service = ClusterProvisioningService::build(registry)
        .with_failover(FailoverPolicy::default())
        .with_provider(Arc::new(standby))
        .with_placement("placement", placement.clone())
        .start()
        .expect("service starts");
    ConsulSetup {
        fake,
        service,
        standby: standby_handle,
        placement,
        consul_view,
    }
}

async fn holds(
    placement: &Recorder,
    provider: &str,
    hash: u64,
    limit: Duration,
) -> Option<Duration> {
    placement
        .wait_for(limit, |s| {
            s.snapshots
                .last()
                .is_some_and(|l| l.provider_id().as_str() == provider && l.hash() == hash)
        })
        .await
}

fn last_reason(placement: &Recorder) -> Option<SwitchReason> {
    placement.state().changes.last().map(|c| c.reason)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consul_refused_fails_over_to_the_standby_and_back_after_the_cooldown() {
    let s = start().await;
    let policy = FailoverPolicy::default();
    let first = holds(
        &s.placement,
        "consul-a",
        s.consul_view.hash(),
        Harness::margin(Duration::from_secs(2)),
    )
    .await;
    println!("consul: first snapshot at the bridge after {first:?}");
    assert!(first.is_some(), "consul's view never reached the bridge");

    s.fake.refuse_connections(true).expect("close the port");
    let took = holds(
        &s.placement,
        "standby",
        s.standby.snapshot().hash(),
        Harness::margin(Duration::from_secs(1)),
    )
    .await;
    println!("consul refused -> consumers on the standby after {took:?} (target well under 1 s)");
    assert!(took.is_some(), "no failover after refused connections");
    assert_eq!(
        last_reason(&s.placement),
        Some(SwitchReason::HealthDegraded)
    );

    s.fake.refuse_connections(false).expect("reopen the port");
    // Reconnect on the backoff (2 s, 4 s, ...), then a healthy cooldown.
    let bound = policy.cooldown + policy.backoff_initial * 4;
    let took = holds(
        &s.placement,
        "consul-a",
        s.consul_view.hash(),
        Harness::margin(bound),
    )
    .await;
    println!(
        "consul healed -> fail-back after {took:?} (cooldown {:?})",
        policy.cooldown
    );
    assert!(took.is_some(), "no fail-back to consul");
    assert!(
        took.unwrap_or_default() >= policy.cooldown,
        "fail-back before a whole cooldown"
    );
    assert_eq!(
        last_reason(&s.placement),
        Some(SwitchReason::PriorityRestored)
    );
    assert!(s.placement.state().violations.is_empty());
    s.service.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_shutdown_deregisters_the_consul_self_registration() {
    let fake = FakeConsul::start().await.expect("fake consul");
    fake.upsert(FakeInstance::new("app", "app-1", "10.0.0.1", 4001));
    let registry = cluster_provisioning::builtin_registry();
    registry
        .register(
            provisioning_registry::descriptor_from_json(&format!(
                r#"{{"id":"consul-a","kind":"consul","priority":20,"endpoints":["{}"],"watch":{{"service":"app","wait":"1s","register":{{"id":"self-1","name":"app","address":"10.0.0.9","port":7000,"ttl":"2s"}}}}}}"#,
                fake.url()
            ))
            .unwrap(),
        )
        .unwrap();
    let service = ClusterProvisioningService::build(registry)
        .with_failover(FailoverPolicy::default())
        .start()
        .expect("service starts");
    let registered = wait(|| fake.instances("app").iter().any(|i| i.id == "self-1")).await;
    println!("self-registration visible after {registered:?}");
    assert!(registered.is_some(), "the node never registered itself");

    service.shutdown().await.unwrap();
    // Shutdown waits for the provider to deregister: no polling needed.
    let ids: Vec<String> = fake.instances("app").into_iter().map(|i| i.id).collect();
    assert_eq!(
        ids,
        ["app-1"],
        "self-registration left behind after shutdown"
    );
}

async fn wait(check: impl Fn() -> bool) -> Option<Duration> {
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if check() {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}
