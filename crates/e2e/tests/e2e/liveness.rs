//! Liveness probes (CONTRACTS §7 `liveness_*`) end to end, under the
//! DEFAULT policy: a network primary (priority 20) and an in-memory standby
//! (priority 10, one member more) behind one service.
//!
//! - Hang: the backend accepts connections and answers nothing. The probes
//!   make the primary `unreachable` within `max_errors × liveness_timeout +
//!   liveness_interval + 0.5 s` = 4.5 s (15 s before them: the no-response
//!   timeout). Consul and Kubernetes through their fakes, etcd real and
//!   `SIGSTOP`ped.
//! - Refused: the backend's port is closed; each backend's fast retries
//!   make it `unreachable` well under a second (ARCHITECTURE "Failover
//!   rules" 2).
//! - Kubernetes closing every new connection while the open watch stays
//!   served: only the probes (each on a new connection) notice it.
//!
//! Each test prints the time from the fault to every bridge holding the
//! standby's view. The hang assertions stop at 10 s, about twice the
//! target but clearly below the 15 s no-response timeout, so they fail
//! when the probes do not detect the hang.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster_provisioning::{
    ClusterProvisioningService, FailoverPolicy, ProviderRegistry, ProvisioningHandle,
};
use provisioning_backend_etcd::EtcdProvider;
use provisioning_backend_memory::InMemoryProvider;
use provisioning_e2e::Recorder;
use provisioning_provider_api::{ClusterNode, MemberSpec, ProviderDescriptor, ProviderId};
use provisioning_registry::SecretResolver;
use provisioning_testkit::etcd_cluster::EtcdCluster;
use provisioning_testkit::fake_consul::{FakeConsul, FakeFailure, FakeInstance};
use provisioning_testkit::fake_kube::{FakeKube, KubeDriver, KubeDriverMode};
use provisioning_testkit::{ConformanceDriver, MembershipChange, member};

use super::harness::Harness;

/// What the hang tests assert (see the module docs).
const HANG_ASSERTED: Duration = Duration::from_secs(10);

/// The issue's target for a hang under the default policy.
fn hang_target(policy: &FailoverPolicy) -> Duration {
    policy.liveness_timeout * policy.max_errors
        + policy.liveness_interval
        + Duration::from_millis(500)
}

/// The members every primary serves; the standby adds `s-extra`.
fn members() -> Vec<ClusterNode> {
    (1..=3u16)
        .map(|i| ClusterNode::new(format!("m{i}"), format!("10.0.0.{i}"), 4000))
        .collect()
}

struct Setup {
    service: ProvisioningHandle,
    placement: Arc<Recorder>,
    standby_hash: u64,
}

impl Setup {
    /// A service over `primary` (a built provider or a descriptor) and the
    /// standby; returns once the primary's view is at the bridge.
    async fn start(
        policy: FailoverPolicy,
        registry: ProviderRegistry,
        primary: Option<Arc<dyn cluster_provisioning::api::ClusterProvider>>,
    ) -> Self {
        let standby = InMemoryProvider::new(ProviderId::new("standby").expect("id"), 10);
        for n in members() {
            standby.handle().add(n).expect("member");
        }
        standby
            .handle()
            .add(ClusterNode::new("s-extra", "10.0.9.9", 4000))
            .expect("member");
        let standby_hash = standby.handle().snapshot().hash();
        let placement = Recorder::new();
        let mut builder = ClusterProvisioningService::build(registry)
            .with_failover(policy)
            .with_provider(Arc::new(standby))
            .with_placement("placement", placement.clone());
        if let Some(primary) = primary {
            builder = builder.with_provider(primary);
        }
        let service = builder.start().expect("service starts");
        let s = Self {
            service,
            placement,
            standby_hash,
        };
        // By provider, not by hash: a backend may give its members
        // incarnations.
        let first = s
            .placement
            .wait_for(Harness::margin(Duration::from_secs(3)), |st| {
                st.snapshots
                    .last()
                    .is_some_and(|l| l.provider_id().as_str() != "standby")
            })
            .await;
        assert!(
            first.is_some(),
            "the primary's view never reached the bridge"
        );
        // The watch settles into a held request before the fault.
        tokio::time::sleep(Duration::from_millis(300)).await;
        s
    }

    async fn wait_hash(&self, hash: u64, limit: Duration) -> Option<Duration> {
        self.placement
            .wait_for(limit, |s| {
                s.snapshots.last().is_some_and(|l| l.hash() == hash)
            })
            .await
    }

