//! Helpers shared by the tests: ids, views, a recording bridge, waiting.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use provisioning_provider_api::{ClusterNode, NodeId, ProviderId, ProviderSnapshot};
use provisioning_watch_hub::wire::{
    ChangeEnvelope, ProvisioningEvent, SnapshotEnvelope, TopologyEnvelope,
};
use provisioning_watch_hub::{
    EventSubscription, PartitionManagerBridge, PlacementSupervisorBridge, RemotingBridge,
};

pub(crate) fn pid(id: &str) -> ProviderId {
    ProviderId::new(id).expect("valid provider id")
}

pub(crate) fn view(ids: &[&str], blocked: &[&str]) -> ProviderSnapshot {
    ProviderSnapshot::new(
        ids.iter()
            .map(|id| ClusterNode::new(*id, "10.0.0.1", 4000))
            .collect(),
        blocked.iter().map(|id| NodeId::from(*id)).collect(),
    )
    .expect("valid view")
}

/// `n` members named `m000`...
pub(crate) fn numbered(n: usize) -> ProviderSnapshot {
    ProviderSnapshot::new(
        (0..n)
            .map(|i| ClusterNode::new(format!("m{i:03}"), "10.0.0.1", 4000))
            .collect(),
        vec![],
    )
    .expect("valid view")
}

/// Polls `condition` every millisecond until it holds or `timeout` passes.
pub(crate) fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Everything queued on a subscription right now.
pub(crate) fn drain(events: &mut EventSubscription) -> Vec<Arc<ProvisioningEvent>> {
    let mut lines = Vec::new();
    while let Ok(Some(line)) = events.try_next() {
        lines.push(line);
    }
    lines
}

/// The `type` of each line.
pub(crate) fn types(lines: &[Arc<ProvisioningEvent>]) -> Vec<&'static str> {
    lines.iter().map(|line| line.type_name()).collect()
}

/// One call a bridge received.
#[derive(Debug, Clone)]
pub(crate) enum Call {
    Snapshot(SnapshotEnvelope),
    Changed(ChangeEnvelope),
    Topology(TopologyEnvelope),
    Resync(SnapshotEnvelope),
}

impl Call {
    pub(crate) fn seq_no(&self) -> u64 {
        match self {
            Self::Snapshot(s) | Self::Resync(s) => s.seq_no(),
            Self::Changed(c) => c.seq_no,
            Self::Topology(t) => t.seq_no,
        }
    }
}

/// A bridge (of all three kinds) that records its calls; it can be held at a
/// gate, made slow, or made to panic on one `seq_no`.
#[derive(Default)]
pub(crate) struct RecordingBridge {
    pub(crate) calls: Mutex<Vec<Call>>,
    gate: Mutex<bool>,
    opened: Condvar,
    pub(crate) delay: Option<Duration>,
    pub(crate) panic_on: Option<u64>,
}

impl RecordingBridge {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn slow(delay: Duration) -> Self {
        Self {
            delay: Some(delay),
            ..Self::default()
        }
    }

    pub(crate) fn panicking_on(seq_no: u64) -> Self {
        Self {
            panic_on: Some(seq_no),
            ..Self::default()
        }
    }

    /// Closing the gate holds the bridge inside its next call.
    pub(crate) fn set_gate_closed(&self, closed: bool) {
        *self.gate.lock().expect("gate") = closed;
        self.opened.notify_all();
    }

    pub(crate) fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("calls").clone()
    }

    pub(crate) fn last_seq_no(&self) -> u64 {
        self.calls
            .lock()
            .expect("calls")
            .last()
            .map_or(0, Call::seq_no)
    }

    /// Whether the last call was about `snapshot` (the same `Arc`).
    pub(crate) fn reached(&self, snapshot: &SnapshotEnvelope) -> bool {
        match self.calls.lock().expect("calls").last() {
            Some(Call::Snapshot(s) | Call::Resync(s)) => Arc::ptr_eq(s, snapshot),
            Some(Call::Topology(t)) => Arc::ptr_eq(&t.snapshot, snapshot),
            _ => false,
        }
    }

    fn record(&self, call: Call) {
        let mut closed = self.gate.lock().expect("gate");
        while *closed {
            closed = self.opened.wait(closed).expect("gate");
        }
        drop(closed);
        if let Some(delay) = self.delay {
            std::thread::sleep(delay);
        }
        let seq_no = call.seq_no();
        let is_resync = matches!(call, Call::Resync(_));
        self.calls.lock().expect("calls").push(call);
        if self.panic_on == Some(seq_no) && !is_resync {
            panic!("test bridge panics on seq_no {seq_no}");
        }
    }
}

impl PlacementSupervisorBridge for RecordingBridge {
    fn apply_snapshot(&self, envelope: &SnapshotEnvelope) {
        self.record(Call::Snapshot(envelope.clone()));
    }
    fn provider_changed(&self, envelope: &ChangeEnvelope) {
        self.record(Call::Changed(envelope.clone()));
    }
    fn resync(&self, envelope: &SnapshotEnvelope) {
        self.record(Call::Resync(envelope.clone()));
    }
}

impl PartitionManagerBridge for RecordingBridge {
    fn apply_snapshot(&self, envelope: &SnapshotEnvelope) {
        self.record(Call::Snapshot(envelope.clone()));
    }
    fn provider_changed(&self, envelope: &ChangeEnvelope) {
        self.record(Call::Changed(envelope.clone()));
    }
    fn resync(&self, envelope: &SnapshotEnvelope) {
        self.record(Call::Resync(envelope.clone()));
    }
}

impl RemotingBridge for RecordingBridge {
    fn publish_remote_topology(&self, envelope: &TopologyEnvelope) {
        self.record(Call::Topology(envelope.clone()));
    }
    fn resync(&self, envelope: &SnapshotEnvelope) {
        self.record(Call::Resync(envelope.clone()));
    }
}
