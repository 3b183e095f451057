//! [`ChaosTarget`]: one backend set up as a primary provider, with its
//! fault switches, its ground truth and a membership change, behind one
//! interface for the fault matrix.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cluster_provisioning::ProviderRegistry;
use provisioning_backend_memory::{InMemoryHandle, InMemoryProvider};
use provisioning_provider_api::{
    ClusterNode, ClusterProvider, FaultKind, Incarnation, MemberSpec, ProviderDescriptor,
    ProviderFault, ProviderId, ProviderSnapshot, ProviderTermination,
};
use provisioning_testkit::etcd_cluster::EtcdCluster;
use provisioning_testkit::fake_consul::{FakeConsul, FakeFailure, FakeInstance};
use provisioning_testkit::fake_kube::{FakeKube, KubeDriver, KubeDriverMode, ObjectKind};
use provisioning_testkit::{ConformanceDriver, MembershipChange};

use crate::chaos_matrix::{Backend, Fault};
use crate::chaos_proxy::{ChaosProxy, ProxyMode};

/// The id every primary gets.
pub const PRIMARY: &str = "primary";
/// The Consul service and the etcd prefix the primaries watch.
const SERVICE: &str = "app";
const PREFIX: &str = "/cluster/app/";
/// A slow drip slow enough that no answer completes within the policy's
/// timeout.
const DRIP: Duration = Duration::from_millis(250);

/// Why a step on a target failed (setup, a fake's switch, etcd).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetError(pub String);

impl std::fmt::Display for TargetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TargetError {}

fn err(what: &str, e: impl std::fmt::Display) -> TargetError {
    TargetError(format!("{what}: {e}"))
}

/// The first members every primary holds.
pub fn initial_members() -> Vec<MemberSpec> {
    (1..=3u16)
        .map(|i| {
            MemberSpec::from(ClusterNode::new(
                format!("m{i}"),
                format!("10.0.0.{i}"),
                4000,
            ))
        })
        .collect()
}

/// The member a cell adds while the fault holds.
fn added_member(n: u16) -> MemberSpec {
    MemberSpec::from(ClusterNode::new(
        format!("x{n}"),
        format!("10.0.1.{}", n % 250 + 1),
        4000,
    ))
}

/// How the primary enters the service.
pub enum PrimarySource {
    /// An already built provider.
    Provider(Arc<dyn ClusterProvider>),
    /// A descriptor the service builds through its factory.
    Descriptor(Box<ProviderDescriptor>),
}

impl PrimarySource {
    /// Adds the primary to a registry or returns it as a provider.
    pub fn register(
        self,
        registry: &ProviderRegistry,
    ) -> Result<Option<Arc<dyn ClusterProvider>>, TargetError> {
        match self {
            Self::Provider(p) => Ok(Some(p)),
            Self::Descriptor(d) => {
                registry.register(*d).map_err(|e| err("register", e))?;
                Ok(None)
            }
        }
    }
}

enum Kind {
    Memory(InMemoryHandle),
    Consul {
        fake: FakeConsul,
        proxy: ChaosProxy,
    },
    Kube {
        driver: KubeDriver,
        fake: Arc<FakeKube>,
        proxy: ChaosProxy,
    },
    Etcd {
        cluster: Box<EtcdCluster>,
        proxy: Option<ChaosProxy>,
        client: Box<etcd_client::Client>,
    },
}

/// One backend as a primary under test. Dropping it stops the fake or
/// kills etcd.
pub struct ChaosTarget {
    kind: Kind,
    added: u16,
}

impl std::fmt::Debug for ChaosTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match &self.kind {
            Kind::Memory(_) => "memory",
            Kind::Consul { .. } => "consul",
            Kind::Kube { .. } => "k8s",
            Kind::Etcd { .. } => "etcd",
        };
        f.debug_struct("ChaosTarget")
            .field("backend", &name)
            .finish_non_exhaustive()
    }
}

fn primary_id() -> ProviderId {
    ProviderId::new(PRIMARY).unwrap_or_else(|_| unreachable!("a valid literal id"))
}