    /// Time from `t0` until the bridge holds the standby's view.
    async fn failover_since(&self, t0: Instant, limit: Duration) -> Option<Duration> {
        self.wait_hash(self.standby_hash, limit).await?;
        Some(t0.elapsed())
    }
}

fn consul_registry(fake: &FakeConsul) -> ProviderRegistry {
    let registry = cluster_provisioning::builtin_registry();
    registry
        .register(
            provisioning_registry::descriptor_from_json(&format!(
                r#"{{"id":"consul-a","kind":"consul","priority":20,"endpoints":["{}"],"watch":{{"service":"app","wait":"4s"}}}}"#,
                fake.url()
            ))
            .expect("consul descriptor"),
        )
        .expect("register consul");
    registry
}

async fn consul_fake() -> FakeConsul {
    let fake = FakeConsul::start().await.expect("fake consul");
    for n in members() {
        fake.upsert(FakeInstance::new("app", n.id.as_str(), &n.host, n.port));
    }
    fake
}

/// The fake hangs every request from now on; the blocking query it holds
/// is answered at once, so this instant is the backend's last sign of life
/// (a real hung server would not answer it when its wait ends either).
fn consul_hang(fake: &FakeConsul) -> Instant {
    let t0 = Instant::now();
    fake.set_failure(FakeFailure::Hang);
    fake.touch("app");
    t0
}

async fn kube_fake() -> (Arc<FakeKube>, ProviderRegistry) {
    let fake = Arc::new(FakeKube::start().await.expect("fake API server"));
    let driver = KubeDriver::new(fake.clone(), KubeDriverMode::Pods, "apps");
    let specs = members()
        .into_iter()
        .map(|n| member(n.id.as_str(), &n.host, n.port))
        .collect();
    driver
        .apply(MembershipChange::Reset(specs))
        .await
        .expect("pods");
    let mut descriptor = driver
        .descriptor("k8s", serde_json::json!({}))
        .expect("descriptor");
    descriptor.priority = 20;
    let registry = cluster_provisioning::builtin_registry();
    registry.register(descriptor).expect("register k8s");
    (fake, registry)
}

const PREFIX: &str = "/cluster/app/";

async fn etcd_primary() -> (EtcdCluster, Arc<EtcdProvider>) {
    let cluster = EtcdCluster::start(1).await.expect("etcd");
    let mut kv = etcd_client::Client::connect(cluster.endpoints(), None)
        .await
        .expect("etcd client");
    for n in members() {
        let spec = MemberSpec::from(n);
        kv.put(
            format!("{PREFIX}{}", spec.id),
            serde_json::to_vec(&spec).expect("json"),
            None,
        )
        .await
        .expect("put");
    }
    let descriptor: ProviderDescriptor = serde_json::from_value(serde_json::json!({
        "id": "etcd-a", "kind": "etcd", "priority": 20,
        "endpoints": cluster.endpoints(), "watch": {"prefix": PREFIX},
    }))
    .expect("descriptor");
    let provider = EtcdProvider::from_descriptor(descriptor, &SecretResolver::new("."))
        .expect("etcd provider");
    (cluster, Arc::new(provider))
}

