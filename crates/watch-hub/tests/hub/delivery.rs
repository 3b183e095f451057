//! Delivery to bridges: slow and panicking bridges are isolated, bridges may
//! call back into the service, default adapters deduplicate.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use provisioning_watch_hub::wire::{ChangeEnvelope, SnapshotEnvelope};
use provisioning_watch_hub::{
    DedupBridge, HubConfig, HubHandle, PlacementSupervisorBridge, ProviderWatchHub, PublishOutcome,
};

use super::support::{Call, RecordingBridge, numbered, pid, wait_until};

#[test]
fn a_slow_bridge_does_not_delay_the_others_and_receives_a_resync() {
    // 16 publications fill a queue in about 32 ms: the slow bridge (40 ms a
    // call) overflows, the fast ones need only be scheduled once in that time.
    let mut hub = ProviderWatchHub::new(HubConfig::new().with_queue_capacity(16)).expect("hub");
    let handle = hub.handle();
    let slow = Arc::new(RecordingBridge::slow(Duration::from_millis(40)));
    let fast = Arc::new(RecordingBridge::new());
    let remoting = Arc::new(RecordingBridge::new());
    handle
        .attach_placement("slow", slow.clone())
        .expect("attach");
    handle
        .attach_partition("fast", fast.clone())
        .expect("attach");
    handle
        .attach_remoting("remoting", remoting.clone())
        .expect("attach");
    let t0 = Instant::now();
    hub.activate(pid("a"), numbered(20), t0).expect("activate");
    let started = Instant::now();
    let mut last = 0;
    for i in 1..=30 {
        // One member more each time: never a shrink.
        std::thread::sleep(Duration::from_millis(2));
        let call = Instant::now();
        let outcome = hub.publish_active(pid("a"), numbered(20 + i), t0);
        let took = call.elapsed();
        assert!(
            took < Duration::from_millis(20),
            "a publication took {took:?}: the hub waited for the slow bridge"
        );
        let PublishOutcome::Published { seq_no } = outcome else {
            panic!("{outcome:?}");
        };
        last = seq_no;
    }
    assert!(wait_until(Duration::from_secs(2), || fast.last_seq_no() == last));
    let latest = hub.latest().expect("latest").clone();
    assert!(wait_until(Duration::from_secs(2), || remoting.reached(&latest)));
    let fast_done = started.elapsed();
    assert!(
        slow.last_seq_no() < last,
        "the fast bridges finished in {fast_done:?} before the slow one"
    );
    let fast_calls = fast.calls();
    assert_eq!(fast_calls.len(), 31, "the fast bridge got every snapshot");
    assert!(fast_calls.iter().all(|c| matches!(c, Call::Snapshot(_))));

    assert!(wait_until(Duration::from_secs(5), || slow.last_seq_no() == last));
    let slow_calls = slow.calls();
    assert!(
        slow_calls.iter().any(|c| matches!(c, Call::Resync(_))),
        "{slow_calls:?}"
    );
    let Some(Call::Resync(resent) | Call::Snapshot(resent)) = slow_calls.last() else {
        panic!("slow bridge ends on a snapshot");
    };
    assert!(
        Arc::ptr_eq(resent, hub.latest().expect("latest")),
        "shared, not copied"
    );
    let stats = handle.consumers();
    let slow_stats = stats.iter().find(|c| c.name == "slow").expect("slow stats");
    assert!(
        slow_stats.overflows >= 1 && slow_stats.resyncs >= 1,
        "{slow_stats:?}"
    );
    hub.shutdown(Duration::from_secs(5)).expect("shutdown");
}

