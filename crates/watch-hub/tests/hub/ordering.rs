//! Ordering under random sequences: replaying what a bridge and a
//! subscriber received reproduces every published snapshot.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use provisioning_provider_api::{
    ClusterNode, Incarnation, MemberState, NodeId, ProviderHealth, ProviderSnapshot, SwitchReason,
    TopologyEventKind, TopologyView,
};
use provisioning_watch_hub::wire::{EventLine, ProvisioningEvent, PublishedSnapshot};
use provisioning_watch_hub::{EventSubscription, HubConfig, ProviderWatchHub, PublishOutcome};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::support::{Call, RecordingBridge, pid, wait_until};

/// A random change of `current`: members join, leave, change, restart under
/// a new incarnation or turn draining and back, ids are blocked and
/// unblocked; sometimes a large shrink.
fn mutate(rng: &mut StdRng, current: &ProviderSnapshot) -> ProviderSnapshot {
    let mut members: BTreeMap<NodeId, ClusterNode> = current
        .members()
        .iter()
        .map(|m| (m.id.clone(), m.clone()))
        .collect();
    let mut blocked: Vec<NodeId> = current.blocked().to_vec();
    if rng.random_bool(0.1) && !members.is_empty() {
        let keep = members.len() / 4;
        members = members.into_iter().take(keep).collect();
    }
    for _ in 0..rng.random_range(1..4) {
        let id = NodeId::from(format!("n{:02}", rng.random_range(0..30)));
        match rng.random_range(0..7) {
            0 | 1 => {
                members.insert(id.clone(), ClusterNode::new(id, "10.0.0.1", 4000));
            }
            2 => {
                members.remove(&id);
            }
            3 => {
                let port = rng.random_range(4000..4003);
                members.insert(
                    id.clone(),
                    ClusterNode::new(id, "10.0.0.2", port).with_label("zone", "b"),
                );
            }
            4 => {
                // A restart at the same place: only the incarnation differs.
                let incarnation = Incarnation::new(format!("i{}", rng.random_range(0..1000)))
                    .expect("valid incarnation");
                let node = members
                    .remove(&id)
                    .unwrap_or_else(|| ClusterNode::new(id.clone(), "10.0.0.1", 4000));
                members.insert(id, node.with_incarnation(incarnation));
            }
            5 => {
                if let Some(node) = members.get_mut(&id) {
                    node.state = match node.state {
                        MemberState::Serving => MemberState::Draining,
                        MemberState::Draining => MemberState::Serving,
                    };
                }
            }
            _ => {
                if let Some(at) = blocked.iter().position(|b| *b == id) {
                    blocked.remove(at);
                } else {
                    blocked.push(id);
                }
            }
        }
    }
    ProviderSnapshot::new(members.into_values().collect(), blocked).expect("valid view")
}

/// Replays a remoting bridge's calls: a resync resets the view; the changes
/// of one publication, applied strictly, must yield its snapshot exactly.
fn replay_bridge(calls: &[Call]) -> usize {
    let mut view = TopologyView::new();
    let mut current: Option<Arc<PublishedSnapshot>> = None;
    let mut last_seq = 0;
    let mut checked = 0;
    let mut check = |view: &TopologyView, current: &Option<Arc<PublishedSnapshot>>| {
        if let Some(snapshot) = current {
            assert!(
                view.matches(snapshot.snapshot()),
                "replay differs at {snapshot:?}"
            );
            checked += 1;
        }
    };
    for call in calls {
        match call {
            Call::Resync(snapshot) => {
                check(&view, &current);
                view = TopologyView::from_snapshot(snapshot.snapshot());
                current = Some(snapshot.clone());
                last_seq = snapshot.seq_no();
            }
            Call::Topology(event) => {
                assert!(
                    event.seq_no > last_seq,
                    "seq_no {} after {last_seq}",
                    event.seq_no
                );
                last_seq = event.seq_no;
                if !current
                    .as_ref()
                    .is_some_and(|c| Arc::ptr_eq(c, &event.snapshot))
                {
                    check(&view, &current);
                    current = Some(event.snapshot.clone());
                }
                view.apply(&event.event).expect("a change that fits");
            }
            other => panic!("remoting got {other:?}"),
        }
    }
    check(&view, &current);
    checked
}