fn check_hang(backend: &str, policy: &FailoverPolicy, took: Option<Duration>) {
    let target = hang_target(policy);
    println!(
        "{backend} hang -> consumers on the standby after {took:?} (target ≤ {target:?}, timeout {:?})",
        policy.timeout
    );
    let took = took.unwrap_or_else(|| panic!("{backend}: a hang was never detected"));
    assert!(
        took < HANG_ASSERTED,
        "{backend}: hang detected after {took:?}, not by the liveness probes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consul_hang_is_left_within_the_liveness_bound() {
    let policy = FailoverPolicy::default();
    let fake = consul_fake().await;
    let s = Setup::start(policy.clone(), consul_registry(&fake), None).await;
    let t0 = consul_hang(&fake);
    let took = s.failover_since(t0, Harness::margin(policy.timeout)).await;
    check_hang("consul", &policy, took);
    let metrics = s.service.metrics().view();
    let consul = &metrics.providers[&ProviderId::new("consul-a").expect("id")];
    println!(
        "consul: {} probes, {} failed",
        consul.liveness_probe.count, consul.liveness_failures
    );
    assert!(consul.liveness_failures >= u64::from(policy.max_errors));
    fake.set_failure(FakeFailure::None);
    s.service.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consul_hang_with_probing_off_waits_for_the_no_response_timeout() {
    let policy = FailoverPolicy::from_json(r#"{"liveness_interval":"0s"}"#).expect("policy");
    let fake = consul_fake().await;
    let s = Setup::start(policy.clone(), consul_registry(&fake), None).await;
    let t0 = consul_hang(&fake);
    let took = s.failover_since(t0, Harness::margin(policy.timeout)).await;
    println!("consul hang, probing off -> consumers on the standby after {took:?}");
    let took = took.expect("the no-response timeout still detects a hang");
    // Before the probes: the no-response timeout, or the HTTP timeouts of
    // the watch's retries counting up to max_errors (each wait × 17/16
    // plus slack), far above what the probes take.
    assert!(
        took >= hang_target(&FailoverPolicy::default()) * 2,
        "probing off, yet the hang was detected after {took:?}"
    );
    let metrics = s.service.metrics().view();
    let consul = &metrics.providers[&ProviderId::new("consul-a").expect("id")];
    assert_eq!(consul.liveness_probe.count, 0, "no probe ran");
    fake.set_failure(FakeFailure::None);
    s.service.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_hang_is_left_within_the_liveness_bound() {
    let policy = FailoverPolicy::default();
    let (fake, registry) = kube_fake().await;
    let s = Setup::start(policy.clone(), registry, None).await;
    let t0 = Instant::now();
    fake.set_stall(true);
    let took = s.failover_since(t0, Harness::margin(policy.timeout)).await;
    check_hang("kubernetes", &policy, took);
    fake.heal();
    s.service.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_sigstop_is_left_within_the_liveness_bound() {
    let policy = FailoverPolicy::default();
    let (mut cluster, etcd) = etcd_primary().await;
    let s = Setup::start(
        policy.clone(),
        cluster_provisioning::builtin_registry(),
        Some(etcd),
    )
    .await;
    let t0 = Instant::now();
    cluster.pause(0).expect("SIGSTOP etcd");
    let took = s.failover_since(t0, Harness::margin(policy.timeout)).await;
    let _ = cluster.resume(0);
    check_hang("etcd (SIGSTOP)", &policy, took);
    s.service.shutdown().await.expect("shutdown");
}

fn check_refused(backend: &str, took: Option<Duration>) {
    println!("{backend} refused -> consumers on the standby after {took:?} (target < 1 s)");
    let took = took.unwrap_or_else(|| panic!("{backend}: no failover after refused connections"));
    // Rule 2 promises well under a second; the margin covers a loaded
    // machine but not the backoff of a verdict that waits for it (2 s+).
    assert!(
        took < Duration::from_millis(1500),
        "{backend}: refused connections took {took:?} to be left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consul_refused_is_left_within_a_second() {
    let policy = FailoverPolicy::default();
    let fake = consul_fake().await;
    let s = Setup::start(policy.clone(), consul_registry(&fake), None).await;
    let t0 = Instant::now();
    fake.refuse_connections(true).expect("close the port");
    let took = s
        .failover_since(t0, Harness::margin(Duration::from_secs(1)))
        .await;
    check_refused("consul", took);
    s.service.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_refused_is_left_within_a_second() {
    let policy = FailoverPolicy::default();
    let (fake, registry) = kube_fake().await;
    let s = Setup::start(policy.clone(), registry, None).await;
    let t0 = Instant::now();
    fake.down();
    let took = s
        .failover_since(t0, Harness::margin(Duration::from_secs(1)))
        .await;
    check_refused("kubernetes", took);
    s.service.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_refused_is_left_within_a_second() {
    let policy = FailoverPolicy::default();
    let (mut cluster, etcd) = etcd_primary().await;
    let s = Setup::start(
        policy.clone(),
        cluster_provisioning::builtin_registry(),
        Some(etcd),
    )
    .await;
    let t0 = Instant::now();
    cluster.kill(0).expect("kill etcd");
    let took = s
        .failover_since(t0, Harness::margin(Duration::from_secs(1)))
        .await;
    check_refused("etcd", took);
    s.service.shutdown().await.expect("shutdown");
}

/// A server that closes every new connection at once while the open watch
/// connection stays served (the fake's `set_refuse`): the watch alone
/// never notices, the probe's new connection fails at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_refusing_new_connections_is_left_within_a_second() {
    let policy = FailoverPolicy::default();
    let (fake, registry) = kube_fake().await;
    let s = Setup::start(policy.clone(), registry, None).await;
    let t0 = Instant::now();
    fake.set_refuse(true);
    let took = s
        .failover_since(t0, Harness::margin(Duration::from_secs(1)))
        .await;
    check_refused("kubernetes (new connections closed)", took);
    fake.heal();
    s.service.shutdown().await.expect("shutdown");
}
