//! [`EventObserver`]: reads a service's event stream (CONTRACTS §3) on its
//! own task, replays it into a member set from nothing, and keeps what the
//! chaos runs assert on: switches, health lines, violations.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use futures::StreamExt;
use provisioning_provider_api::{
    ProviderHealth, ProviderId, ProviderSnapshot, SwitchReason, TopologyView,
};
use provisioning_watch_hub::EventSubscription;
use provisioning_watch_hub::wire::ProvisioningEvent;
use tokio::task::JoinHandle;

/// At most this many switches and health lines are kept (a soak runs for
/// hours; the counters keep counting).
const KEEP: usize = 4096;

/// One `provider_changed` line as observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedSwitch {
    /// When it was read.
    pub at: Instant,
    /// From which provider.
    pub from: Option<ProviderId>,
    /// To which provider.
    pub to: ProviderId,
    /// Why.
    pub reason: SwitchReason,
}

/// What the observer has seen so far.
#[derive(Debug)]
pub struct Observed {
    /// The most recent switches (a bounded number), oldest first.
    pub switches: Vec<ObservedSwitch>,
    /// Every switch counted.
    pub switch_count: u64,
    /// The most recent health lines (a bounded number): provider, health, when.
    pub health: Vec<(ProviderId, ProviderHealth, Instant)>,
    /// The member set rebuilt only from `remote_topology` lines (and the
    /// snapshot after a `resync`, as the contract says).
    pub replay: TopologyView,
    /// Hash of the snapshot the last replayed line belonged to.
    pub replay_hash: Option<u64>,
    /// Provider of the last published snapshot.
    pub provider: Option<ProviderId>,
    /// Lines that did not fit the replayed set or did not increase `seq_no`.
    pub violations: Vec<String>,
    /// Resyncs received (the observer fell behind).
    pub resyncs: u64,
    /// Whether the stream ended.
    pub closed: bool,
    last_seq_no: u64,
    after_resync: bool,
}

/// Reads one event subscription until it ends or the observer is dropped.
#[derive(Debug)]
pub struct EventObserver {
    observed: Arc<Mutex<Observed>>,
    task: JoinHandle<()>,
}

fn push_bounded<T>(list: &mut Vec<T>, item: T) {
    if list.len() >= KEEP {
        list.remove(0);
    }
    list.push(item);
}

impl EventObserver {
    /// Starts reading `events` on a task of the current runtime.
    pub fn spawn(mut events: EventSubscription) -> Self {
        let observed = Arc::new(Mutex::new(Observed {
            switches: Vec::new(),
            switch_count: 0,
            health: Vec::new(),
            replay: TopologyView::new(),
            replay_hash: None,
            provider: None,
            violations: Vec::new(),
            resyncs: 0,
            closed: false,
            last_seq_no: 0,
            after_resync: false,
        }));
        let shared = observed.clone();
        let task = tokio::spawn(async move {
            while let Some(event) = events.next().await {
                let mut o = shared.lock().unwrap_or_else(PoisonError::into_inner);
                o.apply(&event);
            }
            shared.lock().unwrap_or_else(PoisonError::into_inner).closed = true;
        });
        Self { observed, task }
    }

    /// What was seen so far.
    pub fn observed(&self) -> MutexGuard<'_, Observed> {
        self.observed.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the replayed set is exactly `truth` and was published by
    /// `provider`.
    pub fn holds(&self, truth: &ProviderSnapshot, provider: &ProviderId) -> bool {
        let o = self.observed();
        o.replay.matches(truth)
            && o.replay_hash == Some(truth.hash())
            && o.provider.as_ref() == Some(provider)
    }
}

impl Drop for EventObserver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Observed {
    fn check_seq(&mut self, seq_no: u64, what: &str) {
        if seq_no <= self.last_seq_no {
            let v = format!("{what} seq_no {seq_no} after {}", self.last_seq_no);
            push_bounded(&mut self.violations, v);
        }
        self.last_seq_no = seq_no;
    }

    fn apply(&mut self, event: &ProvisioningEvent) {
        match event {
            ProvisioningEvent::Resync(line) => {
                self.resyncs += 1;
                self.after_resync = true;
                self.last_seq_no = line.as_of_seq_no.saturating_sub(1);
            }
            ProvisioningEvent::Snapshot(s) => {
                self.check_seq(s.seq_no(), "snapshot");
                self.provider = Some(s.provider_id().clone());
                if std::mem::take(&mut self.after_resync) {
                    // A fresh start: no diff lines follow this snapshot.
                    self.replay = TopologyView::from_snapshot(s.snapshot());
                    self.replay_hash = Some(s.hash());
                }
            }
            ProvisioningEvent::RemoteTopology(e) => {
                self.check_seq(e.seq_no, "remote_topology");
                if let Err(err) = self.replay.apply(&e.event) {
                    push_bounded(&mut self.violations, format!("seq_no {}: {err}", e.seq_no));
                }
                self.replay_hash = Some(e.snapshot_hash());
            }
            ProvisioningEvent::ProviderChanged(c) => {
                self.check_seq(c.seq_no, "provider_changed");
                self.switch_count += 1;
                let switch = ObservedSwitch {
                    at: Instant::now(),
                    from: c.from_provider_id.clone(),
                    to: c.to_provider_id.clone(),
                    reason: c.reason,
                };
                push_bounded(&mut self.switches, switch);
            }
            ProvisioningEvent::ProviderHealth(h) => {
                self.check_seq(h.seq_no, "provider_health");
                let line = (h.provider_id.clone(), h.health, Instant::now());
                push_bounded(&mut self.health, line);
            }
            ProvisioningEvent::ProvisioningUnavailable(l) => {
                self.check_seq(l.seq_no, "provisioning_unavailable");
            }
            ProvisioningEvent::Terminated(l) => self.check_seq(l.seq_no, "terminated"),
            // A line type added later carries nothing the replay uses.
            _ => {}
        }
    }
}