fn socket(url: &str) -> Result<SocketAddr, TargetError> {
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .map_err(|e| err(&format!("address of {url}"), e))
}

impl ChaosTarget {
    /// Starts `backend` with [`initial_members`], ready for `fault` (etcd
    /// runs three members for quorum loss, one otherwise, behind a proxy).
    pub async fn start(
        backend: Backend,
        fault: Fault,
    ) -> Result<(Self, PrimarySource), TargetError> {
        let members = initial_members();
        match backend {
            Backend::Memory => {
                let provider = InMemoryProvider::new(primary_id(), 20);
                let handle = provider.handle();
                handle.set_members(members).map_err(|e| err("members", e))?;
                let target = Self {
                    kind: Kind::Memory(handle),
                    added: 0,
                };
                Ok((target, PrimarySource::Provider(Arc::new(provider))))
            }
            Backend::Consul => {
                let fake = FakeConsul::start()
                    .await
                    .map_err(|e| err("fake consul", e))?;
                fake.set_instances(SERVICE, members.iter().map(consul_instance).collect());
                let proxy = ChaosProxy::start(fake.addr())
                    .await
                    .map_err(|e| err("proxy", e))?;
                // wait 400 ms: the tight policy's timeout (1.5 s) must be
                // at least 3 × wait × 17/16. Under the default timeout the
                // default wait (4 s): then a silent agent is caught by the
                // liveness probes, not by the blocking queries' own
                // deadlines.
                let wait = if fault == Fault::AcceptsThenSilent {
                    "4s"
                } else {
                    "400ms"
                };
                let descriptor = provisioning_registry::descriptor_from_json(&format!(
                    r#"{{"id":"{PRIMARY}","kind":"consul","priority":20,"endpoints":["{}"],"watch":{{"service":"{SERVICE}","wait":"{wait}"}}}}"#,
                    proxy.url()
                ))
                .map_err(|e| err("consul descriptor", e))?;
                let target = Self {
                    kind: Kind::Consul { fake, proxy },
                    added: 0,
                };
                Ok((target, PrimarySource::Descriptor(Box::new(descriptor))))
            }
            Backend::Kube => {
                let fake = Arc::new(FakeKube::start().await.map_err(|e| err("fake kube", e))?);
                let driver = KubeDriver::new(fake.clone(), KubeDriverMode::Pods, "apps");
                driver
                    .apply(MembershipChange::Reset(members))
                    .await
                    .map_err(|e| err("pods", e))?;
                let proxy = ChaosProxy::start(fake.addr())
                    .await
                    .map_err(|e| err("proxy", e))?;
                let mut descriptor = driver
                    .descriptor(PRIMARY, serde_json::json!({}))
                    .map_err(|e| err("k8s descriptor", e))?;
                descriptor.priority = 20;
                descriptor.endpoints = vec![proxy.url()];
                let target = Self {
                    kind: Kind::Kube {
                        driver,
                        fake,
                        proxy,
                    },
                    added: 0,
                };
                Ok((target, PrimarySource::Descriptor(Box::new(descriptor))))
            }
            Backend::Etcd => {
                let size = if fault == Fault::LeaderLoss { 3 } else { 1 };
                let cluster = EtcdCluster::start(size).await.map_err(|e| err("etcd", e))?;
                let mut client = etcd_client::Client::connect(cluster.endpoints(), None)
                    .await
                    .map_err(|e| err("etcd client", e))?;
                for m in &members {
                    put(&mut client, m).await?;
                }
                let (proxy, endpoints) = if size == 1 {
                    let proxy = ChaosProxy::start(socket(&cluster.endpoint(0))?)
                        .await
                        .map_err(|e| err("proxy", e))?;
                    let url = proxy.url();
                    (Some(proxy), vec![url])
                } else {
                    (None, cluster.endpoints())
                };
                let descriptor: ProviderDescriptor = serde_json::from_value(serde_json::json!({
                    "id": PRIMARY, "kind": "etcd", "priority": 20,
                    "endpoints": endpoints, "watch": {"prefix": PREFIX},
                }))
                .map_err(|e| err("etcd descriptor", e))?;
                let target = Self {
                    kind: Kind::Etcd {
                        cluster: Box::new(cluster),
                        proxy,
                        client: Box::new(client),
                    },
                    added: 0,
                };
                Ok((target, PrimarySource::Descriptor(Box::new(descriptor))))
            }
        }
    }

