//! The randomized convergence run and the soak: a Consul primary (the fake,
//! behind a [`ChaosProxy`]) and an in-memory standby under membership churn
//! and faults on both, driven by a seeded generator; at the end every bridge
//! and a replay of the event stream must hold exactly the ground truth of
//! the active provider. Memory held by the run itself is bounded (the
//! bridges keep the latest state only; the fake's request log is cleared),
//! so resident memory and file descriptors measure the service.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster_provisioning::{ClusterProvisioningService, FailoverPolicy, ProvisioningHandle};
use provisioning_backend_memory::{InMemoryHandle, InMemoryProvider};
use provisioning_provider_api::{
    ClusterNode, FaultKind, Incarnation, JitterRng, ProviderFault, ProviderId, ProviderSnapshot,
};
use provisioning_testkit::fake_consul::{FakeConsul, FakeFailure, FakeInstance};

use crate::chaos_observer::EventObserver;
use crate::chaos_proxy::{ChaosProxy, ProxyMode};

mod latest_bridge;

pub use latest_bridge::{LatestBridge, LatestState};

const SERVICE: &str = "app";
/// Members each provider keeps between (so no single removal is a
/// suspicious shrink).
const MIN_MEMBERS: usize = 4;
const MAX_MEMBERS: usize = 10;

/// A small deterministic generator (the jitter's xorshift64*): the run is
/// reproducible from its seed.
#[derive(Debug, Clone)]
pub struct Rng(JitterRng);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(JitterRng::new(seed))
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// A value in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// A duration in `lo..hi`.
    pub fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        let span = hi.saturating_sub(lo).as_millis().max(1) as u64;
        lo + Duration::from_millis(self.below(span))
    }
}

/// Resident memory and open descriptors of this process at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceSample {
    /// Time since the run started.
    pub at: Duration,
    /// `VmRSS`, bytes.
    pub rss_bytes: u64,
    /// Entries of `/proc/self/fd`.
    pub fds: u64,
}

impl ResourceSample {
    /// Reads `/proc/self` now (zeros where it cannot be read).
    pub fn now(at: Duration) -> Self {
        let rss_bytes = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
            .map_or(0, |kb| kb * 1024);
        let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
        Self { at, rss_bytes, fds }
    }
}

