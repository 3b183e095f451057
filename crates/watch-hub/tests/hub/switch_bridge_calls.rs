//! Which calls the three bridges get on a provider switch, in which order
//! and how often, checked with mockall: `provider_changed` once, before the
//! new provider's snapshot, and nothing else.
//!
//! The bridge crew calls the mocks from its own threads, where a panic (an
//! unexpected or out-of-order call) is caught and counted by the hub, so the
//! test waits for each bridge's last expected call through a channel
//! signalled from that call, then checks the hub's panic counters and takes
//! the mocks back to verify them on the test thread.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mockall::{Sequence, mock};
use provisioning_provider_api::{ProviderSnapshot, SwitchReason, TopologyEventKind};
use provisioning_watch_hub::wire::{ChangeEnvelope, SnapshotEnvelope, TopologyEnvelope};
use provisioning_watch_hub::{
    HubConfig, HubHandle, PartitionManagerBridge, PlacementSupervisorBridge, ProviderWatchHub,
    RemotingBridge,
};

use super::support::{pid, view};

mock! {
    Placement {}
    impl PlacementSupervisorBridge for Placement {
        fn apply_snapshot(&self, envelope: &SnapshotEnvelope);
        fn provider_changed(&self, envelope: &ChangeEnvelope);
        fn resync(&self, envelope: &SnapshotEnvelope);
    }
}

mock! {
    Partition {}
    impl PartitionManagerBridge for Partition {
        fn apply_snapshot(&self, envelope: &SnapshotEnvelope);
        fn provider_changed(&self, envelope: &ChangeEnvelope);
        fn resync(&self, envelope: &SnapshotEnvelope);
    }
}

mock! {
    Remoting {}
    impl RemotingBridge for Remoting {
        fn publish_remote_topology(&self, envelope: &TopologyEnvelope);
        fn resync(&self, envelope: &SnapshotEnvelope);
    }
}

/// Generous: the crew delivers within microseconds; only a failure waits
/// this long.
const WAIT: Duration = Duration::from_secs(5);

/// What the test switches between: `a` publishes `{n1}`, then the switch
/// to `b` publishes `{n2}`.
struct Scenario {
    first: ProviderSnapshot,
    second: ProviderSnapshot,
}

impl Scenario {
    fn new() -> Self {
        Self {
            first: view(&["n1"], &[]),
            second: view(&["n2"], &[]),
        }
    }

    fn is_first(&self) -> impl Fn(&SnapshotEnvelope) -> bool + Send + 'static {
        let hash = self.first.hash();
        move |s| s.epoch() == 1 && s.provider_id().as_str() == "a" && s.hash() == hash
    }

    fn is_second(&self) -> impl Fn(&SnapshotEnvelope) -> bool + Send + 'static {
        let hash = self.second.hash();
        move |s| s.epoch() == 2 && s.provider_id().as_str() == "b" && s.hash() == hash
    }

    fn is_switch(&self) -> impl Fn(&ChangeEnvelope) -> bool + Send + 'static {
        let hash = self.second.hash();
        move |c| {
            c.epoch == 2
                && c.from_provider_id.as_ref().map(|p| p.as_str()) == Some("a")
                && c.to_provider_id.as_str() == "b"
                && c.reason == SwitchReason::ManualOverride
                && c.snapshot_hash == hash
        }
    }
}

/// A change of `kind` for `node` leading to the snapshot `epoch` of
/// provider `provider`.
fn is_change(
    kind: TopologyEventKind,
    node: &'static str,
    provider: &'static str,
    epoch: u64,
) -> impl Fn(&TopologyEnvelope) -> bool + Send + 'static {
    move |t| {
        t.event.kind() == kind
            && t.event.node_id().as_str() == node
            && t.provider_id().as_str() == provider
            && t.epoch() == epoch
    }
}

fn placement(s: &Scenario, done: mpsc::Sender<&'static str>) -> MockPlacement {
    let mut seq = Sequence::new();
    let mut mock = MockPlacement::new();
    mock.expect_apply_snapshot()
        .withf(s.is_first())
        .times(1)
        .in_sequence(&mut seq)
        .return_const(());
    mock.expect_provider_changed()
        .withf(s.is_switch())
        .times(1)
        .in_sequence(&mut seq)
        .return_const(());
    mock.expect_apply_snapshot()
        .withf(s.is_second())
        .times(1)
        .in_sequence(&mut seq)
        .returning(move |_| {
            let _ = done.send("placement");
        });
    mock.expect_resync().never();
    mock
}