    /// The backend's own view now, read from the fake's state or from etcd
    /// directly — never through the provider. Members carry the incarnation
    /// each backend gives them (CONTRACTS §1): Consul's `CreateIndex`, the
    /// Pod uid, the key's `create_revision` unless the value names one.
    pub async fn truth(&mut self) -> Result<ProviderSnapshot, TargetError> {
        let incarnation = |text: String| {
            Incarnation::new(text)
                .map(Some)
                .map_err(|e| err("incarnation", e))
        };
        let specs: Vec<MemberSpec> = match &mut self.kind {
            Kind::Memory(h) => return Ok(h.snapshot()),
            Kind::Consul { fake, .. } => {
                let mut specs = Vec::new();
                for i in fake.instances(SERVICE) {
                    let mut spec = MemberSpec::from(ClusterNode::new(i.id, i.address, i.port));
                    spec.incarnation = incarnation(i.create_index.to_string())?;
                    specs.push(spec);
                }
                specs
            }
            Kind::Kube { fake, driver, .. } => {
                let mut specs = Vec::new();
                for name in fake.names(driver.kind(), "apps") {
                    let Some(pod) = fake.get(driver.kind(), "apps", &name) else {
                        continue;
                    };
                    let ip = pod
                        .pointer("/status/podIP")
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    let mut spec = MemberSpec::from(ClusterNode::new(name, ip, 4000));
                    if let Some(uid) = pod
                        .pointer("/metadata/uid")
                        .and_then(serde_json::Value::as_str)
                    {
                        spec.incarnation = incarnation(uid.to_owned())?;
                    }
                    specs.push(spec);
                }
                specs
            }
            Kind::Etcd { client, .. } => {
                let options = etcd_client::GetOptions::new().with_prefix();
                let answer = client
                    .get(PREFIX, Some(options))
                    .await
                    .map_err(|e| err("etcd get", e))?;
                let mut specs = Vec::new();
                for kv in answer.kvs() {
                    let mut spec: MemberSpec =
                        serde_json::from_slice(kv.value()).map_err(|e| err("etcd value", e))?;
                    if spec.incarnation.is_none() {
                        spec.incarnation = incarnation(kv.create_revision().to_string())?;
                    }
                    specs.push(spec);
                }
                specs
            }
        };
        ProviderSnapshot::from_specs(specs).map_err(|e| err("truth", e))
    }

    /// Adds one member at the backend (not through the provider). Fails
    /// while the backend cannot take writes (etcd down).
    pub async fn add_member(&mut self) -> Result<(), TargetError> {
        self.added += 1;
        let spec = added_member(self.added);
        match &mut self.kind {
            Kind::Memory(h) => h
                .upsert(spec.into_node().0)
                .map_err(|e| err("memory add", e)),
            Kind::Consul { fake, .. } => {
                fake.upsert(consul_instance(&spec));
                Ok(())
            }
            Kind::Kube { driver, .. } => driver
                .apply(MembershipChange::Upsert(spec))
                .await
                .map_err(|e| err("k8s add", e)),
            Kind::Etcd { client, .. } => {
                tokio::time::timeout(Duration::from_secs(3), put(client, &spec))
                    .await
                    .map_err(|e| err("etcd put", e))?
            }
        }
    }

    /// Whether the backend takes writes while `fault` holds.
    pub fn writable_during(&self, fault: Fault) -> bool {
        !matches!(
            (&self.kind, fault),
            (Kind::Etcd { .. }, Fault::Refused | Fault::LeaderLoss)
        )
    }