/// How a run is driven.
#[derive(Debug, Clone)]
pub struct ChurnConfig {
    /// Seed of the generator.
    pub seed: u64,
    /// How long churn and faults go on.
    pub duration: Duration,
    /// Soak mode: the primary also flaps (refused ↔ up) every this long.
    pub flap: Option<Duration>,
    /// Print and keep a [`ResourceSample`] this often.
    pub sample_every: Option<Duration>,
    /// Bound on converging after the last fault is healed.
    pub converge_bound: Duration,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct ChurnReport {
    /// Membership changes made (both providers).
    pub changes: u64,
    /// Faults injected (both providers).
    pub faults: u64,
    /// `provider_changed` lines seen.
    pub switches: u64,
    /// The active provider at the end.
    pub active: Option<ProviderId>,
    /// Its members at the end.
    pub members: usize,
    /// Heal → every bridge and the replay hold the active provider's truth.
    pub converged: Option<Duration>,
    /// Every violation any consumer reported (first few).
    pub violations: Vec<String>,
    /// Resource samples, oldest first.
    pub samples: Vec<ResourceSample>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PrimaryFault {
    Refused,
    Failure(FakeFailure),
    Proxy(ProxyMode),
}

struct Run {
    fake: FakeConsul,
    proxy: ChaosProxy,
    standby: InMemoryHandle,
    service: ProvisioningHandle,
    bridges: [Arc<LatestBridge>; 3],
    observer: EventObserver,
    rng: Rng,
    next_id: u64,
    primary_fault: Option<(PrimaryFault, Instant)>,
    standby_fault: Option<Instant>,
    report: ChurnReport,
}

fn pid(s: &str) -> ProviderId {
    ProviderId::new(s).unwrap_or_else(|_| unreachable!("a valid literal id"))
}

fn node(id: &str, n: u64, port: u16) -> ClusterNode {
    ClusterNode::new(
        id,
        format!("10.1.{}.{}", (n / 200) % 250, n % 200 + 1),
        port,
    )
}

/// Why a run could not be set up or driven.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChurnError(pub String);

impl std::fmt::Display for ChurnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ChurnError {}

fn err(what: &str, e: impl std::fmt::Display) -> ChurnError {
    ChurnError(format!("{what}: {e}"))
}

impl Run {
    async fn start(seed: u64) -> Result<Self, ChurnError> {
        let fake = FakeConsul::start()
            .await
            .map_err(|e| err("fake consul", e))?;
        let proxy = ChaosProxy::start(fake.addr())
            .await
            .map_err(|e| err("proxy", e))?;
        let standby = InMemoryProvider::new(pid("standby"), 10);
        let mut next_id = 0;
        let mut instances = Vec::new();
        for _ in 0..6 {
            next_id += 1;
            let n = node(&format!("n{next_id}"), next_id, 4000);
            instances.push(FakeInstance::new(SERVICE, n.id.as_str(), &n.host, n.port));
            standby
                .handle()
                .add(n)
                .map_err(|e| err("standby member", e))?;
        }
        fake.set_instances(SERVICE, instances);
        let descriptor = provisioning_registry::descriptor_from_json(&format!(
            r#"{{"id":"primary","kind":"consul","priority":20,"endpoints":["{}"],"watch":{{"service":"{SERVICE}","wait":"400ms"}}}}"#,
            proxy.url()
        ))
        .map_err(|e| err("descriptor", e))?;
        let registry = cluster_provisioning::builtin_registry();
        registry
            .register(descriptor)
            .map_err(|e| err("register", e))?;
        let bridges = [
            LatestBridge::new(),
            LatestBridge::new(),
            LatestBridge::new(),
        ];
        let handle = standby.handle();
        let service = ClusterProvisioningService::build(registry)
            .with_failover(FailoverPolicy::tight())
            .with_provider(Arc::new(standby))
            .with_bridges(bridges[0].clone(), bridges[1].clone(), bridges[2].clone())
            .with_rng_seed(seed)
            .start()
            .map_err(|e| err("service", e))?;
        let observer = EventObserver::spawn(service.events().map_err(|e| err("events", e))?);
        Ok(Self {
            fake,
            proxy,
            standby: handle,
            service,
            bridges,
            observer,
            rng: Rng::new(seed),
            next_id,
            primary_fault: None,
            standby_fault: None,
            report: ChurnReport {
                changes: 0,
                faults: 0,
                switches: 0,
                active: None,
                members: 0,
                converged: None,
                violations: Vec::new(),
                samples: Vec::new(),
            },
        })
    }

    fn churn_primary(&mut self) {
        let members = self.fake.instances(SERVICE);
        let n = members.len();
        let op = if n <= MIN_MEMBERS {
            0
        } else if n >= MAX_MEMBERS {
            1
        } else {
            self.rng.below(3)
        };
        match op {
            0 => {
                self.next_id += 1;
                let n = node(&format!("n{}", self.next_id), self.next_id, 4000);
                self.fake
                    .upsert(FakeInstance::new(SERVICE, n.id.as_str(), &n.host, n.port));
            }
            1 => {
                let i = self.rng.below(n as u64) as usize;
                self.fake.remove(SERVICE, &members[i].id);
            }
            _ => {
                let i = self.rng.below(n as u64) as usize;
                let port = 4000 + self.rng.below(100) as u16;
                self.fake.update(SERVICE, &members[i].id, |m| m.port = port);
            }
        }
        self.report.changes += 1;
    }

    fn churn_standby(&mut self) -> Result<(), ChurnError> {
        let view = self.standby.snapshot();
        let n = view.members().len();
        if n <= MIN_MEMBERS || (n < MAX_MEMBERS && self.rng.below(2) == 0) {
            self.next_id += 1;
            let id = format!("n{}", self.next_id);
            self.standby
                .add(node(&id, self.next_id, 4000))
                .map_err(|e| err("standby add", e))?;
        } else {
            let i = self.rng.below(n as u64) as usize;
            let id = view.members()[i].id.as_str().to_owned();
            self.standby.remove(&id);
        }
        self.report.changes += 1;
        Ok(())
    }

    fn set_primary_fault(&mut self, fault: Option<PrimaryFault>) -> Result<(), ChurnError> {
        // Clear whatever holds, then set the new one.
        self.fake
            .refuse_connections(false)
            .map_err(|e| err("listen again", e))?;
        self.fake.set_failure(FakeFailure::None);
        self.proxy
            .set_mode(ProxyMode::Pass)
            .map_err(|e| err("proxy", e))?;
        match fault {
            None => {}
            Some(PrimaryFault::Refused) => self
                .fake
                .refuse_connections(true)
                .map_err(|e| err("refuse", e))?,
            Some(PrimaryFault::Failure(f)) => self.fake.set_failure(f),
            Some(PrimaryFault::Proxy(m)) => self.proxy.set_mode(m).map_err(|e| err("proxy", e))?,
        }
        if fault.is_some() {
            self.report.faults += 1;
        }
        Ok(())
    }

    fn random_primary_fault(&mut self) -> PrimaryFault {
        match self.rng.below(9) {
            0 => PrimaryFault::Refused,
            1 => PrimaryFault::Failure(FakeFailure::ServerError),
            2 => PrimaryFault::Failure(FakeFailure::TooManyRequests),
            3 => PrimaryFault::Failure(FakeFailure::Hang),
            4 => PrimaryFault::Failure(FakeFailure::TruncatedJson),
            5 => PrimaryFault::Failure(FakeFailure::Forbidden),
            6 => PrimaryFault::Proxy(ProxyMode::ResetMidResponse),
            7 => PrimaryFault::Proxy(ProxyMode::SlowDrip {
                interval: Duration::from_millis(200),
            }),
            _ => PrimaryFault::Proxy(ProxyMode::Blackhole),
        }
    }

    fn standby_fault(&mut self) {
        match self.rng.below(4) {
            0 => self.standby.hang(),
            1 => {
                self.standby.inject_fault(ProviderFault::retryable(
                    FaultKind::IndexRollback,
                    "index went backwards",
                ));
            }
            _ => self.standby.fail(ProviderFault::retryable(
                FaultKind::BackendUnavailable,
                "connection refused",
            )),
        }
        self.report.faults += 1;
    }

    /// One random step: a membership change or a fault on either side.
    fn step(&mut self, soak: bool) -> Result<(), ChurnError> {
        let now = Instant::now();
        if let Some((_, until)) = self.primary_fault
            && now >= until
        {
            self.primary_fault = None;
            self.set_primary_fault(None)?;
        }
        if let Some(until) = self.standby_fault
            && now >= until
        {
            self.standby_fault = None;
            self.standby.heal();
        }
        match self.rng.below(100) {
            0..40 => self.churn_primary(),
            40..60 => self.churn_standby()?,
            60..85 if !soak && self.primary_fault.is_none() => {
                let fault = self.random_primary_fault();
                let hold = self
                    .rng
                    .between(Duration::from_millis(200), Duration::from_secs(4));
                self.set_primary_fault(Some(fault))?;
                self.primary_fault = Some((fault, now + hold));
            }
            85..100 if self.standby_fault.is_none() => {
                self.standby_fault();
                let hold = self
                    .rng
                    .between(Duration::from_millis(200), Duration::from_secs(3));
                self.standby_fault = Some(now + hold);
            }
            _ => {}
        }
        // The fake keeps every request; a run of hours must not.
        self.fake.clear_requests();
        Ok(())
    }

    fn truth(&self, provider: &ProviderId) -> Result<ProviderSnapshot, ChurnError> {
        if provider.as_str() == "standby" {
            return Ok(self.standby.snapshot());
        }
        let nodes = self
            .fake
            .instances(SERVICE)
            .into_iter()
            .map(|i| {
                // What the Consul backend reads as the member's life: the
                // decimal `CreateIndex` of its registration.
                let life = Incarnation::new(i.create_index.to_string())
                    .map_err(|e| err("truth incarnation", e))?;
                Ok(ClusterNode::new(i.id, i.address, i.port).with_incarnation(life))
            })
            .collect::<Result<Vec<_>, ChurnError>>()?;
        ProviderSnapshot::new(nodes, vec![]).map_err(|e| err("truth", e))
    }

    /// Whether every bridge and the replay hold the active provider's truth.
    fn converged(&self) -> Result<Option<(ProviderId, usize)>, ChurnError> {
        let Some(active) = self.service.topology().map(|t| t.provider_id().clone()) else {
            return Ok(None);
        };
        let truth = self.truth(&active)?;
        let hash = truth.hash();
        let [placement, partition, remoting] = &self.bridges;
        let snapshots = [placement, partition].iter().all(|b| {
            let s = b.state();
            s.hash == Some(hash) && s.provider.as_ref() == Some(&active)
        });
        let view = {
            let r = remoting.state();
            r.view_hash == Some(hash) && r.view.matches(&truth)
        };
        let ok = snapshots && view && self.observer.holds(&truth, &active);
        Ok(ok.then(|| (active, truth.members().len())))
    }

    fn violations(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .bridges
            .iter()
            .flat_map(|b| b.state().violations.clone())
            .collect();
        all.extend(self.observer.observed().violations.iter().take(32).cloned());
        all
    }
}

/// Runs churn and faults for `config.duration`, heals everything and
/// waits for convergence. `on_sample` sees every resource sample as it is
/// taken.
pub async fn run_churn(
    config: &ChurnConfig,
    mut on_sample: impl FnMut(&ResourceSample),
) -> Result<ChurnReport, ChurnError> {
    let mut run = Run::start(config.seed).await?;
    let result = drive(&mut run, config, &mut on_sample).await;
    let _ = run.service.shutdown().await;
    result.map(|()| run.report)
}

async fn drive(
    run: &mut Run,
    config: &ChurnConfig,
    on_sample: &mut impl FnMut(&ResourceSample),
) -> Result<(), ChurnError> {
    let started = Instant::now();
    let sample = |run: &mut Run, on_sample: &mut dyn FnMut(&ResourceSample)| {
        let s = ResourceSample::now(started.elapsed());
        on_sample(&s);
        run.report.samples.push(s);
    };
    sample(run, on_sample);
    let mut next_sample = config.sample_every.map(|every| started + every);
    let mut next_flap = config.flap.map(|every| (started + every, true));
    let soak = config.flap.is_some();
    while started.elapsed() < config.duration {
        let pause = run
            .rng
            .between(Duration::from_millis(50), Duration::from_millis(300));
        tokio::time::sleep(pause).await;
        run.step(soak)?;
        let now = Instant::now();
        if let (Some((at, down)), Some(every)) = (next_flap, config.flap)
            && now >= at
        {
            run.set_primary_fault(down.then_some(PrimaryFault::Refused))?;
            next_flap = Some((now + every, !down));
        }
        if let (Some(at), Some(every)) = (next_sample, config.sample_every)
            && now >= at
        {
            sample(run, on_sample);
            next_sample = Some(at + every);
        }
    }
    // Heal everything; the last membership stands.
    run.primary_fault = None;
    run.set_primary_fault(None)?;
    run.standby_fault = None;
    run.standby.heal();
    let healed = Instant::now();
    loop {
        if run.converged()?.is_some() {
            let at = healed.elapsed();
            // It must still hold a little later (no late switch leaving a
            // consumer behind).
            tokio::time::sleep(Duration::from_millis(1500)).await;
            if let Some((active, members)) = run.converged()? {
                run.report.converged = Some(at);
                run.report.active = Some(active);
                run.report.members = members;
                break;
            }
        }
        if healed.elapsed() > config.converge_bound {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if config.sample_every.is_some() {
        sample(run, on_sample);
    }
    run.report.switches = run.observer.observed().switch_count;
    run.report.violations = run.violations();
    Ok(())
}
