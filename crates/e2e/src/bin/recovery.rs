//! Failover recovery harness: the time from killing the active backend to
//! every consumer (placement, partition and remoting bridges) holding the
//! standby's snapshot.
//!
//! The active backend (priority 20) is Consul through the fake agent, the
//! Kubernetes fake API server, or a real etcd on loopback; the standby is
//! an in-memory provider (priority 10) watching the same cluster with one
//! member more, so its snapshot is recognisable by hash. Two faults:
//!
//! - refused: Consul's fake closes its port and every open connection, the
//!   Kubernetes fake goes down (`down()`), etcd is SIGKILLed;
//! - hang: the backend accepts requests and never answers — Consul's fake
//!   hangs (the query it holds at that moment is answered at once as a
//!   heartbeat, so the kill is the backend's last sign of life), the
//!   Kubernetes fake stalls, etcd is `SIGSTOP`ped.
//!
//! Consul runs each fault under the default policy and
//! `FailoverPolicy::tight()`, each warm (`standby: 1`, the standby's stream
//! already open) and cold (`standby: 0`, the standby's stream opened only
//! when the primary dies); Kubernetes and etcd under the default policy,
//! warm.
//!
//! Targets: refused-connection failover < 1 s with the default policy;
//! hang failover within the liveness probes' bound (`max_errors ×
//! liveness_timeout + liveness_interval + 0.5 s`, 4.5 s by default), and
//! never beyond the policy's timeout + 1 s. A fresh backend and service
//! per repetition, so no repetition inherits backoff or cooldown state.
//!
//! Usage: `recovery [--reps N] [--hang-reps N]` (defaults 10 and 3).
//! Loopback only; every fake and service is stopped at the end of its
//! repetition.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster_provisioning::{
    ClusterProvisioningService, FailoverPolicy, ProviderRegistry, ProvisioningHandle,
};
use provisioning_backend_etcd::EtcdProvider;
use provisioning_backend_memory::InMemoryProvider;
use provisioning_e2e::{Percentiles, ResultRow, SignalBridges, fmt_duration, load_average};
use provisioning_provider_api::{ClusterNode, MemberSpec, ProviderDescriptor, ProviderId};
use provisioning_registry::SecretResolver;
use provisioning_testkit::etcd_cluster::EtcdCluster;
use provisioning_testkit::fake_consul::{FakeConsul, FakeFailure, FakeInstance};
use provisioning_testkit::fake_kube::{FakeKube, KubeDriver, KubeDriverMode};
use provisioning_testkit::{ConformanceDriver, MembershipChange, member};

const MEMBERS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Refused,
    Hang,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Consul,
    Kube,
    Etcd,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Self::Consul => "Consul (fake)",
            Self::Kube => "Kubernetes (fake)",
            Self::Etcd => "etcd (real)",
        }
    }
}

/// The primary's backend, kept alive (and faulted) by the repetition.
enum Primary {
    Consul(FakeConsul),
    Kube(Arc<FakeKube>),
    Etcd(EtcdCluster),
}

const ETCD_PREFIX: &str = "/cluster/app/";

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
    primary: Primary,
    service: ProvisioningHandle,
    bridges: Arc<SignalBridges>,
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