    /// Injects `fault` (the first half of a flap for [`Fault::Flapping`]).
    pub async fn inject(&mut self, fault: Fault) -> Result<(), TargetError> {
        let refused =
            || ProviderFault::retryable(FaultKind::BackendUnavailable, "connection refused");
        match (&mut self.kind, fault) {
            (Kind::Memory(h), Fault::Refused | Fault::Flapping) => h.fail(refused()),
            (Kind::Memory(h), Fault::ResetMidResponse) => {
                h.terminate(ProviderTermination::Errored {
                    reason: "connection reset by peer".into(),
                    permanent: false,
                });
            }
            (Kind::Memory(h), Fault::Hang) => h.hang(),
            (Kind::Memory(h), Fault::TransientReset) => {
                h.inject_fault(ProviderFault::retryable(
                    FaultKind::BackendUnavailable,
                    "connection reset by peer",
                ));
            }
            (Kind::Memory(h), Fault::ServerError) => h.fail(ProviderFault::retryable(
                FaultKind::BackendUnavailable,
                "HTTP 500",
            )),
            (Kind::Memory(h), Fault::TooManyRequests) => h.fail(ProviderFault::retryable(
                FaultKind::BackendUnavailable,
                "HTTP 429",
            )),
            (Kind::Memory(h), Fault::Malformed) => h.fail(ProviderFault::retryable(
                FaultKind::MalformedResponse,
                "truncated JSON",
            )),
            (Kind::Memory(h), Fault::Rollback) => {
                h.inject_fault(ProviderFault::retryable(
                    FaultKind::IndexRollback,
                    "index went backwards",
                ));
            }
            (Kind::Memory(h), Fault::PermissionRevoked) => h.fail(ProviderFault::permanent(
                FaultKind::PermissionDenied,
                "HTTP 403",
            )),

            (Kind::Consul { fake, .. }, Fault::Refused | Fault::Flapping) => fake
                .refuse_connections(true)
                .map_err(|e| err("refuse", e))?,
            (Kind::Consul { fake, .. }, Fault::Hang) => fake.set_failure(FakeFailure::Hang),
            (Kind::Consul { fake, .. }, Fault::ServerError) => {
                fake.set_failure(FakeFailure::ServerError)
            }
            (Kind::Consul { fake, .. }, Fault::TooManyRequests) => {
                fake.set_failure(FakeFailure::TooManyRequests)
            }
            (Kind::Consul { fake, .. }, Fault::Malformed) => {
                fake.set_failure(FakeFailure::TruncatedJson)
            }
            (Kind::Consul { fake, .. }, Fault::PermissionRevoked) => {
                fake.set_failure(FakeFailure::Forbidden)
            }
            (Kind::Consul { fake, .. }, Fault::Rollback) => fake.rollback_index(SERVICE, 1),
            (Kind::Consul { fake, .. }, Fault::LeaderLoss) => {
                fake.set_last_contact(Duration::from_secs(5))
            }

            (Kind::Kube { fake, .. }, Fault::Refused | Fault::Flapping) => fake.down(),
            (Kind::Kube { fake, .. }, Fault::Hang) => fake.set_stall(true),
            (Kind::Kube { fake, .. }, Fault::ServerError) => fake.set_status(Some(500)),
            (Kind::Kube { fake, .. }, Fault::TooManyRequests) => fake.set_status(Some(429)),
            (Kind::Kube { fake, .. }, Fault::Rollback) => fake.expire_resource_versions(),
            (Kind::Kube { fake, .. }, Fault::PermissionRevoked) => {
                fake.deny(ObjectKind::Pod, "list");
                fake.deny(ObjectKind::Pod, "watch");
                fake.end_watches();
            }

            (Kind::Etcd { cluster, .. }, Fault::Refused) => {
                cluster.kill(0).map_err(|e| err("kill", e))?
            }
            (Kind::Etcd { cluster, .. }, Fault::LeaderLoss) => {
                let leader = cluster.leader_index().await.unwrap_or(0);
                cluster.kill(leader).map_err(|e| err("kill leader", e))?;
                cluster
                    .kill((leader + 1) % 3)
                    .map_err(|e| err("kill follower", e))?;
            }
            (Kind::Etcd { cluster, .. }, Fault::Rollback) => {
                // Compact everything up to the head: revisions the
                // provider saw expire under it.
                let head = cluster.revision().await.map_err(|e| err("revision", e))?;
                cluster.compact(head).await.map_err(|e| err("compact", e))?;
            }
            (Kind::Etcd { proxy: Some(p), .. }, Fault::Flapping) => proxy(p, ProxyMode::Refuse)?,
            (Kind::Etcd { proxy: Some(p), .. }, Fault::Hang) => proxy(p, ProxyMode::Blackhole)?,

            (
                Kind::Consul { proxy: p, .. }
                | Kind::Kube { proxy: p, .. }
                | Kind::Etcd { proxy: Some(p), .. },
                Fault::TransientReset,
            ) => p.reset_next_answer(),
            (
                Kind::Consul { proxy: p, .. }
                | Kind::Kube { proxy: p, .. }
                | Kind::Etcd { proxy: Some(p), .. },
                Fault::ResetMidResponse,
            ) => proxy(p, ProxyMode::ResetMidResponse)?,
            (
                Kind::Consul { proxy: p, .. }
                | Kind::Kube { proxy: p, .. }
                | Kind::Etcd { proxy: Some(p), .. },
                Fault::SlowDrip,
            ) => proxy(p, ProxyMode::SlowDrip { interval: DRIP })?,
            (
                Kind::Consul { proxy: p, .. }
                | Kind::Kube { proxy: p, .. }
                | Kind::Etcd { proxy: Some(p), .. },
                Fault::AcceptsThenSilent,
            ) => proxy(p, ProxyMode::Blackhole)?,
            (_, fault) => {
                return Err(TargetError(format!(
                    "{fault:?} cannot be injected into this backend"
                )));
            }
        }
        Ok(())
    }

