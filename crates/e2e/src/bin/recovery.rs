//! Failover recovery harness: the time from killing the active backend to
//! every consumer (placement, partition and remoting bridges) holding the
//! standby's snapshot.
//!
//! The active backend is Consul through the fake agent (priority 20); the
//! standby is an in-memory provider (priority 10) watching the same cluster
//! with one member more, so its snapshot is recognisable by hash. Two
//! faults, each under the default policy and `FailoverPolicy::tight()`,
//! each warm (`standby: 1`, the standby's stream already open) and cold
//! (`standby: 0`, the standby's stream opened only when the primary dies):
//!
//! - refused: the fake closes its port and every open connection;
//! - hang: the fake accepts requests and never answers (the query it
//!   holds at that moment is answered at once as a heartbeat, so the kill
//!   is the backend's last sign of life).
//!
//! Targets: refused-connection failover < 1 s with the default policy;
//! hang failover ≤ the policy's timeout + 1 s. A fresh fake and service per
//! repetition, so no repetition inherits backoff or cooldown state.
//!
//! Usage: `recovery [--reps N] [--hang-reps N]` (defaults 10 and 3).
//! Loopback only; every fake and service is stopped at the end of its
//! repetition.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster_provisioning::{
    ClusterProvisioningService, FailoverPolicy, ProviderRegistry, ProvisioningHandle,
};
use provisioning_backend_memory::InMemoryProvider;
use provisioning_e2e::{Percentiles, ResultRow, SignalBridges, fmt_duration, load_average};
use provisioning_provider_api::{ClusterNode, ProviderId, ProviderSnapshot};
use provisioning_testkit::fake_consul::{FakeConsul, FakeFailure, FakeInstance};

const MEMBERS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Refused,
    Hang,
}

struct Args {
    reps: usize,
    hang_reps: usize,
}

fn args() -> Args {
    let mut out = Args {
        reps: 10,
        hang_reps: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut number = || {
            it.next()
                .and_then(|n| n.parse().ok())
                .expect("the option takes a number")
        };
        match a.as_str() {
            "--reps" => out.reps = number(),
            "--hang-reps" => out.hang_reps = number(),
            other => {
                panic!("unknown argument {other:?}; usage: recovery [--reps N] [--hang-reps N]")
            }
        }
    }
    out
}

fn node(i: usize) -> ClusterNode {
    ClusterNode::new(
        format!("m-{i:04}"),
        format!("10.0.{}.{}", i >> 8, i & 255),
        4000,
    )
}

struct Setup {
    fake: FakeConsul,
    service: ProvisioningHandle,
    bridges: Arc<SignalBridges>,
    consul_hash: u64,
    standby_hash: u64,
}

/// The blocking-query wait that fits the policy: the no-response timeout
/// must be at least 3 × the quiet period (`wait × 17/16`).
fn consul_wait(policy: &FailoverPolicy) -> &'static str {
    if policy.timeout >= Duration::from_secs(15) {
        "4s"
    } else {
        "400ms"
    }
}

