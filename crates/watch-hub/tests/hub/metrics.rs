//! Every metric of CONTRACTS §5 with its labels and values, through the
//! `metrics` facade (a local debugging recorder) and the in-process view.

use std::sync::Arc;
use std::time::{Duration, Instant};

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::{CompositeKey, MetricKind};
use provisioning_provider_api::{ProviderHealth, ProviderTermination, SwitchReason};
use provisioning_watch_hub::metrics::{METRIC_NAMES, ProvisioningMetrics};
use provisioning_watch_hub::{HubConfig, ProviderWatchHub};

use super::support::{RecordingBridge, numbered, pid, wait_until};

type Entry = (CompositeKey, DebugValue);

fn find<'a>(entries: &'a [Entry], name: &str, labels: &[(&str, &str)]) -> Option<&'a DebugValue> {
    entries.iter().find_map(|(key, value)| {
        let key_labels: Vec<(&str, &str)> =
            key.key().labels().map(|l| (l.key(), l.value())).collect();
        let matches = key.key().name() == name
            && labels.len() == key_labels.len()
            && labels.iter().all(|l| key_labels.contains(l));
        matches.then_some(value)
    })
}

fn counter(entries: &[Entry], name: &str, labels: &[(&str, &str)]) -> u64 {
    match find(entries, name, labels) {
        Some(DebugValue::Counter(value)) => *value,
        other => panic!("{name}{labels:?}: {other:?}"),
    }
}

fn gauge(entries: &[Entry], name: &str, labels: &[(&str, &str)]) -> f64 {
    match find(entries, name, labels) {
        Some(DebugValue::Gauge(value)) => value.into_inner(),
        other => panic!("{name}{labels:?}: {other:?}"),
    }
}

#[test]
fn every_metric_of_section_5_is_recorded_with_its_labels_after_a_scripted_sequence() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let metrics = ProvisioningMetrics::new();
    let bridge = Arc::new(RecordingBridge::new());
    let mut hub = metrics::with_local_recorder(&recorder, || {
        let mut hub =
            ProviderWatchHub::new(HubConfig::new().with_metrics(metrics.clone())).expect("hub");
        hub.handle()
            .attach_placement("placement", bridge.clone())
            .expect("attach");
        let t0 = Instant::now();
        // Snapshot.
        hub.activate(pid("consul-a"), numbered(10), t0)
            .expect("activate");
        hub.provider_health(pid("consul-a"), ProviderHealth::Healthy, None, "");
        hub.observe_standby(&pid("etcd-a"), &numbered(12), t0);
        // Fault (the facade records faults and snapshot age).
        metrics.record_stream_interruption(&pid("consul-a"));
        metrics.set_snapshot_age(&pid("consul-a"), Duration::from_millis(1500));
        // Liveness probes (the facade's stream tasks record them).
        metrics.record_liveness_probe(&pid("consul-a"), Duration::from_millis(3));
        metrics.record_liveness_failure(&pid("consul-a"));
        hub.provider_health(
            pid("consul-a"),
            ProviderHealth::Unreachable,
            Some("backend_unavailable"),
            "refused",
        );
        hub.terminated(pid("consul-a"), &ProviderTermination::Ended);
        // Switch.
        hub.switch(None, pid("etcd-a"), SwitchReason::Timeout, numbered(12), t0);
        // Shrink held.
        hub.publish_active(pid("etcd-a"), numbered(3), t0);
        // All down, and back.
        hub.unavailable(1_764_230_400_000);
        hub
    });
    let latest = hub.latest().expect("latest").seq_no();
    assert!(wait_until(Duration::from_secs(2), || bridge.last_seq_no() == latest));
    assert!(wait_until(Duration::from_secs(2), || {
        metrics.view().providers[&pid("etcd-a")]
            .snapshot_latency
            .count
            == 1
    }));
    let entries: Vec<Entry> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| (key, value))
        .collect();
    let names: Vec<&str> = entries.iter().map(|(k, _)| k.key().name()).collect();
    for name in METRIC_NAMES {
        assert!(names.contains(&name), "{name} not recorded: {names:?}");
    }
    let (a, e) = (("provider", "consul-a"), ("provider", "etcd-a"));
    match find(&entries, "provisioning_snapshot_latency_seconds", &[a]) {
        Some(DebugValue::Histogram(values)) => assert_eq!(values.len(), 1),
        other => panic!("latency consul-a: {other:?}"),
    }
    match find(&entries, "provisioning_snapshot_latency_seconds", &[e]) {
        Some(DebugValue::Histogram(values)) => assert_eq!(values.len(), 1),
        other => panic!("latency etcd-a: {other:?}"),
    }
    assert_eq!(
        counter(
            &entries,
            "provisioning_failovers_total",
            &[
                ("from", "consul-a"),
                ("to", "etcd-a"),
                ("reason", "timeout")
            ]
        ),
        1
    );
    assert_eq!(
        counter(&entries, "provisioning_stream_interruptions_total", &[a]),
        2,
        "one fault, one termination"
    );
    assert_eq!(
        counter(&entries, "provisioning_liveness_failures_total", &[a]),
        1
    );
    match find(&entries, "provisioning_liveness_probe_seconds", &[a]) {
        Some(DebugValue::Histogram(values)) => assert_eq!(values.len(), 1),
        other => panic!("liveness probe consul-a: {other:?}"),
    }
    assert_eq!(gauge(&entries, "provisioning_provider_health", &[a]), 2.0);
    assert_eq!(gauge(&entries, "provisioning_active_provider", &[a]), 0.0);
    assert_eq!(
        gauge(&entries, "provisioning_active_provider", &[e]),
        0.0,
        "unavailable: none active"
    );
    assert_eq!(gauge(&entries, "provisioning_members", &[a]), 10.0);
    assert_eq!(
        gauge(&entries, "provisioning_members", &[e]),
        3.0,
        "its last view, even held"
    );
    assert_eq!(
        gauge(&entries, "provisioning_snapshot_age_seconds", &[a]),
        1.5
    );
    assert_eq!(gauge(&entries, "provisioning_unavailable", &[]), 1.0);
    assert_eq!(
        counter(&entries, "provisioning_suppressed_shrinks_total", &[e]),
        1
    );
    assert_eq!(
        gauge(&entries, "provisioning_provider_disagreement_members", &[e]),
        2.0
    );
    assert!(
        entries
            .iter()
            .all(|(key, _)| key.kind() != MetricKind::Histogram
                || key.key().name() == "provisioning_snapshot_latency_seconds"
                || key.key().name() == "provisioning_liveness_probe_seconds")
    );

    // The in-process view agrees.
    let view = metrics.view();
    assert!(view.unavailable);
    assert_eq!(view.providers[&pid("consul-a")].stream_interruptions, 2);
    assert_eq!(view.providers[&pid("etcd-a")].suppressed_shrinks, 1);
    assert_eq!(view.failovers.values().sum::<u64>(), 1);
    hub.shutdown(Duration::from_secs(5)).expect("shutdown");
}