    /// Ends `fault`.
    pub async fn heal(&mut self, fault: Fault) -> Result<(), TargetError> {
        match &mut self.kind {
            Kind::Memory(h) => h.heal(),
            Kind::Consul { fake, proxy: p } => {
                fake.refuse_connections(false)
                    .map_err(|e| err("listen again", e))?;
                fake.set_failure(FakeFailure::None);
                fake.set_last_contact(Duration::ZERO);
                proxy(p, ProxyMode::Pass)?;
            }
            Kind::Kube { fake, proxy: p, .. } => {
                fake.heal();
                if matches!(fault, Fault::Refused | Fault::Flapping) {
                    fake.up().await.map_err(|e| err("up", e))?;
                }
                proxy(p, ProxyMode::Pass)?;
            }
            Kind::Etcd {
                cluster, proxy: p, ..
            } => {
                for i in 0..cluster.len() {
                    if !cluster.is_running(i) {
                        cluster.restart(i).await.map_err(|e| err("restart", e))?;
                    }
                }
                if let Some(p) = p {
                    proxy(p, ProxyMode::Pass)?;
                }
                cluster
                    .wait_healthy(Duration::from_secs(10))
                    .await
                    .map_err(|e| err("etcd healthy", e))?;
            }
        }
        Ok(())
    }
}

fn proxy(p: &ChaosProxy, mode: ProxyMode) -> Result<(), TargetError> {
    p.set_mode(mode).map_err(|e| err("proxy", e))
}

fn consul_instance(spec: &MemberSpec) -> FakeInstance {
    FakeInstance::new(SERVICE, spec.id.as_str(), &spec.host, spec.port)
}

async fn put(client: &mut etcd_client::Client, spec: &MemberSpec) -> Result<(), TargetError> {
    let value = serde_json::to_vec(spec).map_err(|e| err("json", e))?;
    client
        .put(format!("{PREFIX}{}", spec.id), value, None)
        .await
        .map_err(|e| err("etcd put", e))?;
    Ok(())
}
