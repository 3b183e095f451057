//! Pieces the measuring harnesses (`latency`, `recovery`, `scale`) share:
//! bridges that timestamp every callback and wake a blocked measuring
//! thread, percentiles, and the result rows `cargo xtask bench` collects.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use provisioning_watch_hub::wire::{ChangeEnvelope, SnapshotEnvelope, TopologyEnvelope};
use provisioning_watch_hub::{PartitionManagerBridge, PlacementSupervisorBridge, RemotingBridge};

/// One bridge role's latest state: the hash of the snapshot it holds and
/// when its last callback ran.
#[derive(Debug)]
struct Slot {
    hash: AtomicU64,
    members: AtomicUsize,
    /// Remote-topology events received that lead to `hash` (`usize::MAX`
    /// once a snapshot or resync brought it whole).
    events: AtomicUsize,
    at: Mutex<Option<Instant>>,
}

impl Slot {
    fn new() -> Self {
        Self {
            hash: AtomicU64::new(0),
            members: AtomicUsize::new(0),
            events: AtomicUsize::new(0),
            at: Mutex::new(None),
        }
    }
}

/// The three bridge roles (placement, partition, remoting) in one value.
/// Each callback stores the hash of the snapshot the role now holds and the
/// time of the callback, then wakes the measuring thread, which blocks on a
/// condition variable instead of spinning (a spinning waiter would take one
/// of the machine's two cores from the service it measures). Latencies are
/// taken from the callback timestamps, so the waiter's own wake-up is not
/// counted. While [`wait_all`](Self::wait_all) waits for a hash, only the
/// callback that completes it wakes the waiter: waking it on every callback
/// would put a wake-up of the measuring thread (a system call, and the
/// woken thread competing for the CPU) between the switch's callbacks.
#[derive(Debug)]
pub struct SignalBridges {
    slots: [Slot; 3],
    /// The hash [`wait_all`](Self::wait_all) waits for (0: wake on every
    /// callback).
    awaited: AtomicU64,
    /// How many remote-topology events the remoting role needs before it
    /// holds a new hash (1 unless [`expect_remote_events`](Self::expect_remote_events)).
    remote_events: AtomicUsize,
    lock: Mutex<()>,
    changed: Condvar,
}

/// One role of a [`SignalBridges`], handed to the service as a bridge.
#[derive(Debug, Clone)]
pub struct SignalBridge {
    all: Arc<SignalBridges>,
    role: usize,
}

impl SignalBridges {
    /// Three fresh roles.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            slots: [Slot::new(), Slot::new(), Slot::new()],
            awaited: AtomicU64::new(0),
            remote_events: AtomicUsize::new(1),
            lock: Mutex::new(()),
            changed: Condvar::new(),
        })
    }

    /// The placement, partition and remoting bridges, in that order.
    pub fn bridges(self: &Arc<Self>) -> [Arc<SignalBridge>; 3] {
        [0, 1, 2].map(|role| {
            Arc::new(SignalBridge {
                all: self.clone(),
                role,
            })
        })
    }

    fn guard(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a callback: a whole snapshot (`members: Some`) or one
    /// remote-topology event leading to `hash`.
    fn store(&self, role: usize, hash: u64, members: Option<usize>) {
        let slot = &self.slots[role];
        *slot.at.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        let events = match members {
            Some(n) => {
                slot.members.store(n, Ordering::Release);
                usize::MAX
            }
            None if slot.hash.load(Ordering::Acquire) == hash => {
                slot.events.load(Ordering::Acquire).saturating_add(1)
            }
            None => 1,
        };
        // A role calls from one thread at a time; the waiter only reads.
        slot.events.store(events, Ordering::Release);
        slot.hash.store(hash, Ordering::Release);
        let awaited = self.awaited.load(Ordering::Acquire);
        if awaited != 0 && !self.all_hold(awaited) {
            return;
        }
        let _guard = self.guard();
        self.changed.notify_all();
    }

    /// The hash the placement role holds (0 before its first snapshot).
    pub fn placement_hash(&self) -> u64 {
        self.slots[0].hash.load(Ordering::Acquire)
    }

    /// How many members the placement role's snapshot has.
    pub fn placement_members(&self) -> usize {
        self.slots[0].members.load(Ordering::Acquire)
    }

    /// From now on the remoting role holds a new hash only after `n`
    /// remote-topology events leading to it (a switch's whole diff), so
    /// that [`wait_all`](Self::wait_all) ends at the last of them.
    pub fn expect_remote_events(&self, n: usize) {
        self.remote_events.store(n.max(1), Ordering::Release);
    }

    /// Whether every role holds `hash`.
    pub fn all_hold(&self, hash: u64) -> bool {
        let needed = self.remote_events.load(Ordering::Acquire);
        self.slots.iter().enumerate().all(|(role, s)| {
            s.hash.load(Ordering::Acquire) == hash
                && (role != 2 || s.events.load(Ordering::Acquire) >= needed)
        })
    }

    /// Blocks until `check` holds or `limit` passes; returns whether it
    /// held.
    pub fn wait_until(&self, limit: Duration, check: impl Fn(&Self) -> bool) -> bool {
        let started = Instant::now();
        let mut guard = self.guard();
        while !check(self) {
            let Some(left) = limit.checked_sub(started.elapsed()) else {
                return false;
            };
            guard = self
                .changed
                .wait_timeout(guard, left.min(Duration::from_millis(50)))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    /// Blocks until every role holds `hash` (or `limit` passes), then
    /// returns the time of the last of the three callbacks.
    pub fn wait_all(&self, hash: u64, limit: Duration) -> Option<Instant> {
        // Set before the first check: a callback that completes `hash` after
        // it notifies under the lock the waiter holds while checking.
        self.awaited.store(hash, Ordering::Release);
        let held = self.wait_until(limit, |s| s.all_hold(hash));
        self.awaited.store(0, Ordering::Release);
        if !held {
            return None;
        }
        self.slots
            .iter()
            .filter_map(|s| *s.at.lock().unwrap_or_else(PoisonError::into_inner))
            .max()
    }
}

impl PlacementSupervisorBridge for SignalBridge {
    fn apply_snapshot(&self, envelope: &SnapshotEnvelope) {
        self.all
            .store(self.role, envelope.hash(), Some(envelope.members().len()));
    }
    fn provider_changed(&self, _: &ChangeEnvelope) {}
    fn resync(&self, envelope: &SnapshotEnvelope) {
        self.all
            .store(self.role, envelope.hash(), Some(envelope.members().len()));
    }
}

impl PartitionManagerBridge for SignalBridge {
    fn apply_snapshot(&self, envelope: &SnapshotEnvelope) {
        self.all
            .store(self.role, envelope.hash(), Some(envelope.members().len()));
    }
    fn provider_changed(&self, _: &ChangeEnvelope) {}
    fn resync(&self, envelope: &SnapshotEnvelope) {
        self.all
            .store(self.role, envelope.hash(), Some(envelope.members().len()));
    }
}

impl RemotingBridge for SignalBridge {
    fn publish_remote_topology(&self, envelope: &TopologyEnvelope) {
        self.all.store(self.role, envelope.snapshot_hash(), None);
    }
    fn resync(&self, envelope: &SnapshotEnvelope) {
        self.all
            .store(self.role, envelope.hash(), Some(envelope.members().len()));
    }
}

/// p50 / p90 / p99 / max of a set of durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Percentiles {
    /// How many samples.
    pub count: usize,
    /// Median.
    pub p50: Duration,
    /// 90th percentile (nearest rank).
    pub p90: Duration,
    /// 99th percentile (nearest rank).
    pub p99: Duration,
    /// Largest sample.
    pub max: Duration,
}

impl Percentiles {
    /// Percentiles of `samples` (`None` when empty).
    pub fn of(samples: &[Duration]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let rank = |p: usize| {
            let r = (sorted.len() * p).div_ceil(100);
            sorted[r.saturating_sub(1).min(sorted.len() - 1)]
        };
        Some(Self {
            count: sorted.len(),
            p50: rank(50),
            p90: rank(90),
            p99: rank(99),
            max: sorted[sorted.len() - 1],
        })
    }
}

impl std::fmt::Display for Percentiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} / {} / {}",
            fmt_duration(self.p50),
            fmt_duration(self.p99),
            fmt_duration(self.max)
        )
    }
}

