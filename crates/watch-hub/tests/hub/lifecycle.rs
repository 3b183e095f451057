//! Retention for late subscribers, the latest-topology receiver, shutdown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use provisioning_provider_api::{ProviderHealth, ProviderTermination};
use provisioning_watch_hub::wire::ProvisioningEvent;
use provisioning_watch_hub::{HubConfig, ProviderWatchHub};

use super::support::{RecordingBridge, drain, numbered, pid, types};

#[test]
fn termination_is_retained_and_delivered_to_a_subscriber_that_arrives_later() {
    let mut hub = ProviderWatchHub::new(HubConfig::new()).expect("hub");
    let t0 = Instant::now();
    hub.activate(pid("k8s"), numbered(2), t0).expect("activate");
    let termination = ProviderTermination::Errored {
        reason: "watch ended: 403 forbidden".into(),
        permanent: true,
    };
    let seq = hub.terminated(pid("k8s"), &termination);
    hub.provider_health(
        pid("other"),
        ProviderHealth::Degraded,
        Some("timeout"),
        "slow",
    );

    let mut late = hub.handle().subscribe_events("late").expect("subscribe");
    let lines = drain(&mut late);
    assert_eq!(types(&lines), ["resync", "snapshot", "terminated"]);
    let ProvisioningEvent::Terminated(line) = &*lines[2] else {
        panic!("terminated line");
    };
    assert_eq!(line.seq_no, seq);
    assert_eq!(line.termination, termination);
    assert!(
        lines[2]
            .to_json_line()
            .contains(r#""reason":"errored","detail":"watch ended: 403 forbidden""#)
    );
    assert_eq!(hub.handle().retained().len(), 1);

    // Healthy again: no longer retained.
    hub.provider_health(pid("k8s"), ProviderHealth::Healthy, Some("ignored"), "back");
    assert!(hub.handle().retained().is_empty());
    let mut later = hub.handle().subscribe_events("later").expect("subscribe");
    assert_eq!(types(&drain(&mut later)), ["resync", "snapshot"]);
}

#[test]
fn unavailable_is_retained_until_the_next_snapshot() {
    let mut hub = ProviderWatchHub::new(HubConfig::new()).expect("hub");
    let t0 = Instant::now();
    hub.activate(pid("a"), numbered(2), t0).expect("activate");
    hub.unavailable(1_764_230_400_000);
    assert!(hub.handle().is_unavailable());
    assert_eq!(hub.active_provider(), None);
    let mut late = hub.handle().subscribe_events("late").expect("subscribe");
    let lines = drain(&mut late);
    assert_eq!(
        types(&lines),
        ["resync", "snapshot", "provisioning_unavailable"]
    );
    assert!(
        lines[2]
            .to_json_line()
            .ends_with(r#""since_ms":1764230400000}"#)
    );
    hub.switch(
        None,
        pid("b"),
        provisioning_provider_api::SwitchReason::Recovered,
        numbered(2),
        t0,
    );
    assert!(!hub.handle().is_unavailable());
    let mut after = hub.handle().subscribe_events("after").expect("subscribe");
    assert_eq!(types(&drain(&mut after)), ["resync", "snapshot"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topology_receiver_and_event_stream_follow_live_and_end_on_shutdown() {
    let mut hub = ProviderWatchHub::new(HubConfig::new()).expect("hub");
    let mut topology = hub.handle().subscribe_topology();
    assert!(topology.borrow().is_none());
    let mut events = hub.handle().subscribe_events("stream").expect("subscribe");
    let reader = tokio::spawn(async move {
        let mut seqs = Vec::new();
        while let Some(line) = events.recv().await {
            seqs.push(line.seq_no());
        }
        seqs
    });
    let t0 = Instant::now();
    hub.activate(pid("a"), numbered(1), t0).expect("activate");
    topology.changed().await.expect("first snapshot");
    let seen = topology.borrow_and_update().clone().expect("snapshot");
    assert!(Arc::ptr_eq(&seen, hub.latest().expect("latest")));
    hub.publish_active(pid("a"), numbered(2), t0);
    hub.shutdown(Duration::from_secs(5)).expect("shutdown");
    let seqs = tokio::time::timeout(Duration::from_secs(5), reader)
        .await
        .expect("the stream ends on shutdown")
        .expect("reader");
    assert_eq!(seqs, [1, 2, 3, 4]);
    // The watch channel closes too once the last snapshot was seen.
    topology.borrow_and_update();
    assert!(topology.changed().await.is_err());
}

#[test]
fn shutdown_joins_every_worker_thread_and_refuses_new_consumers() {
    let mut hub = ProviderWatchHub::new(HubConfig::new()).expect("hub");
    let bridges: Vec<Arc<RecordingBridge>> =
        (0..3).map(|_| Arc::new(RecordingBridge::new())).collect();
    let handle = hub.handle();
    handle
        .attach_consumers(bridges[0].clone(), bridges[1].clone(), bridges[2].clone())
        .expect("attach");
    hub.activate(pid("a"), numbered(3), Instant::now())
        .expect("activate");
    hub.shutdown(Duration::from_secs(5))
        .expect("every worker joined");
    for bridge in &bridges {
        assert_eq!(
            Arc::strong_count(bridge),
            1,
            "the worker thread ended and released its bridge"
        );
        assert!(
            bridge.last_seq_no() > 0,
            "queued work was delivered before the end"
        );
    }
    assert!(handle.is_shut_down());
    assert!(
        handle
            .attach_placement("late", Arc::new(RecordingBridge::new()))
            .is_err()
    );
    assert!(handle.subscribe_events("late").is_err());
    hub.shutdown(Duration::from_secs(1)).expect("idempotent");
}

#[test]
fn a_bridge_stuck_in_a_call_is_reported_by_the_shutdown_timeout() {
    let mut hub = ProviderWatchHub::new(HubConfig::new()).expect("hub");
    let stuck = Arc::new(RecordingBridge::new());
    stuck.set_gate_closed(true);
    hub.handle()
        .attach_placement("stuck", stuck.clone())
        .expect("attach");
    hub.activate(pid("a"), numbered(1), Instant::now())
        .expect("activate");
    std::thread::sleep(Duration::from_millis(20));
    let error = hub
        .shutdown(Duration::from_millis(50))
        .expect_err("still inside a call");
    assert!(error.to_string().contains("stuck"), "{error}");
    stuck.set_gate_closed(false);
    assert!(super::support::wait_until(
        Duration::from_secs(2),
        || Arc::strong_count(&stuck) == 1
    ));
}

#[test]
fn a_from_snapshot_subscription_starts_exactly_with_resync_and_the_snapshot() {
    let mut hub = ProviderWatchHub::new(HubConfig::new()).expect("hub");
    let t0 = Instant::now();
    // Nothing published yet: the stream starts with the first live line.
    let mut early = hub
        .handle()
        .subscribe_events_from_snapshot("early")
        .expect("subscribe");
    assert!(drain(&mut early).is_empty());
    let termination = ProviderTermination::Ended;
    hub.terminated(pid("old"), &termination);
    hub.activate(pid("a"), numbered(2), t0).expect("activate");

    // The termination is older than the snapshot: a plain subscription
    // delivers it first, the admin stream leaves it out (CONTRACTS §4).
    let mut plain = hub.handle().subscribe_events("plain").expect("subscribe");
    assert_eq!(
        types(&drain(&mut plain))[..3],
        ["terminated", "resync", "snapshot"]
    );
    let mut admin = hub
        .handle()
        .subscribe_events_from_snapshot("admin")
        .expect("subscribe");
    let lines = drain(&mut admin);
    assert_eq!(types(&lines)[..2], ["resync", "snapshot"]);
    assert!(!types(&lines).contains(&"terminated"));

    // A retained line newer than the snapshot follows it.
    let seq = hub.terminated(pid("a"), &termination);
    let mut later = hub
        .handle()
        .subscribe_events_from_snapshot("later")
        .expect("subscribe");
    let lines = drain(&mut later);
    assert_eq!(types(&lines)[..3], ["resync", "snapshot", "terminated"]);
    assert_eq!(lines[2].seq_no(), seq);
    assert_eq!(types(&drain(&mut early))[0], "terminated");
}

/// A placement bridge whose drop panics.
struct PanicsWhenDropped;

impl provisioning_watch_hub::PlacementSupervisorBridge for PanicsWhenDropped {
    fn apply_snapshot(&self, _: &provisioning_watch_hub::wire::SnapshotEnvelope) {}
    fn provider_changed(&self, _: &provisioning_watch_hub::wire::ChangeEnvelope) {}
}

impl Drop for PanicsWhenDropped {
    fn drop(&mut self) {
        panic!("test bridge panics when dropped");
    }
}

#[test]
fn a_bridge_that_panics_when_dropped_does_not_stop_the_shutdown() {
    let mut hub = ProviderWatchHub::new(HubConfig::new()).expect("hub");
    let handle = hub.handle();
    handle
        .attach_placement("panics-when-dropped", Arc::new(PanicsWhenDropped))
        .expect("attach");
    let other = Arc::new(RecordingBridge::new());
    handle
        .attach_partition("other", other.clone())
        .expect("attach");
    hub.activate(pid("a"), numbered(1), Instant::now())
        .expect("activate");
    let latest = hub.latest().expect("latest").clone();
    assert!(super::support::wait_until(Duration::from_secs(2), || other.reached(&latest)));
    hub.shutdown(Duration::from_secs(5))
        .expect("every crew thread ends");
    assert_eq!(
        Arc::strong_count(&other),
        1,
        "the other bridge was released"
    );
}