#[test]
fn a_panicking_bridge_is_isolated_reported_and_resynced() {
    let mut hub = ProviderWatchHub::new(HubConfig::new()).expect("hub");
    let handle = hub.handle();
    let panicking = Arc::new(RecordingBridge::panicking_on(3));
    let healthy = Arc::new(RecordingBridge::new());
    handle
        .attach_placement("panicking", panicking.clone())
        .expect("attach");
    handle
        .attach_placement("healthy", healthy.clone())
        .expect("attach");
    let t0 = Instant::now();
    hub.activate(pid("a"), numbered(1), t0).expect("activate"); // 1, 2
    hub.publish_active(pid("a"), numbered(2), t0); // 3, 4: panics on 3
    hub.publish_active(pid("a"), numbered(3), t0); // 5, 6
    let last = hub.latest().expect("latest").seq_no();
    assert!(wait_until(Duration::from_secs(2), || healthy.last_seq_no() == last));
    assert!(wait_until(Duration::from_secs(2), || panicking
        .last_seq_no()
        == last));
    let seqs: Vec<u64> = healthy.calls().iter().map(Call::seq_no).collect();
    assert_eq!(seqs, [1, 3, 5]);
    let calls = panicking.calls();
    assert!(
        calls.iter().any(|c| matches!(c, Call::Resync(_))),
        "a panic is followed by a resync: {calls:?}"
    );
    let stats = handle.consumers();
    let panics = stats
        .iter()
        .find(|c| c.name == "panicking")
        .expect("stats")
        .panics;
    assert_eq!(panics, 1);
    assert_eq!(
        stats
            .iter()
            .find(|c| c.name == "healthy")
            .expect("stats")
            .panics,
        0
    );
    hub.shutdown(Duration::from_secs(5)).expect("shutdown");
}

/// A bridge that, inside its call, uses the hub handle and asks the driver
/// for more work, as a runtime pinning a provider would.
struct CallingBack {
    handle: HubHandle,
    driver: std::sync::Mutex<mpsc::Sender<u64>>,
    attached: std::sync::Mutex<Vec<Arc<RecordingBridge>>>,
}

impl PlacementSupervisorBridge for CallingBack {
    fn apply_snapshot(&self, envelope: &SnapshotEnvelope) {
        assert!(self.handle.latest().is_some());
        assert!(self.handle.history().since(0).is_ok() || envelope.seq_no() > 0);
        let _subscription = self
            .handle
            .subscribe_events("nested")
            .expect("subscribe inside a call");
        let extra = Arc::new(RecordingBridge::new());
        self.handle
            .attach_placement(format!("extra-{}", envelope.seq_no()), extra.clone())
            .expect("attach inside a call");
        self.attached.lock().expect("attached").push(extra);
        let _ = self.driver.lock().expect("driver").send(envelope.seq_no());
    }
    fn provider_changed(&self, _: &ChangeEnvelope) {}
}

#[test]
fn a_bridge_may_call_back_into_the_service_without_deadlock() {
    let mut hub = ProviderWatchHub::new(HubConfig::new()).expect("hub");
    let (tx, rx) = mpsc::channel();
    let bridge = Arc::new(CallingBack {
        handle: hub.handle(),
        driver: std::sync::Mutex::new(tx),
        attached: std::sync::Mutex::new(Vec::new()),
    });
    hub.handle()
        .attach_placement("calls-back", bridge.clone())
        .expect("attach");
    let t0 = Instant::now();
    hub.activate(pid("a"), numbered(1), t0).expect("activate");
    // The driver reacts to each request by publishing again, three times.
    for round in 2..=4 {
        let seen = rx
            .recv_timeout(Duration::from_secs(2))
            .expect("bridge called back");
        assert!(seen > 0);
        hub.publish_active(pid("a"), numbered(round), t0);
    }
    rx.recv_timeout(Duration::from_secs(2))
        .expect("last call back");
    let attached = bridge.attached.lock().expect("attached").clone();
    assert_eq!(attached.len(), 4);
    let latest = hub.latest().expect("latest").seq_no();
    assert!(wait_until(Duration::from_secs(2), || attached
        .iter()
        .all(|b| b.last_seq_no() == latest)));
    hub.shutdown(Duration::from_secs(5)).expect("shutdown");
}