/// A duration with a unit that keeps three significant digits or so.
pub fn fmt_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns < 10_000 {
        format!("{ns} ns")
    } else if ns < 10_000_000 {
        format!("{:.0} µs", ns as f64 / 1e3)
    } else if ns < 10_000_000_000 {
        format!("{:.1} ms", ns as f64 / 1e6)
    } else {
        format!("{:.2} s", ns as f64 / 1e9)
    }
}

/// A byte count in B, KiB or MiB.
pub fn fmt_bytes(bytes: f64) -> String {
    if bytes.abs() < 10_000.0 {
        format!("{bytes:.0} B")
    } else if bytes.abs() < 10.0 * 1024.0 * 1024.0 {
        format!("{:.1} KiB", bytes / 1024.0)
    } else {
        format!("{:.1} MiB", bytes / (1024.0 * 1024.0))
    }
}

/// One line of the table `cargo xtask bench` prints: a figure, its value,
/// the baseline it is judged against, the ratio, the target and whether it
/// was met. Printed as `row: a | b | c | d | e | f` on stdout, which the
/// xtask collects.
#[derive(Debug, Clone)]
pub struct ResultRow {
    /// What was measured.
    pub figure: String,
    /// The measured value.
    pub value: String,
    /// The baseline measured in the same run (or `—`).
    pub baseline: String,
    /// Value ÷ baseline (or `—`).
    pub ratio: String,
    /// The target (or `—`).
    pub target: String,
    /// `met`, `MISSED (reason)` or `—`.
    pub verdict: String,
}

impl ResultRow {
    /// Prints the row in the form the xtask collects.
    pub fn print(&self) {
        println!(
            "row: {} | {} | {} | {} | {} | {}",
            self.figure, self.value, self.baseline, self.ratio, self.target, self.verdict
        );
    }
}

/// The 1-minute load average, for printing beside figures.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// The resident set size of this process in bytes (Linux `/proc`), if
/// readable.
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status_kib(&status, "VmRSS:").map(|k| k * 1024)
}

/// The peak resident set size of this process in bytes, if readable.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status_kib(&status, "VmHWM:").map(|k| k * 1024)
}

fn status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let p = Percentiles::of(&samples).expect("samples");
        assert_eq!(p.p50, Duration::from_millis(50));
        assert_eq!(p.p99, Duration::from_millis(99));
        assert_eq!(p.max, Duration::from_millis(100));
        assert_eq!(Percentiles::of(&[]), None);
    }
}
