//! A blackhole: the service's view of every etcd member is cut (client
//! network down on every host), so packets vanish with no RST and no FIN.
//! The service fails over to its in_memory standby within the bound, fails
//! back after the cooldown once healed, and its consumers converge to
//! etcd's current truth.

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

/// How long a blackholed provider may stay active under `policy`: the
/// liveness probes' verdict (CONTRACTS §7), not the no-response timeout.
fn switch_bound(policy: &FailoverPolicy) -> Duration {
    policy.liveness_timeout * policy.max_errors
        + policy.liveness_interval
        + Duration::from_millis(500)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackholed_backend_is_left_for_the_standby_and_regained_after_the_heal() {
    let _serial = serial().await;
    let (hosts, cluster) = seeded_etcd_on_three_hosts().await;
    let endpoints = cluster.endpoints();

    let etcd = etcd_provider(&endpoints);
    let standby_id = ProviderId::new("standby").expect("id");
    let standby = InMemoryProvider::new(standby_id.clone(), 10);
    for (id, port) in [("s1", 5001), ("s2", 5002)] {
        standby
            .handle()
            .add(ClusterNode::new(id, "10.1.0.9", port))
            .expect("standby member");
    }
    let policy = FailoverPolicy::default();
    let service = ClusterProvisioningService::build(cluster_provisioning::builtin_registry())
        .with_failover(policy.clone())
        .with_provider(Arc::new(etcd))
        .with_provider(Arc::new(standby))
        .with_bridges(Recorder::new(), Recorder::new(), Recorder::new())
        .start()
        .expect("service starts");
    let log = EventLog::collect(service.events().expect("events"));
    let view = |provider: &'static str, ids: &'static [&'static str]| {
        move |e: &ProvisioningEvent| {
            matches!(e, ProvisioningEvent::Snapshot(s)
                if s.provider_id().as_str() == provider
                    && s.members().iter().map(|m| m.id.as_str()).eq(ids.iter().copied()))
        }
    };
    log.wait_for(
        0,
        margin(Duration::from_secs(2)),
        view("etcd-a", &["w1", "w2"]),
    )
    .await
    .expect("etcd's view first");
    let mark = log.len();

    // Blackhole: every member's client link down.
    let cut_at = Instant::now();
    for i in 0..hosts.len() {
        hosts.isolate(i, Net::Client).expect("isolate");
    }
    let bound = switch_bound(&policy);
    let switched = log
        .wait_for(mark, margin(bound), view("standby", &["s1", "s2"]))
        .await
        .unwrap_or_else(|| panic!("no switch to the standby: {:?}", log.lines_since(mark)));
    let switch_took = switched.at.duration_since(cut_at);
    println!("blackhole: switched to the standby {switch_took:?} after the cut (bound {bound:?})");
    // Asserted at twice the bound, not the usual 3× + 2 s: that margin
    // (15.5 s) would let the no-response timeout (15 s) pass for probing.
    assert!(switch_took <= bound * 2, "{switch_took:?}");

    // Heal: fail-back after the cooldown, to etcd's current content.
    let healed_at = Instant::now();
    for i in 0..hosts.len() {
        hosts.heal(i).expect("heal");
    }
    // etcd's truth moves on before the fail-back: the consumers must end on
    // it, not on the view cached before the cut.
    let mut client = etcd_client::Client::connect(&endpoints, None)
        .await
        .expect("etcd client after the heal");
    client
        .put(format!("{PREFIX}w3"), member_value("w3", 4003), None)
        .await
        .expect("put after the heal");
    let back_bound = policy.cooldown + policy.backoff_cap;
    let back = log
        .wait_for(
            mark,
            margin(back_bound),
            view("etcd-a", &["w1", "w2", "w3"]),
        )
        .await
        .unwrap_or_else(|| panic!("no fail-back: {:?}", log.lines_since(mark)));
    println!(
        "blackhole: converged back to etcd {:?} after the heal (cooldown {:?})",
        back.at.duration_since(healed_at),
        policy.cooldown
    );
    let lines = log.lines_since(mark);
    let topology: Vec<&str> = lines
        .iter()
        .map(String::as_str)
        .filter(|l| {
            l.starts_with("join") || l.starts_with("leave") || l.starts_with("provider_changed")
        })
        .collect();
    assert_eq!(
        topology,
        [
            "provider_changed standby",
            "leave w1",
            "leave w2",
            "join s1",
            "join s2",
            "provider_changed etcd-a",
            "leave s1",
            "leave s2",
            "join w1",
            "join w2",
            "join w3",
        ],
        "all lines: {lines:?}"
    );
    service.shutdown().await.expect("shutdown");
    drop(cluster);
}
