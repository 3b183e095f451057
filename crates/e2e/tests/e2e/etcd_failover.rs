//! etcd primary + in-memory standby: fails over when etcd dies and back
//! when it returns (issue 9, "Must show" 3). Real etcd on loopback through
//! the testkit harness; needs `etcd-server` (`ETCD_BIN` overrides).

use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster_provisioning::{ClusterProvisioningService, FailoverPolicy};
use futures::StreamExt;
use provisioning_backend_etcd::EtcdProvider;
use provisioning_backend_memory::InMemoryProvider;
use provisioning_e2e::Recorder;
use provisioning_provider_api::{
    ClusterNode, Incarnation, MemberSpec, ProviderDescriptor, ProviderId, ProviderSnapshot,
    SwitchReason,
};
use provisioning_registry::SecretResolver;
use provisioning_testkit::etcd_cluster::EtcdCluster;
use provisioning_watch_hub::wire::ProvisioningEvent;

const PREFIX: &str = "/cluster/app/";

fn member(id: &str, port: u16) -> MemberSpec {
    MemberSpec::from(ClusterNode::new(id, "127.0.0.1", port))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_primary_fails_over_to_memory_standby_and_back() {
    let mut cluster = EtcdCluster::start(1).await.expect("etcd");
    let mut kv = etcd_client::Client::connect(cluster.endpoints(), None)
        .await
        .expect("etcd client");
    let members: Vec<MemberSpec> = [("p1", 4000), ("p2", 4001), ("p3", 4002)]
        .into_iter()
        .map(|(id, port)| member(id, port))
        .collect();
    // The provider's view carries each key's create_revision as the
    // member's incarnation (CONTRACTS §1).
    let mut seen = Vec::new();
    for m in &members {
        let put = kv
            .put(
                format!("{PREFIX}{}", m.id),
                serde_json::to_vec(m).expect("json"),
                None,
            )
            .await
            .expect("put");
        let revision = put.header().expect("header").revision().to_string();
        let mut m = m.clone();
        m.incarnation = Some(Incarnation::new(revision).expect("a revision"));
        seen.push(m);
    }
    let etcd_view = ProviderSnapshot::from_specs(seen).expect("snapshot");

    let descriptor: ProviderDescriptor = serde_json::from_value(serde_json::json!({
        "id": "etcd-a", "kind": "etcd", "priority": 20,
        "endpoints": cluster.endpoints(), "watch": {"prefix": PREFIX},
    }))
    .expect("descriptor");
    let etcd_id = descriptor.id.clone();
    let etcd = EtcdProvider::from_descriptor(descriptor, &SecretResolver::new("."))
        .expect("etcd provider");
    let standby_id = ProviderId::new("standby").unwrap();
    let standby = InMemoryProvider::new(standby_id.clone(), 10);
    for (id, port) in [("p1", 4000), ("p2", 4001), ("s1", 5000)] {
        standby
            .handle()
            .add(ClusterNode::new(id, "127.0.0.1", port))
            .unwrap();
    }
    let standby_view = standby.handle().snapshot();

    let policy = FailoverPolicy::tight();
    let (placement, partition, remoting) = (Recorder::new(), Recorder::new(), Recorder::new());
    let service = ClusterProvisioningService::build(cluster_provisioning::builtin_registry())
        .with_failover(policy.clone())
        .with_provider(Arc::new(etcd))
        .with_provider(Arc::new(standby))
        .with_bridges(placement.clone(), partition.clone(), remoting.clone())
        .start()
        .expect("service starts");
    let mut events = service.events().expect("events");
    let margin = |bound: Duration| bound * 3 + Duration::from_secs(2);
    let holds = |view: &ProviderSnapshot| {
        let hash = view.hash();
        let placement = placement.clone();
        async move {
            placement
                .wait_for(margin(Duration::from_secs(1)), |s| {
                    s.snapshots.last().is_some_and(|l| l.hash() == hash)
                })
                .await
        }
    };
    assert!(holds(&etcd_view).await.is_some(), "etcd's view first");
    assert!(placement.on_provider(&etcd_id));

    let mut next_change = async |to: &ProviderId, limit: Duration| {
        let started = Instant::now();
        loop {
            let left = limit.checked_sub(started.elapsed())?;
            match tokio::time::timeout(left, events.next()).await {
                Ok(Some(e)) => {
                    if let ProvisioningEvent::ProviderChanged(c) = &*e
                        && &c.to_provider_id == to
                    {
                        return Some((c.reason, started.elapsed()));
                    }
                }
                Ok(None) | Err(_) => return None,
            }
        }
    };

    // etcd dies (SIGKILL): refused connections → unreachable → standby.
    cluster.kill(0).expect("kill etcd");
    let (reason, took) = next_change(&standby_id, margin(policy.timeout))
        .await
        .expect("failover to the standby");
    println!("etcd killed -> provider_changed({reason:?}) to the standby after {took:?}");
    assert!(matches!(
        reason,
        SwitchReason::HealthDegraded | SwitchReason::Timeout
    ));
    assert!(
        holds(&standby_view).await.is_some(),
        "standby's view published"
    );

    // etcd returns: fail-back after a healthy cooldown.
    cluster.restart(0).await.expect("restart etcd");
    let (reason, took) = next_change(&etcd_id, margin(policy.cooldown + policy.backoff_cap))
        .await
        .expect("fail-back to etcd");
    println!("etcd restarted -> provider_changed({reason:?}) back after {took:?}");
    assert_eq!(reason, SwitchReason::PriorityRestored);
    assert!(
        holds(&etcd_view).await.is_some(),
        "etcd's view published again"
    );
    drop(remoting);
    drop(partition);
    service.shutdown().await.expect("shutdown");
}
