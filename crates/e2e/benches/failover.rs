//! `failover/warm_switch/{1000,100000}` and `failover/cold_switch/1000`: the
//! decisive fault injected through the in-memory handle, timed until every
//! bridge (placement, partition, remoting) holds the new provider's snapshot
//! hash. Each bridge notes the instant it first held a hash; an iteration
//! lasts from the injection to the latest of the three instants, so the
//! measuring thread's own wake-up is not counted.
//!
//! Warm: two providers watching the same cluster with a 1 % different view;
//! each iteration kills the active one with a permanent fault, so the other
//! (running, fresh) takes over at once; the killed one recovers with its next
//! heartbeat and is the target of the next iteration. Cold: `standby: 0`, a
//! fresh service per iteration, the lower-priority provider's stream is only
//! opened when the primary dies.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use cluster_provisioning::{
    ClusterProvisioningService, FailoverPolicy, ProviderRegistry, ProvisioningHandle,
};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use provisioning_backend_memory::{InMemoryHandle, InMemoryProvider};
use provisioning_provider_api::{ClusterNode, FaultKind, ProviderFault, ProviderId};
use provisioning_watch_hub::{
    ChangeEnvelope, PartitionManagerBridge, PlacementSupervisorBridge, RemotingBridge,
    SnapshotEnvelope, TopologyEnvelope,
};

/// Remembers the hash of the last snapshot it was handed and when it first
/// held it, and wakes the measuring thread when the hash changes; the
/// measuring thread blocks instead of spinning (a spinning waiter would take
/// one of the two cores from the service it measures).
#[derive(Default)]
struct HashBridge(AtomicU64, Arc<Signal>, Mutex<Option<Instant>>);

#[derive(Default)]
struct Signal {
    lock: Mutex<()>,
    changed: Condvar,
}

impl HashBridge {
    fn new(signal: &Arc<Signal>) -> Arc<Self> {
        Arc::new(Self(AtomicU64::new(0), signal.clone(), Mutex::new(None)))
    }

    fn store(&self, hash: u64) {
        if self.0.load(Ordering::Acquire) == hash {
            // The remoting bridge gets one call per diff event, all with
            // the same hash: only the first one counts.
            return;
        }
        let at = Instant::now();
        *self
            .2
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(at);
        self.0.store(hash, Ordering::Release);
        let _guard = self
            .1
            .lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.1.changed.notify_all();
    }
}

impl PlacementSupervisorBridge for HashBridge {
    fn apply_snapshot(&self, envelope: &SnapshotEnvelope) {
        self.store(envelope.hash());
    }
    fn provider_changed(&self, _: &ChangeEnvelope) {}
}

impl PartitionManagerBridge for HashBridge {
    fn apply_snapshot(&self, envelope: &SnapshotEnvelope) {
        self.store(envelope.hash());
    }
    fn provider_changed(&self, _: &ChangeEnvelope) {}
}

impl RemotingBridge for HashBridge {
    fn publish_remote_topology(&self, envelope: &TopologyEnvelope) {
        self.store(envelope.snapshot_hash());
    }
    fn resync(&self, envelope: &SnapshotEnvelope) {
        self.store(envelope.hash());
    }
}

struct Setup {
    service: ProvisioningHandle,
    providers: [(InMemoryHandle, u64); 2],
    bridges: [Arc<HashBridge>; 3],
    signal: Arc<Signal>,
}

fn members(n: usize, variant: u16) -> Vec<ClusterNode> {
    (0..n)
        .map(|i| {
            // 1 % of the members sit on another port in the second view.
            let port = if variant == 1 && i % 100 == 0 {
                5000
            } else {
                4000
            };
            ClusterNode::new(
                format!("node-{i:06}"),
                format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255),
                port,
            )
        })
        .collect()
}

