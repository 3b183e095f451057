//! A minority member: the etcd member the provider talks to is cut off from
//! its peers but stays reachable. It answers, but has no leader, while the
//! majority goes on accepting writes. The provider must notice (its watch
//! requires a leader), move to a majority endpoint without a provider
//! switch, and deliver the writes made during the partition, never
//! publishing a stale view.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster_provisioning::{ClusterProvisioningService, FailoverPolicy};
use provisioning_backend_memory::InMemoryProvider;
use provisioning_e2e::Recorder;
use provisioning_provider_api::{ClusterNode, ProviderId};
use provisioning_testkit::net_hosts::Net;
use provisioning_watch_hub::wire::ProvisioningEvent;

use super::support::{
    EventLog, PREFIX, etcd_provider, margin, member_value, seeded_etcd_on_three_hosts, serial,
};

/// Time the provider may take from the isolation to the majority's data:
/// the member sees no leader after an election timeout (1 s), etcd ends
/// leader-requiring watches after about three more, then one reconnect.
const MOVE_BOUND: Duration = Duration::from_secs(6);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minority_member_is_left_for_the_majority_without_a_switch() {
    let _serial = serial().await;
    let (hosts, cluster) = seeded_etcd_on_three_hosts().await;
    let endpoints = cluster.endpoints();

    let etcd = Arc::new(etcd_provider(&endpoints));
    let standby = InMemoryProvider::new(ProviderId::new("standby").expect("id"), 10);
    standby
        .handle()
        .add(ClusterNode::new("s1", "10.1.0.9", 5000))
        .expect("standby member");
    let placement = Recorder::new();
    let service = ClusterProvisioningService::build(cluster_provisioning::builtin_registry())
        .with_failover(FailoverPolicy::default())
        .with_provider(etcd.clone())
        .with_provider(Arc::new(standby))
        .with_bridges(placement.clone(), Recorder::new(), Recorder::new())
        .start()
        .expect("service starts");
    let log = EventLog::collect(service.events().expect("events"));
    let has = |ids: &'static [&'static str]| {
        move |e: &ProvisioningEvent| {
            matches!(e, ProvisioningEvent::Snapshot(s)
                if s.members().iter().map(|m| m.id.as_str()).eq(ids.iter().copied()))
        }
    };
    log.wait_for(0, margin(Duration::from_secs(2)), has(&["w1", "w2"]))
        .await
        .expect("etcd's view first");
    let mark = log.len();

    // The member the provider is attached to (it starts at a random
    // endpoint) is the one cut off; the others are the majority.
    let attached = etcd.current_endpoint();
    let cut = endpoints
        .iter()
        .position(|e| *e == attached)
        .expect("attached to one of the endpoints");
    // It is made a follower first: a cut leader would leave the whole
    // cluster without one until the majority elects another, which is a
    // different scenario (every endpoint refuses for a while).
    if cluster.leader_index().await == Some(cut) {
        cluster
            .move_leader((cut + 1) % endpoints.len())
            .await
            .expect("move the leadership away");
    }
    let leader = cluster.leader_index().await;
    let majority_endpoints: Vec<String> = (0..endpoints.len())
        .filter(|&i| i != cut)
        .map(|i| endpoints[i].clone())
        .collect();

    // Cut it off its peers; the test still reaches every member.
    let mut majority = etcd_client::Client::connect(&majority_endpoints, None)
        .await
        .expect("majority client");
    let cut_at = Instant::now();
    hosts.isolate(cut, Net::Peer).expect("isolate a follower");
    // Writes accepted by the majority during the partition (retried while
    // the majority elects a new leader, when the cut member led).
    for (id, port) in [("w3", 4003), ("w4", 4004)] {
        let started = Instant::now();
        while let Err(e) = majority
            .put(format!("{PREFIX}{id}"), member_value(id, port), None)
            .await
        {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "majority write: {e}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let written_at = cut_at.elapsed();
    let left = margin(MOVE_BOUND).saturating_sub(written_at);
    let seen = log
        .wait_for(mark, left, has(&["w1", "w2", "w3", "w4"]))
        .await
        .unwrap_or_else(|| {
            panic!(
                "the majority's writes never arrived: {:?}",
                log.lines_since(mark)
            )
        });
    let moved = seen.at.duration_since(cut_at);
    assert!(moved <= margin(MOVE_BOUND), "{moved:?}");
    println!(
        "minority member (member {cut}, leader {leader:?}): writes done {written_at:?} after \
         the cut; the majority's view published {moved:?} after the cut (bound {MOVE_BOUND:?})"
    );

    // Exactly the majority's changes, from the same provider: no switch,
    // no stale view in between (every snapshot is a state the prefix had,
    // in order).
    let lines = log.lines_since(mark);
    let topology: Vec<&str> = lines
        .iter()
        .map(String::as_str)
        .filter(|l| {
            l.starts_with("join") || l.starts_with("leave") || l.starts_with("provider_changed")
        })
        .collect();
    assert_eq!(topology, ["join w3", "join w4"], "all lines: {lines:?}");
    // Nothing changed on the minority member, so any view it published
    // after the cut would lack `w3`: every snapshot since holds it.
    let views: Vec<Vec<String>> = log
        .all()
        .into_iter()
        .skip(mark)
        .filter_map(|s| match &*s.event {
            ProvisioningEvent::Snapshot(p) => {
                Some(p.members().iter().map(|m| m.id.to_string()).collect())
            }
            _ => None,
        })
        .collect();
    assert!(
        views.iter().all(|v| v.iter().any(|id| id == "w3")),
        "a stale view: {views:?}"
    );
    assert!(
        log.all()
            .iter()
            .all(|s| !matches!(&*s.event, ProvisioningEvent::ProviderChanged(_))),
        "no provider switch: {lines:?}"
    );

    hosts.heal(cut).expect("heal");
    service.shutdown().await.expect("shutdown");
    drop(cluster);
}