#[test]
fn dedup_adapter_drops_duplicates_and_stale_envelopes_and_resets_on_resync() {
    let inner = RecordingBridge::new();
    let bridge = DedupBridge::new(inner);
    let mut hub = ProviderWatchHub::new(HubConfig::new()).expect("hub");
    let t0 = Instant::now();
    hub.activate(pid("a"), numbered(1), t0).expect("activate");
    let first = hub.latest().expect("latest").clone();
    hub.publish_active(pid("a"), numbered(2), t0);
    let second = hub.latest().expect("latest").clone();
    PlacementSupervisorBridge::apply_snapshot(&bridge, &second);
    PlacementSupervisorBridge::apply_snapshot(&bridge, &second); // duplicate
    PlacementSupervisorBridge::apply_snapshot(&bridge, &first); // stale
    assert_eq!(bridge.dropped(), 2);
    PlacementSupervisorBridge::resync(&bridge, &first); // resets to 1
    PlacementSupervisorBridge::apply_snapshot(&bridge, &second);
    let seqs: Vec<u64> = bridge.inner().calls().iter().map(Call::seq_no).collect();
    assert_eq!(seqs, [3, 1, 3]);
    assert_eq!(bridge.high_water_mark(), Some((hub.run_id(), 3)));
}

#[test]
fn latency_is_recorded_only_once_the_last_consumer_has_the_snapshot() {
    let mut hub = ProviderWatchHub::new(HubConfig::new()).expect("hub");
    let fast = Arc::new(RecordingBridge::new());
    let held = Arc::new(RecordingBridge::new());
    held.set_gate_closed(true);
    hub.handle()
        .attach_placement("fast", fast.clone())
        .expect("attach");
    hub.handle()
        .attach_remoting("held", held.clone())
        .expect("attach");
    hub.activate(pid("a"), numbered(2), Instant::now())
        .expect("activate");
    let latest = hub.latest().expect("latest").clone();
    assert!(wait_until(Duration::from_secs(2), || fast.reached(&latest)));
    std::thread::sleep(Duration::from_millis(20));
    let count = |hub: &ProviderWatchHub| {
        hub.metrics()
            .view()
            .providers
            .get(&pid("a"))
            .map_or(0, |p| p.snapshot_latency.count)
    };
    assert_eq!(count(&hub), 0, "one consumer does not have it yet");
    held.set_gate_closed(false);
    assert!(wait_until(Duration::from_secs(2), || count(&hub) == 1));
    let view = hub.metrics().view();
    let latency = &view.providers[&pid("a")].snapshot_latency;
    assert!(
        latency.sum_seconds >= 0.02,
        "covers the held consumer: {latency:?}"
    );
    hub.shutdown(Duration::from_secs(5)).expect("shutdown");
}

#[test]
fn an_event_subscriber_that_falls_behind_gets_resync_and_the_current_snapshot() {
    let mut hub = ProviderWatchHub::new(HubConfig::new().with_queue_capacity(2)).expect("hub");
    let mut events = hub.handle().subscribe_events("lagging").expect("subscribe");
    let t0 = Instant::now();
    hub.activate(pid("a"), numbered(1), t0).expect("activate");
    for n in 2..=6 {
        hub.publish_active(pid("a"), numbered(n), t0);
    }
    let lines = super::support::drain(&mut events);
    let latest = hub.latest().expect("latest").clone();
    let at = lines
        .iter()
        .position(|l| l.type_name() == "resync")
        .expect("a resync after the overflow");
    let provisioning_watch_hub::wire::ProvisioningEvent::Resync(resync) = &*lines[at] else {
        unreachable!()
    };
    let resent = lines[at + 1].as_snapshot().expect("the snapshot follows");
    assert_eq!(resync.as_of_seq_no, resent.seq_no());
    assert!(Arc::ptr_eq(resent, &latest));
    assert_eq!(lines.len(), at + 2, "no diff follows the re-sent snapshot");
    assert!(events.stats().overflows >= 1);
    let mut filter = provisioning_watch_hub::SeqFilter::new();
    let accepted: Vec<u64> = lines
        .iter()
        .filter(|l| filter.accept_event(l))
        .map(|l| l.seq_no())
        .collect();
    assert_eq!(accepted.last(), Some(&latest.seq_no()));
}

