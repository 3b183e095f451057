//! `publish/N`: a fresh, not-yet-hashed snapshot with 1 % churn through hash,
//! diff, shrink check and hand-off to 3 bridges + 8 event subscribers, beside
//! `baseline_hash/N`: hashing the same snapshots once.
//!
//! `publish` ends when the publication is in every consumer queue and its
//! consumers are queued for the notifier (publications back to back are a
//! burst; `wakeup/N` times the quiet path, where the publisher wakes them);
//! the consumers' own work runs on their threads and is not timed here. After each run every consumer's records (`seq_no`,
//! snapshot pointer) are checked: strictly increasing, ending at the latest
//! published snapshot.

#![allow(
    missing_docs,
    reason = "criterion's macros generate undocumented items"
)]

use std::hint::black_box;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use provisioning_provider_api::{ClusterNode, NodeId, ProviderId, ProviderSnapshot};
use provisioning_watch_hub::wire::{ChangeEnvelope, SnapshotEnvelope, TopologyEnvelope};
use provisioning_watch_hub::{
    HubConfig, PartitionManagerBridge, PlacementSupervisorBridge, ProviderWatchHub, PublishOutcome,
    RemotingBridge,
};

const RING: usize = 64;

/// `RING` snapshots over `n + n/100` ids: snapshot `i` leaves out the window
/// of `n/100` ids starting at `i * n/100`, so consecutive snapshots (the
/// last and the first too) differ by 1 % of the members leaving and 1 %
/// joining, plus one id blocked and one unblocked. Members have the shape
/// BENCHMARKS.md's floors measure (two strings, a port, an empty label map), except that
/// 1 % carry a `zone` label so the label paths run too.
fn ring(n: usize) -> Vec<ProviderSnapshot> {
    let churn = (n / 100).max(1);
    let universe = n + churn;
    (0..RING)
        .map(|i| {
            let window = (i * churn) % universe;
            let members = (0..universe)
                .filter(|j| !(window..window + churn).contains(j))
                .map(|j| {
                    let host = format!("10.{}.{}.{}", j >> 16, (j >> 8) & 255, j & 255);
                    let node = ClusterNode::new(format!("node-{j:07}"), host, 4000);
                    if j % 100 == 0 {
                        node.with_label("zone", ["a", "b", "c"][j % 3])
                    } else {
                        node
                    }
                })
                .collect();
            let blocked = vec![NodeId::from(format!("node-{:07}", (i * 7) % universe))];
            ProviderSnapshot::new(members, blocked).expect("unique ids")
        })
        .collect()
}

/// A new, not yet hashed snapshot with the content of `template` (a deep
/// copy: a clone may share the template's cached hash).
fn fresh(template: &ProviderSnapshot) -> ProviderSnapshot {
    let snapshot = ProviderSnapshot::new(template.members().to_vec(), template.blocked().to_vec())
        .expect("valid");
    assert!(!snapshot.is_hashed());
    snapshot
}