async fn setup(policy: FailoverPolicy) -> Setup {
    let fake = FakeConsul::start().await.expect("fake consul");
    let nodes: Vec<ClusterNode> = (0..MEMBERS).map(node).collect();
    fake.set_instances(
        "app",
        nodes
            .iter()
            .map(|n| FakeInstance::new("app", n.id.as_str(), &n.host, n.port))
            .collect(),
    );
    let consul_hash = ProviderSnapshot::new(nodes.clone(), vec![])
        .expect("snapshot")
        .hash();
    let standby = InMemoryProvider::new(ProviderId::new("standby").expect("valid id"), 10);
    for n in nodes {
        standby.handle().add(n).expect("member");
    }
    standby
        .handle()
        .add(ClusterNode::new("s-extra", "10.0.9.9", 4000))
        .expect("member");
    let standby_hash = standby.handle().snapshot().hash();
    let registry = ProviderRegistry::new();
    registry
        .register(
            provisioning_registry::descriptor_from_json(&format!(
                r#"{{"id":"consul-a","kind":"consul","priority":20,"endpoints":["{}"],"watch":{{"service":"app","wait":"{}"}}}}"#,
                fake.url(),
                consul_wait(&policy)
            ))
            .expect("consul descriptor"),
        )
        .expect("register consul");
    let bridges = SignalBridges::new();
    let [p, q, r] = bridges.bridges();
    let service = ClusterProvisioningService::build(registry)
        .with_failover(policy)
        .with_provider(Arc::new(standby))
        .with_bridges(p, q, r)
        .start()
        .expect("service starts");
    Setup {
        fake,
        service,
        bridges,
        consul_hash,
        standby_hash,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// One repetition: fresh fake and service, the Consul view at every
/// bridge, then the fault; returns the time until every bridge holds the
/// standby's snapshot.
fn once(
    rt: &tokio::runtime::Runtime,
    policy: &FailoverPolicy,
    fault: Fault,
) -> Result<Duration, String> {
    let s = rt.block_on(async { setup(policy.clone()).await });
    let result = fail_over(&s, policy, fault);
    s.fake.set_failure(FakeFailure::None);
    rt.block_on(s.service.shutdown()).expect("shutdown");
    drop(s.fake);
    result
}

fn fail_over(s: &Setup, policy: &FailoverPolicy, fault: Fault) -> Result<Duration, String> {
    if s.bridges
        .wait_all(s.consul_hash, Duration::from_secs(10))
        .is_none()
    {
        return Err("the Consul view never reached the bridges".to_string());
    }
    // Let the warm standby (if any) deliver its first snapshot and the
    // Consul watch settle into a held query.
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    match fault {
        Fault::Refused => s
            .fake
            .refuse_connections(true)
            .map_err(|e| format!("close the port: {e}"))?,
        Fault::Hang => {
            // The fake hangs requests that arrive from now on, but would
            // still answer the blocking query it already holds when its
            // wait ends (up to `wait × 17/16` later), which a hung server
            // would not. Waking the held query now makes this instant the
            // backend's last sign of life, as in a real hang.
            s.fake.set_failure(FakeFailure::Hang);
            s.fake.touch("app");
        }
    }
    let limit = policy.timeout * 3 + Duration::from_secs(10);
    let at = s
        .bridges
        .wait_all(s.standby_hash, limit)
        .ok_or_else(|| format!("no failover within {limit:?}"))?;
    Ok(at.saturating_duration_since(t0))
}

fn main() {
    let args = args();
    let rt = runtime();
    println!(
        "recovery: Consul (fake) primary → in-memory standby, {MEMBERS} members; load average {} at start",
        load_average()
    );
    let mut rows = Vec::new();
    for fault in [Fault::Refused, Fault::Hang] {
        for (policy_name, base) in [
            ("default", FailoverPolicy::default()),
            ("tight", FailoverPolicy::tight()),
        ] {
            for standby in [1u32, 0] {
                let policy = base.clone().with_standby(standby);
                let reps = match fault {
                    Fault::Refused => args.reps,
                    Fault::Hang => args.hang_reps,
                };
                let started = Instant::now();
                let mut samples = Vec::new();
                let mut error = None;
                for _ in 0..reps {
                    match once(&rt, &policy, fault) {
                        Ok(d) => samples.push(d),
                        Err(e) => {
                            error = Some(e);
                            break;
                        }
                    }
                }
                let warmth = if standby == 0 {
                    "cold, standby 0"
                } else {
                    "warm, standby 1"
                };
                let fault_name = match fault {
                    Fault::Refused => "refused connections",
                    Fault::Hang => "hang",
                };
                let figure = format!(
                    "failover recovery, {fault_name}, {policy_name} policy, {warmth} (p50 / max)"
                );
                let (target, bound) = match (fault, policy_name) {
                    (Fault::Refused, "default") => {
                        ("< 1 s".to_string(), Some(Duration::from_secs(1)))
                    }
                    (Fault::Hang, _) => (
                        format!(
                            "≤ timeout + 1 s = {}",
                            fmt_duration(policy.timeout + Duration::from_secs(1))
                        ),
                        Some(policy.timeout + Duration::from_secs(1)),
                    ),
                    _ => ("—".to_string(), None),
                };
                let row = match (Percentiles::of(&samples), error) {
                    (Some(p), None) => {
                        let verdict = match bound {
                            Some(b) if p.max < b || (fault == Fault::Hang && p.max <= b) => {
                                "met".to_string()
                            }
                            Some(_) => format!("MISSED (max {})", fmt_duration(p.max)),
                            None => "—".to_string(),
                        };
                        ResultRow {
                            figure,
                            value: format!(
                                "{} / {} ({} reps)",
                                fmt_duration(p.p50),
                                fmt_duration(p.max),
                                p.count
                            ),
                            baseline: format!("timeout {}", fmt_duration(policy.timeout)),
                            ratio: format!(
                                "{:.2} × timeout",
                                p.p50.as_secs_f64() / policy.timeout.as_secs_f64()
                            ),
                            target,
                            verdict,
                        }
                    }
                    (_, e) => ResultRow {
                        figure,
                        value: "not measured".into(),
                        baseline: "—".into(),
                        ratio: "—".into(),
                        target,
                        verdict: format!("MISSED ({})", e.unwrap_or_else(|| "no samples".into())),
                    },
                };
                println!(
                    "recovery: {}: {} · {} (took {:.1} s, load {})",
                    row.figure,
                    row.value,
                    row.verdict,
                    started.elapsed().as_secs_f64(),
                    load_average()
                );
                rows.push(row);
            }
        }
    }
    for r in &rows {
        r.print();
    }
}