/// The primary's backend with `nodes`, registered in `registry` or built.
async fn primary(
    backend: Backend,
    nodes: &[ClusterNode],
    policy: &FailoverPolicy,
    registry: &ProviderRegistry,
) -> (Primary, Option<Arc<EtcdProvider>>) {
    match backend {
        Backend::Consul => {
            let fake = FakeConsul::start().await.expect("fake consul");
            fake.set_instances(
                "app",
                nodes
                    .iter()
                    .map(|n| FakeInstance::new("app", n.id.as_str(), &n.host, n.port))
                    .collect(),
            );
            registry
                .register(
                    provisioning_registry::descriptor_from_json(&format!(
                        r#"{{"id":"primary","kind":"consul","priority":20,"endpoints":["{}"],"watch":{{"service":"app","wait":"{}"}}}}"#,
                        fake.url(),
                        consul_wait(policy)
                    ))
                    .expect("consul descriptor"),
                )
                .expect("register consul");
            (Primary::Consul(fake), None)
        }
        Backend::Kube => {
            let fake = Arc::new(FakeKube::start().await.expect("fake API server"));
            let driver = KubeDriver::new(fake.clone(), KubeDriverMode::Pods, "apps");
            let specs = nodes
                .iter()
                .map(|n| member(n.id.as_str(), &n.host, n.port))
                .collect();
            driver
                .apply(MembershipChange::Reset(specs))
                .await
                .expect("pods");
            let mut descriptor = driver
                .descriptor("primary", serde_json::json!({}))
                .expect("k8s descriptor");
            descriptor.priority = 20;
            registry.register(descriptor).expect("register k8s");
            (Primary::Kube(fake), None)
        }
        Backend::Etcd => {
            let cluster = EtcdCluster::start(1).await.expect("etcd");
            let mut kv = etcd_client::Client::connect(cluster.endpoints(), None)
                .await
                .expect("etcd client");
            for n in nodes {
                let spec = MemberSpec::from(n.clone());
                kv.put(
                    format!("{ETCD_PREFIX}{}", spec.id),
                    serde_json::to_vec(&spec).expect("json"),
                    None,
                )
                .await
                .expect("put");
            }
            let descriptor: ProviderDescriptor = serde_json::from_value(serde_json::json!({
                "id": "primary", "kind": "etcd", "priority": 20,
                "endpoints": cluster.endpoints(), "watch": {"prefix": ETCD_PREFIX},
            }))
            .expect("etcd descriptor");
            let provider = EtcdProvider::from_descriptor(descriptor, &SecretResolver::new("."))
                .expect("etcd provider");
            (Primary::Etcd(cluster), Some(Arc::new(provider)))
        }
    }
}

