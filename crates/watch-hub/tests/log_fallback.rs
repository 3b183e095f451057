//! With no `tracing` subscriber, `tracing` (with its `log` feature, as some
//! applications build it) writes spans to a `log` logger. The hub skips its
//! per-call `bridge_call` span when nobody can take it; this checks that a
//! `log` logger at `debug` still gets it. Its own test binary: a logger is
//! set once per process.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use provisioning_provider_api::{ClusterNode, ProviderId, ProviderSnapshot};
use provisioning_watch_hub::wire::{ChangeEnvelope, SnapshotEnvelope};
use provisioning_watch_hub::{HubConfig, PlacementSupervisorBridge, ProviderWatchHub};

/// Keeps the message of every record at `debug` or above.
struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Debug
    }
    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata())
            && let Ok(mut seen) = self.0.lock()
        {
            seen.push(record.args().to_string());
        }
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture(Mutex::new(Vec::new()));

/// Signals each snapshot it is handed.
struct Signal(mpsc::Sender<u64>);

impl PlacementSupervisorBridge for Signal {
    fn apply_snapshot(&self, envelope: &SnapshotEnvelope) {
        let _ = self.0.send(envelope.seq_no());
    }
    fn provider_changed(&self, _: &ChangeEnvelope) {}
    fn resync(&self, _: &SnapshotEnvelope) {}
}

#[test]
fn a_log_logger_at_debug_gets_the_bridge_call_span_without_a_subscriber() {
    log::set_logger(&CAPTURE).expect("the only logger of this binary");
    log::set_max_level(log::LevelFilter::Debug);
    let mut hub = ProviderWatchHub::new(HubConfig::new()).expect("hub");
    let (tx, rx) = mpsc::channel();
    hub.handle()
        .attach_placement("placement", Arc::new(Signal(tx)))
        .expect("attached");
    let snapshot = ProviderSnapshot::new(vec![ClusterNode::new("n1", "10.0.0.1", 4000)], vec![])
        .expect("valid view");
    let provider = ProviderId::new("a").expect("valid id");
    hub.activate(provider, snapshot, Instant::now())
        .expect("first activation");
    let seq_no = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the bridge is called");
    hub.shutdown(Duration::from_secs(5)).expect("shutdown");
    let seen = CAPTURE.0.lock().expect("capture").clone();
    let call = format!("seq_no={seq_no}");
    assert!(
        seen.iter()
            .any(|m| m.starts_with("bridge_call") && m.contains(&call)),
        "no bridge_call record for seq_no {seq_no} in {seen:?}"
    );
}