#[test]
fn a_transaction_holds_every_wake_up_until_it_ends() {
    let mut hub = ProviderWatchHub::new(HubConfig::new()).expect("hub");
    let handle = hub.handle();
    let bridge = Arc::new(RecordingBridge::new());
    handle
        .attach_placement("placement", bridge.clone())
        .expect("attach");
    let t0 = Instant::now();
    hub.activate(pid("a"), numbered(3), t0).expect("activate");
    let first = hub.latest().expect("latest").clone();
    assert!(wait_until(Duration::from_secs(5), || bridge.reached(&first)));
    let seen = bridge.calls().len();
    // Let the bridge thread park and the notifier go quiet: a consumer that
    // is still awake may take what is queued without being woken, and a
    // transaction only holds wake-ups.
    std::thread::sleep(Duration::from_millis(50));

    ProviderWatchHub::transaction(&mut hub, |hub| {
        ProviderWatchHub::transaction(hub, |hub| {
            for i in 1..=3 {
                let outcome = hub.publish_active(pid("a"), numbered(3 + i), t0);
                assert!(
                    matches!(outcome, PublishOutcome::Published { .. }),
                    "{outcome:?}"
                );
            }
            // Neither a quiet-spell wake-up nor the notifier's polling may
            // deliver while a transaction is open.
            std::thread::sleep(Duration::from_millis(100));
            assert_eq!(
                bridge.calls().len(),
                seen,
                "delivered inside the transaction"
            );
        });
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(
            bridge.calls().len(),
            seen,
            "the outer transaction is still open"
        );
    });
    let last = hub.latest().expect("latest").clone();
    let started = Instant::now();
    assert!(wait_until(Duration::from_secs(5), || bridge.reached(&last)));
    println!(
        "3 publications delivered {:?} after the transaction ended",
        started.elapsed()
    );
    let seqs: Vec<u64> = bridge.calls()[seen..].iter().map(Call::seq_no).collect();
    assert_eq!(seqs.len(), 3, "{seqs:?}");
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
}

#[test]
fn an_assessment_inside_a_transaction_wakes_what_it_published_first() {
    let mut hub = ProviderWatchHub::new(HubConfig::new()).expect("hub");
    let handle = hub.handle();
    let bridge = Arc::new(RecordingBridge::new());
    handle
        .attach_placement("placement", bridge.clone())
        .expect("attach");
    let t0 = Instant::now();
    hub.activate(pid("a"), numbered(3), t0).expect("activate");
    let first = hub.latest().expect("latest").clone();
    assert!(wait_until(Duration::from_secs(5), || bridge.reached(&first)));
    std::thread::sleep(Duration::from_millis(50));

    ProviderWatchHub::transaction(&mut hub, |hub| {
        let outcome = hub.publish_active(pid("a"), numbered(4), t0);
        assert!(
            matches!(outcome, PublishOutcome::Published { .. }),
            "{outcome:?}"
        );
        let published = hub.latest().expect("latest").clone();
        hub.assess_candidate(&pid("b"), &numbered(4));
        // Still inside the transaction: only the assessment can have woken
        // the bridge.
        let started = Instant::now();
        assert!(
            wait_until(Duration::from_secs(5), || bridge.reached(&published)),
            "the assessment did not wake the consumers of the step"
        );
        println!("delivered {:?} after the assessment", started.elapsed());
    });
}