fn setup(n: usize, policy: FailoverPolicy) -> Setup {
    let mut providers = Vec::new();
    let mut service =
        ClusterProvisioningService::build(ProviderRegistry::new()).with_failover(policy);
    for (variant, (id, priority)) in [("primary", 20), ("standby", 10)].into_iter().enumerate() {
        let provider = InMemoryProvider::new(ProviderId::new(id).expect("valid id"), priority);
        let handle = provider.handle();
        for node in members(n, variant as u16) {
            handle.add(node).expect("valid member");
        }
        providers.push((handle.clone(), handle.snapshot().hash()));
        service = service.with_provider(Arc::new(provider));
    }
    let signal = Arc::new(Signal::default());
    let bridges = [
        HashBridge::new(&signal),
        HashBridge::new(&signal),
        HashBridge::new(&signal),
    ];
    let service = service
        .with_bridges(bridges[0].clone(), bridges[1].clone(), bridges[2].clone())
        .start()
        .expect("service starts");
    let providers = [providers.remove(0), providers.remove(0)];
    Setup {
        service,
        providers,
        bridges,
        signal,
    }
}

/// When the last of the bridges first held its current hash.
fn last_arrival(s: &Setup) -> Instant {
    s.bridges
        .iter()
        .filter_map(|b| {
            *b.2.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        })
        .max()
        .expect("every bridge holds a hash")
}

fn wait_all(s: &Setup, hash: u64, limit: Duration) -> bool {
    let started = Instant::now();
    let mut guard = s
        .signal
        .lock
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    while s
        .bridges
        .iter()
        .any(|b| b.0.load(Ordering::Acquire) != hash)
    {
        let Some(left) = limit.checked_sub(started.elapsed()) else {
            return false;
        };
        guard = s
            .signal
            .changed
            .wait_timeout(guard, left)
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0;
    }
    true
}

fn kill() -> ProviderFault {
    ProviderFault::permanent(FaultKind::PermissionDenied, "bench: permission revoked")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn warm(c: &mut Criterion) {
    let mut group = c.benchmark_group("failover/warm_switch");
    for n in [1_000usize, 100_000] {
        if n == 100_000 {
            group.sample_size(10);
        }
        let rt = runtime();
        let s = rt.block_on(async {
            setup(
                n,
                FailoverPolicy::tight().with_cooldown(Duration::from_secs(60)),
            )
        });
        assert!(
            wait_all(&s, s.providers[0].1, Duration::from_secs(30)),
            "first snapshot never arrived"
        );
        let mut active = 0usize;
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (victim, target) = (active, 1 - active);
                    // The target must be warm and healthy again (its recovery
                    // heartbeat follows its own fault at once).
                    std::thread::sleep(Duration::from_millis(2));
                    let started = Instant::now();
                    s.providers[victim].0.inject_fault(kill());
                    assert!(
                        wait_all(&s, s.providers[target].1, Duration::from_secs(30)),
                        "switch did not happen"
                    );
                    total += last_arrival(&s).saturating_duration_since(started);
                    active = target;
                }
                total
            });
        });
        rt.block_on(s.service.shutdown()).expect("shutdown");
    }
    group.finish();
}

fn cold(c: &mut Criterion) {
    let mut group = c.benchmark_group("failover/cold_switch");
    group.sample_size(10);
    let rt = runtime();
    group.bench_with_input(BenchmarkId::from_parameter(1000), &1000usize, |b, &n| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let s = rt.block_on(async { setup(n, FailoverPolicy::tight().with_standby(0)) });
                assert!(
                    wait_all(&s, s.providers[0].1, Duration::from_secs(30)),
                    "first snapshot never arrived"
                );
                let started = Instant::now();
                s.providers[0].0.fail(kill());
                assert!(
                    wait_all(&s, s.providers[1].1, Duration::from_secs(30)),
                    "switch did not happen"
                );
                total += last_arrival(&s).saturating_duration_since(started);
                rt.block_on(s.service.shutdown()).expect("shutdown");
            }
            total
        });
    });
    group.finish();
}

criterion_group!(benches, warm, cold);
criterion_main!(benches);