/// Builds fresh snapshots on request on its own thread, in ring order, as a
/// provider task would: the members are allocated by another thread than the
/// hub's (in the service too), and building never overlaps the timed
/// section (the bench thread waits for it in the untimed setup).
struct Producer {
    requests: Option<mpsc::Sender<()>>,
    snapshots: mpsc::Receiver<ProviderSnapshot>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Producer {
    fn start(ring: Arc<Vec<ProviderSnapshot>>, first: usize) -> Self {
        let (requests, requested) = mpsc::channel::<()>();
        let (built, snapshots) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("producer".into())
            .spawn(move || {
                for i in first.. {
                    if requested.recv().is_err() || built.send(fresh(&ring[i % RING])).is_err() {
                        return;
                    }
                }
            })
            .expect("producer thread");
        Self {
            requests: Some(requests),
            snapshots,
            thread: Some(thread),
        }
    }

    fn next(&self) -> ProviderSnapshot {
        self.requests
            .as_ref()
            .and_then(|requests| requests.send(()).ok())
            .and_then(|()| self.snapshots.recv().ok())
            .expect("producer running")
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        // Closing the request channel ends the producer.
        self.requests.take();
        if let Some(thread) = self.thread.take() {
            thread.join().expect("producer");
        }
    }
}

/// Records (`seq_no`, snapshot pointer) of everything it is given, and
/// when it first got each snapshot.
#[derive(Default)]
struct Recorder {
    records: Mutex<Vec<(u64, usize)>>,
    received: Mutex<Vec<(u64, Instant)>>,
}

impl Recorder {
    fn record(&self, envelope: &SnapshotEnvelope) {
        let mut records = self.records.lock().expect("recorder");
        let entry = (envelope.seq_no(), Arc::as_ptr(envelope) as usize);
        if records.last() != Some(&entry) {
            records.push(entry);
            self.received
                .lock()
                .expect("recorder")
                .push((envelope.seq_no(), Instant::now()));
        }
    }
}

impl PlacementSupervisorBridge for Recorder {
    fn apply_snapshot(&self, envelope: &SnapshotEnvelope) {
        self.record(envelope);
    }
    fn provider_changed(&self, _: &ChangeEnvelope) {}
}

impl PartitionManagerBridge for Recorder {
    fn apply_snapshot(&self, envelope: &SnapshotEnvelope) {
        self.record(envelope);
    }
    fn provider_changed(&self, _: &ChangeEnvelope) {}
}

impl RemotingBridge for Recorder {
    fn publish_remote_topology(&self, envelope: &TopologyEnvelope) {
        self.record(&envelope.snapshot);
    }
    fn resync(&self, envelope: &SnapshotEnvelope) {
        self.record(envelope);
    }
}

struct Setup {
    hub: ProviderWatchHub,
    provider: ProviderId,
    recorders: Vec<Arc<Recorder>>,
    runtime: tokio::runtime::Runtime,
}

fn setup(first: &ProviderSnapshot) -> Setup {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("runtime");
    let mut hub = ProviderWatchHub::new(HubConfig::new()).expect("hub");
    let handle = hub.handle();
    let mut recorders = Vec::new();
    let placement = Arc::new(Recorder::default());
    let partition = Arc::new(Recorder::default());
    let remoting = Arc::new(Recorder::default());
    handle
        .attach_consumers(placement.clone(), partition.clone(), remoting.clone())
        .expect("attach");
    recorders.extend([placement, partition, remoting]);
    for i in 0..8 {
        let recorder = Arc::new(Recorder::default());
        let mut events = handle
            .subscribe_events(format!("subscriber-{i}"))
            .expect("subscribe");
        let sink = recorder.clone();
        runtime.spawn(async move {
            while let Some(line) = events.recv().await {
                if let Some(snapshot) = line.as_snapshot() {
                    sink.record(snapshot);
                }
            }
        });
        recorders.push(recorder);
    }
    let provider = ProviderId::new("bench").expect("id");
    hub.activate(provider.clone(), fresh(first), Instant::now())
        .expect("activate");
    Setup {
        hub,
        provider,
        recorders,
        runtime,
    }
}

/// Waits for every consumer to reach the latest snapshot, then checks the
/// records.
fn check(setup: Setup) {
    let Setup {
        mut hub,
        recorders,
        runtime,
        ..
    } = setup;
    let latest = hub.latest().expect("published").clone();
    let target = (latest.seq_no(), Arc::as_ptr(&latest) as usize);
    let deadline = Instant::now() + Duration::from_secs(30);
    for (i, recorder) in recorders.iter().enumerate() {
        loop {
            let last = recorder.records.lock().expect("recorder").last().copied();
            if last == Some(target) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "consumer {i} stuck at {last:?}, want {target:?}"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let records = recorder.records.lock().expect("recorder");
        assert!(
            records.windows(2).all(|w| w[0].0 < w[1].0),
            "consumer {i}: seq_no not strictly increasing"
        );
    }
    let resyncs: u64 = hub.handle().consumers().iter().map(|c| c.resyncs).sum();
    let received: usize = recorders
        .iter()
        .map(|r| r.records.lock().expect("recorder").len())
        .sum();
    eprintln!(
        "checked 11 consumers up to seq_no {}: {received} snapshot records, {resyncs} resyncs",
        latest.seq_no()
    );
    hub.shutdown(Duration::from_secs(10)).expect("shutdown");
    runtime.shutdown_timeout(Duration::from_secs(5));
}

fn bench_size(c: &mut Criterion, n: usize) {
    let snapshots = Arc::new(ring(n));
    assert!(snapshots.iter().all(|s| !s.is_hashed()));
    // One input per timed call, for both targets: each `publish` then starts
    // with the consumers and the reclaimer done with the previous one, as
    // between two provider events. Batches of back-to-back calls on two
    // cores would time the consumers' backlog instead (see README).
    let batch = BatchSize::PerIteration;

    let mut group = c.benchmark_group("baseline_hash");
    if n >= 10_000 {
        group.sample_size(20);
    }
    let producer = Producer::start(snapshots.clone(), 0);
    group.bench_function(n.to_string(), |b| {
        b.iter_batched(
            || producer.next(),
            // Returned, so criterion drops it outside the timed section.
            |snapshot| {
                black_box(snapshot.hash());
                snapshot
            },
            batch,
        )
    });
    group.finish();
    drop(producer);

    let mut group = c.benchmark_group("publish");
    if n >= 10_000 {
        group.sample_size(20);
    }
    let state = setup(&snapshots[0]);
    let provider = state.provider.clone();
    let hub = Mutex::new(state);
    let producer = Producer::start(snapshots.clone(), 1);
    group.bench_function(n.to_string(), |b| {
        let mut guard = hub.lock().expect("hub");
        b.iter_batched(
            || (provider.clone(), producer.next()),
            |(provider, snapshot)| {
                let outcome = guard.hub.publish_active(provider, snapshot, Instant::now());
                assert!(
                    matches!(outcome, PublishOutcome::Published { .. }),
                    "{outcome:?}"
                );
            },
            batch,
        )
    });
    group.finish();
    drop(producer);
    check(hub.into_inner().expect("hub"));
}

/// Not a criterion target: where `publish` ends (the hand-off) and what the
/// consumers' wake-up adds. Publications are spaced so every consumer is
/// idle (parked) when one arrives; prints p50/p99 of the `publish_active`
/// call and of the time from its return until the last of the 11 consumers
/// has the snapshot.
fn wakeup(n: usize, rounds: usize) {
    let snapshots = ring(n);
    let mut state = setup(&snapshots[0]);
    std::thread::sleep(Duration::from_millis(50));
    let mut handoff = Vec::with_capacity(rounds);
    let mut published = Vec::with_capacity(rounds);
    for i in 1..=rounds {
        let snapshot = fresh(&snapshots[i % RING]);
        let start = Instant::now();
        let outcome = state
            .hub
            .publish_active(state.provider.clone(), snapshot, Instant::now());
        let done = Instant::now();
        let PublishOutcome::Published { seq_no } = outcome else {
            panic!("{outcome:?}");
        };
        handoff.push(done - start);
        published.push((seq_no, done));
        std::thread::sleep(Duration::from_millis(if n >= 10_000 { 60 } else { 3 }));
    }
    let last_seq = published.last().map_or(0, |p| p.0);
    let deadline = Instant::now() + Duration::from_secs(30);
    while state.recorders.iter().any(|r| {
        r.received
            .lock()
            .expect("recorder")
            .last()
            .map_or(0, |e| e.0)
            < last_seq
    }) {
        assert!(Instant::now() < deadline, "consumers stuck");
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut wake = Vec::new();
    for (seq_no, done) in &published {
        let last = state
            .recorders
            .iter()
            .filter_map(|r| {
                let received = r.received.lock().expect("recorder");
                received.iter().find(|e| e.0 == *seq_no).map(|e| e.1)
            })
            .max();
        if let Some(last) = last {
            wake.push(last.saturating_duration_since(*done));
        }
    }
    let pct = |v: &mut Vec<Duration>, p: usize| {
        v.sort();
        v[(v.len() * p / 100).min(v.len() - 1)]
    };
    eprintln!(
        "wakeup/{n}: publish call p50 {:?} p99 {:?}; after it returns, last of 11 consumers has it p50 {:?} p99 {:?} ({} of {rounds} seen by all)",
        pct(&mut handoff, 50),
        pct(&mut handoff, 99),
        pct(&mut wake, 50),
        pct(&mut wake, 99),
        wake.len(),
    );
    check(state);
}

fn benches(c: &mut Criterion) {
    // 100k first: after the 1k targets' hundreds of thousands of small
    // allocations (freed on other threads) the allocator's heap is
    // fragmented enough to double `publish/100000` (see README).
    bench_size(c, 100_000);
    bench_size(c, 1_000);
    wakeup(1_000, 300);
    wakeup(100_000, 20);
}

criterion_group!(hub, benches);
criterion_main!(hub);