fn partition(s: &Scenario, done: mpsc::Sender<&'static str>) -> MockPartition {
    let mut seq = Sequence::new();
    let mut mock = MockPartition::new();
    mock.expect_apply_snapshot()
        .withf(s.is_first())
        .times(1)
        .in_sequence(&mut seq)
        .return_const(());
    mock.expect_provider_changed()
        .withf(s.is_switch())
        .times(1)
        .in_sequence(&mut seq)
        .return_const(());
    mock.expect_apply_snapshot()
        .withf(s.is_second())
        .times(1)
        .in_sequence(&mut seq)
        .returning(move |_| {
            let _ = done.send("partition");
        });
    mock.expect_resync().never();
    mock
}

/// Remoting has no `provider_changed`: it gets the changes from the old
/// provider's published view to the new one's, each once, leaves before
/// joins, all pointing at the new snapshot.
fn remoting(done: mpsc::Sender<&'static str>) -> MockRemoting {
    let mut seq = Sequence::new();
    let mut mock = MockRemoting::new();
    mock.expect_publish_remote_topology()
        .withf(is_change(TopologyEventKind::Join, "n1", "a", 1))
        .times(1)
        .in_sequence(&mut seq)
        .return_const(());
    mock.expect_publish_remote_topology()
        .withf(is_change(TopologyEventKind::Leave, "n1", "b", 2))
        .times(1)
        .in_sequence(&mut seq)
        .return_const(());
    mock.expect_publish_remote_topology()
        .withf(is_change(TopologyEventKind::Join, "n2", "b", 2))
        .times(1)
        .in_sequence(&mut seq)
        .returning(move |_| {
            let _ = done.send("remoting");
        });
    mock.expect_resync().never();
    mock
}

/// Takes a mock back from the hub (which released it at shutdown) so that
/// its expectations are verified here, not on a crew thread.
fn reclaim<T>(bridge: Arc<T>, name: &str) -> T {
    Arc::try_unwrap(bridge)
        .ok()
        .unwrap_or_else(|| panic!("the hub still holds the {name} bridge after shutdown"))
}

fn assert_no_bridge_panicked(handle: &HubHandle) {
    let stats = handle.consumers();
    assert!(
        stats.iter().all(|c| c.panics == 0),
        "a bridge got a call it did not expect (see the panic above): {stats:?}"
    );
}

#[test]
fn a_switch_calls_provider_changed_once_before_the_new_snapshot_on_every_bridge() {
    let scenario = Scenario::new();
    let (done_tx, done_rx) = mpsc::channel();
    let placement = Arc::new(placement(&scenario, done_tx.clone()));
    let partition = Arc::new(partition(&scenario, done_tx.clone()));
    let remoting = Arc::new(remoting(done_tx));

    let mut hub = ProviderWatchHub::new(HubConfig::new()).expect("hub");
    let handle = hub.handle();
    // Attached before the first publication: no resync to start with.
    handle
        .attach_consumers(placement.clone(), partition.clone(), remoting.clone())
        .expect("attach");
    let now = Instant::now();
    hub.activate(pid("a"), scenario.first.clone(), now)
        .expect("activate");
    hub.switch(
        Some(pid("a")),
        pid("b"),
        SwitchReason::ManualOverride,
        scenario.second.clone(),
        now,
    );

    let started = Instant::now();
    let mut finished = Vec::new();
    while finished.len() < 3 {
        match done_rx.recv_timeout(WAIT) {
            Ok(name) => finished.push(name),
            Err(_) => {
                assert_no_bridge_panicked(&handle);
                panic!("only {finished:?} got the switch within {WAIT:?}");
            }
        }
    }
    println!("every bridge had the switch after {:?}", started.elapsed());
    hub.shutdown(WAIT).expect("shutdown");
    assert_no_bridge_panicked(&handle);
    drop(hub);
    drop(handle);
    reclaim(placement, "placement").checkpoint();
    reclaim(partition, "partition").checkpoint();
    reclaim(remoting, "remoting").checkpoint();
}