async fn setup(backend: Backend, policy: FailoverPolicy) -> Setup {
    let nodes: Vec<ClusterNode> = (0..MEMBERS).map(node).collect();
    let standby = InMemoryProvider::new(ProviderId::new("standby").expect("valid id"), 10);
    for n in &nodes {
        standby.handle().add(n.clone()).expect("member");
    }
    standby
        .handle()
        .add(ClusterNode::new("s-extra", "10.0.9.9", 4000))
        .expect("member");
    let standby_hash = standby.handle().snapshot().hash();
    let registry = cluster_provisioning::builtin_registry();
    let (primary, built) = primary(backend, &nodes, &policy, &registry).await;
    let bridges = SignalBridges::new();
    let [p, q, r] = bridges.bridges();
    let mut builder = ClusterProvisioningService::build(registry)
        .with_failover(policy)
        .with_provider(Arc::new(standby))
        .with_bridges(p, q, r);
    if let Some(built) = built {
        builder = builder.with_provider(built);
    }
    let service = builder.start().expect("service starts");
    Setup {
        primary,
        service,
        bridges,
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
    backend: Backend,
    policy: &FailoverPolicy,
    fault: Fault,
) -> Result<Duration, String> {
    let mut s = rt.block_on(async { setup(backend, policy.clone()).await });
    let result = fail_over(&mut s, policy, fault);
    match &mut s.primary {
        Primary::Consul(fake) => fake.set_failure(FakeFailure::None),
        Primary::Kube(fake) => fake.heal(),
        Primary::Etcd(cluster) => {
            let _ = cluster.resume(0);
        }
    }
    rt.block_on(s.service.shutdown()).expect("shutdown");
    drop(s.primary);
    result
}

/// The primary's view as published (by provider, not by a precomputed
/// hash: a backend may give its members incarnations).
fn primary_hash(s: &Setup, limit: Duration) -> Option<u64> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Some(t) = s.service.topology()
            && t.provider_id().as_str() == "primary"
        {
            return Some(t.hash());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

fn fail_over(s: &mut Setup, policy: &FailoverPolicy, fault: Fault) -> Result<Duration, String> {
    let ready = primary_hash(s, Duration::from_secs(10))
        .and_then(|hash| s.bridges.wait_all(hash, Duration::from_secs(10)));
    if ready.is_none() {
        return Err("the primary's view never reached the bridges".to_string());
    }
    // Let the warm standby (if any) deliver its first snapshot and the
    // Consul watch settle into a held query.
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    match (&mut s.primary, fault) {
        (Primary::Consul(fake), Fault::Refused) => fake
            .refuse_connections(true)
            .map_err(|e| format!("close the port: {e}"))?,
        (Primary::Consul(fake), Fault::Hang) => {
            // The fake hangs requests that arrive from now on, but would
            // still answer the blocking query it already holds when its
            // wait ends (up to `wait × 17/16` later), which a hung server
            // would not. Waking the held query now makes this instant the
            // backend's last sign of life, as in a real hang.
            fake.set_failure(FakeFailure::Hang);
            fake.touch("app");
        }
        (Primary::Kube(fake), Fault::Refused) => fake.down(),
        (Primary::Kube(fake), Fault::Hang) => fake.set_stall(true),
        (Primary::Etcd(cluster), Fault::Refused) => {
            cluster.kill(0).map_err(|e| format!("kill etcd: {e}"))?;
        }
        (Primary::Etcd(cluster), Fault::Hang) => {
            cluster.pause(0).map_err(|e| format!("SIGSTOP etcd: {e}"))?;
        }
    }
    let limit = policy.timeout * 3 + Duration::from_secs(10);
    let at = s
        .bridges
        .wait_all(s.standby_hash, limit)
        .ok_or_else(|| format!("no failover within {limit:?}"))?;
    Ok(at.saturating_duration_since(t0))
}

/// The hang target: the liveness probes' bound when they run, never
/// beyond the no-response timeout + 1 s.
fn hang_bound(policy: &FailoverPolicy) -> Duration {
    let silence = policy.timeout + Duration::from_secs(1);
    if policy.liveness_interval.is_zero() {
        return silence;
    }
    let probes = policy.liveness_timeout * policy.max_errors
        + policy.liveness_interval
        + Duration::from_millis(500);
    probes.min(silence)
}

fn main() {
    let args = args();
    let rt = runtime();
    println!(
        "recovery: Consul (fake), Kubernetes (fake) and etcd (real) primaries → in-memory standby, {MEMBERS} members; load average {} at start",
        load_average()
    );
    let mut rows = Vec::new();
    let mut cells = Vec::new();
    for fault in [Fault::Refused, Fault::Hang] {
        for (policy_name, base) in [
            ("default", FailoverPolicy::default()),
            ("tight", FailoverPolicy::tight()),
        ] {
            for standby in [1u32, 0] {
                cells.push((Backend::Consul, fault, policy_name, base.clone(), standby));
            }
        }
        for backend in [Backend::Kube, Backend::Etcd] {
            cells.push((backend, fault, "default", FailoverPolicy::default(), 1));
        }
    }
    for (backend, fault, policy_name, base, standby) in cells {
        let policy = base.clone().with_standby(standby);
        let reps = match fault {
            Fault::Refused => args.reps,
            Fault::Hang => args.hang_reps,
        };
        let started = Instant::now();
        let mut samples = Vec::new();
        let mut error = None;
        for _ in 0..reps {
            match once(&rt, backend, &policy, fault) {
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
        let figure = match backend {
            Backend::Consul => format!(
                "failover recovery, {fault_name}, {policy_name} policy, {warmth} (p50 / max)"
            ),
            other => format!(
                "failover recovery, {}, {fault_name}, {policy_name} policy, {warmth} (p50 / max)",
                other.name()
            ),
        };
        let (target, bound) = match (fault, policy_name) {
            (Fault::Refused, "default") => ("< 1 s".to_string(), Some(Duration::from_secs(1))),
            (Fault::Hang, _) => (
                format!("≤ {}", fmt_duration(hang_bound(&policy))),
                Some(hang_bound(&policy)),
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
    for r in &rows {
        r.print();
    }
}