#[test]
fn a_burst_of_publications_reaches_every_consumer_in_order() {
    // Back-to-back publications are woken through the notifier's polling;
    // the last one must still arrive, and nothing may be skipped or
    // reordered for a consumer that keeps up.
    let mut hub = ProviderWatchHub::new(HubConfig::new().with_queue_capacity(1024)).expect("hub");
    let handle = hub.handle();
    let bridge = Arc::new(RecordingBridge::new());
    handle
        .attach_partition("partition", bridge.clone())
        .expect("attach");
    let mut events = handle.subscribe_events("events").expect("subscribe");
    let t0 = Instant::now();
    hub.activate(pid("a"), numbered(1), t0).expect("activate");
    for i in 2..=300 {
        let outcome = hub.publish_active(pid("a"), numbered(i), t0);
        assert!(
            matches!(outcome, PublishOutcome::Published { .. }),
            "{outcome:?}"
        );
    }
    let last = hub.latest().expect("latest").clone();
    assert!(wait_until(Duration::from_secs(10), || bridge.reached(&last)));
    let seqs: Vec<u64> = bridge.calls().iter().map(Call::seq_no).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    // Snapshots only (a partition bridge takes no diff events): one per
    // publication, the first as a resync or a snapshot.
    assert_eq!(seqs.len(), 300, "{seqs:?}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let lines = runtime.block_on(async {
        let mut lines = Vec::new();
        while lines
            .last()
            .is_none_or(|l: &Arc<provisioning_watch_hub::wire::ProvisioningEvent>| {
                l.seq_no() < last.seq_no()
            })
        {
            match tokio::time::timeout(Duration::from_secs(10), events.recv()).await {
                Ok(Some(line)) => lines.push(line),
                _ => break,
            }
        }
        lines
    });
    let seqs: Vec<u64> = lines.iter().map(|l| l.seq_no()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "event stream out of order"
    );
    assert_eq!(
        seqs.last().copied(),
        Some(last.seq_no()),
        "event stream stopped early"
    );
}

/// Attaches `stuck` bridges, then `free` ones; after their first resync the
/// stuck ones block inside their next call. Every publication must reach
/// the free ones while the stuck ones stay blocked, and the stuck ones
/// catch up when released.
fn bridges_blocked_in_a_call_hold_up_no_other(stuck: usize, free: usize) {
    let mut hub = ProviderWatchHub::new(HubConfig::new()).expect("hub");
    let handle = hub.handle();
    let t0 = Instant::now();
    hub.activate(pid("a"), numbered(1), t0).expect("activate");
    let mut bridges = Vec::new();
    for i in 0..stuck + free {
        let bridge = Arc::new(RecordingBridge::new());
        // Stuck ones first: they are queued, and taken, before the others,
        // so the thread that takes a stuck one must not be the one the
        // others wait for.
        handle
            .attach_placement(format!("bridge-{i}"), bridge.clone())
            .expect("attach");
        bridges.push(bridge);
    }
    for bridge in &bridges {
        assert!(wait_until(Duration::from_secs(5), || bridge.calls().len() == 1));
    }
    for bridge in &bridges[..stuck] {
        bridge.set_gate_closed(true);
    }
    let mut last = 0;
    for i in 2..=6 {
        std::thread::sleep(Duration::from_millis(2));
        let PublishOutcome::Published { seq_no } = hub.publish_active(pid("a"), numbered(i), t0)
        else {
            panic!("not published");
        };
        last = seq_no;
        for (n, bridge) in bridges.iter().enumerate().skip(stuck) {
            assert!(
                wait_until(Duration::from_secs(5), || bridge.last_seq_no() == seq_no),
                "bridge-{n} missed seq_no {seq_no} while {stuck} bridges are stuck in a call"
            );
        }
    }
    for bridge in &bridges[..stuck] {
        assert_eq!(bridge.calls().len(), 1, "held at its gate");
        bridge.set_gate_closed(false);
    }
    for (n, bridge) in bridges.iter().enumerate() {
        assert!(
            wait_until(Duration::from_secs(5), || bridge.last_seq_no() == last),
            "bridge-{n} caught up"
        );
        // A resync first (the attach), then the snapshots in order.
        let seqs: Vec<u64> = bridge.calls().iter().map(Call::seq_no).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "bridge-{n}: {seqs:?}");
    }
    hub.shutdown(Duration::from_secs(5)).expect("shutdown");
}

#[test]
fn a_bridge_blocked_in_a_call_holds_up_no_other_bridge() {
    bridges_blocked_in_a_call_hold_up_no_other(1, 3);
}

#[test]
fn all_but_one_bridge_blocked_in_a_call_still_leaves_a_thread_for_the_last() {
    bridges_blocked_in_a_call_hold_up_no_other(3, 1);
}