/// Replays a subscriber's lines the same way, checking that `seq_no`
/// strictly increases except for the snapshot re-sent after `resync`.
fn replay_stream(
    lines: &[Arc<ProvisioningEvent>],
    published: &BTreeMap<u64, Arc<PublishedSnapshot>>,
) -> usize {
    let mut view = TopologyView::new();
    let mut current: Option<Arc<PublishedSnapshot>> = None;
    let mut last_seq = 0;
    let mut after_resync = None;
    let mut checked = 0;
    // The changes of one publication come as leave, join, serving,
    // draining, unblocked, blocked, each sorted by id.
    let mut last_change: Option<(TopologyEventKind, NodeId)> = None;
    for line in lines {
        match &**line {
            ProvisioningEvent::Resync(resync) => {
                after_resync = Some(resync.as_of_seq_no);
                continue;
            }
            ProvisioningEvent::Snapshot(snapshot) => {
                if let Some(done) = &current {
                    assert!(view.matches(done.snapshot()), "replay differs at {done:?}");
                    checked += 1;
                }
                if after_resync.take() == Some(snapshot.seq_no()) {
                    view = TopologyView::from_snapshot(snapshot.snapshot());
                } else {
                    assert!(snapshot.seq_no() > last_seq);
                }
                assert!(
                    Arc::ptr_eq(&published[&snapshot.seq_no()], snapshot),
                    "shared, not copied"
                );
                current = Some(snapshot.clone());
                last_change = None;
            }
            ProvisioningEvent::RemoteTopology(event) => {
                assert!(event.seq_no > last_seq);
                let key = (event.event.kind(), event.event.node_id().clone());
                assert!(
                    last_change.as_ref().is_none_or(|last| *last < key),
                    "{key:?} after {last_change:?}"
                );
                last_change = Some(key);
                view.apply(&event.event).expect("a change that fits");
            }
            other => assert!(other.seq_no() > last_seq, "{other:?} after {last_seq}"),
        }
        last_seq = line.seq_no();
    }
    if let Some(done) = &current {
        assert!(view.matches(done.snapshot()));
        checked += 1;
    }
    checked
}

