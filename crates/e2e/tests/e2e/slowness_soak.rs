//! No false positives under slowness (CONTRACTS §7 `liveness_*`): a Consul
//! primary (the fake, behind the chaos proxy's latency fault) whose every
//! answer — blocking queries and liveness probes alike — arrives 60 % of
//! `liveness_timeout` late, under membership churn and the DEFAULT policy,
//! must never be left. Ten minutes by default: `#[ignore]`d, so CI does not
//! run it; run it with
//! `cargo test -p provisioning-e2e --test e2e -- --ignored slowness_soak --nocapture`
//! (`LIVENESS_SOAK_SECS` shortens or lengthens it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster_provisioning::{ClusterProvisioningService, FailoverPolicy};
use provisioning_backend_memory::InMemoryProvider;
use provisioning_e2e::Recorder;
use provisioning_e2e::chaos_proxy::{ChaosProxy, ProxyMode};
use provisioning_e2e::soak_churn::Rng;
use provisioning_provider_api::{ClusterNode, ProviderId};
use provisioning_testkit::fake_consul::{FakeConsul, FakeInstance};

use super::harness::Harness;

fn soak_length() -> Duration {
    let secs = std::env::var("LIVENESS_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(600);
    Duration::from_secs(secs)
}

fn instance(i: u64) -> FakeInstance {
    FakeInstance::new("app", &format!("m{i}"), &format!("10.0.1.{i}"), 4000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a 10-minute soak; run it by hand (see the module docs)"]
async fn slowness_soak_a_slow_backend_is_never_left() {
    let policy = FailoverPolicy::default();
    let delay = policy.liveness_timeout * 6 / 10;
    let fake = FakeConsul::start().await.expect("fake consul");
    let mut present: Vec<u64> = (1..=5).collect();
    fake.set_instances("app", present.iter().map(|&i| instance(i)).collect());
    let proxy = ChaosProxy::start(fake.addr()).await.expect("proxy");
    proxy
        .set_mode(ProxyMode::Latency { delay })
        .expect("latency");

    let standby = InMemoryProvider::new(ProviderId::new("standby").expect("id"), 10);
    standby
        .handle()
        .add(ClusterNode::new("s-only", "10.0.9.9", 4000))
        .expect("member");
    let registry = cluster_provisioning::builtin_registry();
    registry
        .register(
            provisioning_registry::descriptor_from_json(&format!(
                r#"{{"id":"consul-a","kind":"consul","priority":20,"endpoints":["{}"],"watch":{{"service":"app","wait":"4s"}}}}"#,
                proxy.url()
            ))
            .expect("consul descriptor"),
        )
        .expect("register consul");
    let placement = Recorder::new();
    let service = ClusterProvisioningService::build(registry)
        .with_failover(policy.clone())
        .with_provider(Arc::new(standby))
        .with_placement("placement", placement.clone())
        .start()
        .expect("service starts");
    let on_consul = |s: &provisioning_e2e::RecorderState| {
        s.snapshots
            .last()
            .is_some_and(|l| l.provider_id().as_str() == "consul-a")
    };
    assert!(
        placement
            .wait_for(Harness::margin(Duration::from_secs(3)), on_consul)
            .await
            .is_some(),
        "consul's view never reached the bridge"
    );

    let length = soak_length();
    println!(
        "slowness soak: every answer {delay:?} late (60 % of liveness_timeout {:?}), churn, default policy, {length:?}",
        policy.liveness_timeout
    );
    let mut rng = Rng::new(24);
    let mut next_id = 100;
    let mut changes = 0u64;
    let started = Instant::now();
    while started.elapsed() < length {
        tokio::time::sleep(rng.between(Duration::from_millis(300), Duration::from_millis(1500)))
            .await;
        // Join, leave or move, keeping 3..=12 members.
        let pick = rng.below(3);
        if (pick == 0 && present.len() < 12) || present.len() <= 3 {
            next_id += 1;
            fake.upsert(instance(next_id));
            present.push(next_id);
        } else if pick == 1 {
            let at = rng.below(present.len() as u64) as usize;
            let gone = present.swap_remove(at);
            fake.remove("app", &format!("m{gone}"));
        } else {
            let at = rng.below(present.len() as u64) as usize;
            let id = present[at];
            let port = 4000 + rng.below(1000) as u16;
            fake.update("app", &format!("m{id}"), |i| i.port = port);
        }
        changes += 1;
        let switches = placement.state().changes.len();
        assert_eq!(
            switches,
            0,
            "switched away from a slow but live backend after {:?}",
            started.elapsed()
        );
    }
    // Compared by id and port: a backend may add an incarnation.
    let mut truth: Vec<(String, u16)> = fake
        .instances("app")
        .iter()
        .map(|i| (i.id.clone(), i.port))
        .collect();
    truth.sort();
    let converged = placement
        .wait_for(Harness::margin(Duration::from_secs(5)), |s| {
            s.snapshots.last().is_some_and(|l| {
                let held: Vec<(String, u16)> = l
                    .members()
                    .iter()
                    .map(|m| (m.id.as_str().to_owned(), m.port))
                    .collect();
                held == truth
            })
        })
        .await;
    let metrics = service.metrics().view();
    let consul = &metrics.providers[&ProviderId::new("consul-a").expect("id")];
    let probes = &consul.liveness_probe;
    println!(
        "slowness soak: {:?}, {changes} membership changes, {} switches, {} probes (mean {:.0} ms), {} probe failures, {} stream faults, converged {converged:?} after the last change",
        started.elapsed(),
        placement.state().changes.len(),
        probes.count,
        probes.sum_seconds * 1000.0 / probes.count.max(1) as f64,
        consul.liveness_failures,
        consul.stream_interruptions,
    );
    assert!(placement.state().changes.is_empty(), "no switch");
    assert!(converged.is_some(), "the bridge holds the backend's truth");
    assert!(probes.count > 0, "the probes ran");
    service.shutdown().await.expect("shutdown");
}
