//! What an `EventSink` receives, checked with mockall: every line the
//! service publishes, exactly once, in `seq_no` order, and no `resync`
//! (the sink subscribes before the first publication and keeps up).

use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster_provisioning::EventSink;
use cluster_provisioning::api::{ClusterNode, ProviderId};
use cluster_provisioning::memory::InMemoryProvider;
use cluster_provisioning::{ClusterProvisioningService, ProvisioningEvent, ProvisioningHandle};
use mockall::{Sequence, mock};
use tokio::sync::mpsc;

mock! {
    Sink {}
    impl EventSink for Sink {
        fn publish(&self, event: Arc<ProvisioningEvent>);
    }
}

/// Generous: in-memory providers publish within milliseconds; only a
/// failure waits this long.
const WAIT: Duration = Duration::from_secs(5);

fn node(id: &str) -> ClusterNode {
    ClusterNode::new(id, "10.0.0.1", 4000)
}

/// The lines of the run, by `seq_no`: `None` where the order of the first
/// lines depends on which provider answers first (their two
/// `provider_health` lines and the activation's `snapshot` + 2 `join`s).
const LINES: [Option<&str>; 11] = [
    None,
    None,
    None,
    None,
    None,
    // n4 joins the primary.
    Some("snapshot"),
    Some("remote_topology"),
    // Pin to the backup: the switch, its snapshot, leave n4, join n3.
    Some("provider_changed"),
    Some("snapshot"),
    Some("remote_topology"),
    Some("remote_topology"),
];

/// One expectation per line, in a sequence: line `seq_no` is published
/// once, after every line before it; a `resync` matches none.
fn sink(delivered: mpsc::UnboundedSender<u64>) -> MockSink {
    let mut seq = Sequence::new();
    let mut sink = MockSink::new();
    for (seq_no, kind) in (1u64..).zip(LINES) {
        let delivered = delivered.clone();
        sink.expect_publish()
            .withf(move |event| {
                event.seq_no() == seq_no
                    && event.type_name() != "resync"
                    && kind.is_none_or(|kind| event.type_name() == kind)
            })
            .times(1)
            .in_sequence(&mut seq)
            .returning(move |event| {
                let _ = delivered.send(event.seq_no());
            });
    }
    sink
}

/// Waits until the sink got line `seq_no`.
async fn delivered_up_to(
    delivered: &mut mpsc::UnboundedReceiver<u64>,
    seq_no: u64,
    service: &ProvisioningHandle,
) {
    let started = Instant::now();
    loop {
        match tokio::time::timeout(WAIT, delivered.recv()).await {
            Ok(Some(got)) if got >= seq_no => break,
            Ok(Some(_)) => {}
            _ => panic!(
                "the sink did not get line {seq_no} within {WAIT:?} (see a panic above); \
                 published: {:?}",
                published(service)
            ),
        }
    }
    println!("sink had line {seq_no} after {:?}", started.elapsed());
}

/// The type of every line the hub published, in `seq_no` order.
fn published(service: &ProvisioningHandle) -> Vec<(u64, &'static str)> {
    service
        .hub()
        .history()
        .since(0)
        .unwrap_or_default()
        .iter()
        .map(|line| (line.seq_no(), line.type_name()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_published_line_reaches_the_sink_once_in_seq_no_order() {
    let primary = InMemoryProvider::new(ProviderId::new("primary").expect("id"), 20);
    let backup = InMemoryProvider::new(ProviderId::new("backup").expect("id"), 10);
    for id in ["n1", "n2"] {
        primary.handle().add(node(id)).expect("primary member");
    }
    for id in ["n1", "n2", "n3"] {
        backup.handle().add(node(id)).expect("backup member");
    }
    let primary_handle = primary.handle();
    let (delivered_tx, mut delivered) = mpsc::unbounded_channel();
    let sink = Arc::new(sink(delivered_tx));
    let service = ClusterProvisioningService::build(cluster_provisioning::builtin_registry())
        .with_provider(Arc::new(primary))
        .with_provider(Arc::new(backup))
        .with_event_sink(sink.clone())
        .start()
        .expect("start");

    // Both providers healthy, the primary active with n1 and n2.
    delivered_up_to(&mut delivered, 5, &service).await;
    primary_handle.add(node("n4")).expect("n4");
    delivered_up_to(&mut delivered, 7, &service).await;
    service
        .pin(&ProviderId::new("backup").expect("id"))
        .await
        .expect("pin the backup");
    delivered_up_to(&mut delivered, LINES.len() as u64, &service).await;

    let stats = service.hub().consumers();
    service.shutdown().await.expect("shutdown");
    // After shutdown, so that a line published after the last expected one
    // (which no expectation matches) is seen here.
    let published = published(&service);
    let expected: Vec<u64> = (1..=LINES.len() as u64).collect();
    assert_eq!(
        published
            .iter()
            .map(|(seq_no, _)| *seq_no)
            .collect::<Vec<_>>(),
        expected,
        "the run published other lines than the test expects: {published:?}"
    );
    let sink_stats = stats
        .iter()
        .find(|c| c.name.starts_with("event-sink"))
        .unwrap_or_else(|| panic!("no event-sink consumer in {stats:?}"));
    assert_eq!(
        (sink_stats.delivered, sink_stats.resyncs),
        (LINES.len() as u64, 0),
        "{sink_stats:?}"
    );
    // The sink task ended with the service: verify here, not on its task.
    let mut sink = Arc::try_unwrap(sink)
        .ok()
        .expect("the service released the sink at shutdown");
    sink.checkpoint();
}