#[test]
fn replaying_random_sequences_reproduces_every_published_member_and_blocked_set() {
    let mut resyncs = 0;
    let mut lifecycle_changes = [0usize; 2];
    // Seeds below 16 use tiny queues and a gated bridge, so consumers fall
    // behind and resync; the others use queues that never overflow, so
    // every published snapshot must be replayed.
    for seed in 0..24 {
        let lossless = seed >= 16;
        let mut rng = StdRng::seed_from_u64(seed);
        let capacity = if lossless { 1024 } else { 3 };
        let mut hub =
            ProviderWatchHub::new(HubConfig::new().with_queue_capacity(capacity)).expect("hub");
        let handle = hub.handle();
        let remoting = Arc::new(RecordingBridge::new());
        handle
            .attach_remoting("remoting", remoting.clone())
            .expect("attach");
        let mut events: EventSubscription = handle.subscribe_events("stream").expect("subscribe");
        let mut lines = Vec::new();
        let mut published = BTreeMap::new();
        let providers = [pid("a"), pid("b"), pid("c")];
        let mut active = 0;
        let mut now = Instant::now();
        let mut view = mutate(&mut rng, &ProviderSnapshot::empty());
        let first = hub
            .activate(providers[0].clone(), view.clone(), now)
            .expect("activate");
        assert!(matches!(first, PublishOutcome::Published { .. }));
        published.insert(
            hub.latest().expect("latest").seq_no(),
            hub.latest().expect("latest").clone(),
        );
        for _ in 0..80 {
            now += Duration::from_secs(1);
            let outcome = match rng.random_range(0..20) {
                0..=11 => {
                    view = mutate(&mut rng, &view);
                    hub.publish_active(providers[active].clone(), view.clone(), now)
                }
                12 | 13 => {
                    active = (active + rng.random_range(1..3)) % 3;
                    view = mutate(&mut rng, &view);
                    // Half of the switches go to a standby whose diff was
                    // prepared; the replay checks it is the right one.
                    if rng.random_bool(0.5) {
                        hub.assess_candidate(&providers[active], &view);
                    }
                    let reason = SwitchReason::ALL[rng.random_range(0..SwitchReason::ALL.len())];
                    hub.switch(None, providers[active].clone(), reason, view.clone(), now)
                }
                14 => hub.tick(now + Duration::from_secs(5)),
                15 => {
                    let standby = providers[(active + 1) % 3].clone();
                    let candidate = hub.held_shrink().cloned().unwrap_or_else(|| view.clone());
                    // Prepared, then often made stale by a publication.
                    hub.assess_candidate(&standby, &mutate(&mut rng, &candidate));
                    hub.observe_standby(&standby, &candidate, now)
                }
                16 => {
                    hub.provider_health(
                        providers[active].clone(),
                        ProviderHealth::Degraded,
                        Some("timeout"),
                        "slow",
                    );
                    PublishOutcome::Unchanged
                }
                17 => {
                    remoting.set_gate_closed(!lossless && rng.random_bool(0.5));
                    PublishOutcome::Unchanged
                }
                _ => {
                    lines.extend(super::support::drain(&mut events));
                    PublishOutcome::Unchanged
                }
            };
            if let PublishOutcome::Published { seq_no } = outcome {
                let latest = hub.latest().expect("latest").clone();
                assert_eq!(latest.seq_no(), seq_no);
                published.insert(seq_no, latest);
            }
        }
        // A final change, so the last line is a change the bridge must see.
        let mut last = view.members().to_vec();
        last.push(ClusterNode::new("final", "10.0.0.9", 1));
        let last = ProviderSnapshot::new(last, view.blocked().to_vec()).expect("valid view");
        hub.switch(
            None,
            providers[active].clone(),
            SwitchReason::ManualOverride,
            last,
            now,
        );
        let latest = hub.latest().expect("latest").clone();
        published.insert(latest.seq_no(), latest.clone());
        remoting.set_gate_closed(false);
        assert!(
            wait_until(Duration::from_secs(5), || remoting.reached(&latest)),
            "seed {seed}"
        );
        lines.extend(super::support::drain(&mut events));
        // Every line reads back as it was published.
        for line in &lines {
            let parsed: EventLine = serde_json::from_str(&line.to_json_line()).expect("parses");
            assert_eq!(parsed, EventLine::from(&**line), "seed {seed}");
        }
        for line in &lines {
            if let ProvisioningEvent::RemoteTopology(change) = &**line {
                match change.event.kind() {
                    TopologyEventKind::Serving => lifecycle_changes[0] += 1,
                    TopologyEventKind::Draining => lifecycle_changes[1] += 1,
                    _ => {}
                }
            }
        }
        let bridge_checked = replay_bridge(&remoting.calls());
        let stream_checked = replay_stream(&lines, &published);
        assert!(bridge_checked > 0 && stream_checked > 0, "seed {seed}");
        if lossless {
            assert_eq!(
                stream_checked,
                published.len(),
                "seed {seed}: every snapshot replayed"
            );
            let seen: Vec<u64> = lines
                .iter()
                .filter_map(|l| l.as_snapshot().map(|s| s.seq_no()))
                .collect();
            assert_eq!(
                seen,
                published.keys().copied().collect::<Vec<_>>(),
                "seed {seed}"
            );
            let seqs: Vec<u64> = lines.iter().map(|l| l.seq_no()).collect();
            assert_eq!(
                seqs,
                (1..=hub.last_seq_no()).collect::<Vec<_>>(),
                "seed {seed}: every line, in order, once"
            );
        }
        assert!(
            lines.last().is_some_and(|l| l.seq_no() >= latest.seq_no()),
            "seed {seed}: the subscriber reached the end"
        );
        resyncs += handle.consumers().iter().map(|c| c.resyncs).sum::<u64>();
        hub.shutdown(Duration::from_secs(5)).expect("shutdown");
    }
    assert!(resyncs > 0, "the sequences forced resyncs");
    assert!(
        lifecycle_changes.iter().all(|n| *n > 0),
        "serving and draining events were replayed: {lifecycle_changes:?}"
    );
    println!("serving and draining events replayed: {lifecycle_changes:?}");
}
