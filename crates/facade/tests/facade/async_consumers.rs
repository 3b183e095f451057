//! The async API a runtime uses: `snapshots()` (latest only),
//! `topology_changes()` (changes and resyncs as items) and
//! `with_local_member`, consumed with the `futures` executor on a plain
//! thread while the service runs on its tokio runtime.

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use cluster_provisioning::api::{ClusterNode, NodeId, ProviderId, TopologyEventKind};
use cluster_provisioning::hub::HubConfig;
use cluster_provisioning::hub::wire::{SnapshotEnvelope, TopologyEnvelope};
use cluster_provisioning::memory::{InMemoryHandle, InMemoryProvider};
use cluster_provisioning::{
    ClusterProvisioningService, FailoverPolicy, ProvisioningHandle, RemotingBridge, TopologyUpdate,
};
use futures::StreamExt;
use futures::executor::block_on;

/// Generous: in-memory publications take milliseconds.
const WAIT: Duration = Duration::from_secs(5);

fn node(id: &str, port: u16) -> ClusterNode {
    ClusterNode::new(id, "127.0.0.1", port)
}

fn start(
    members: &[&str],
    local: Option<&str>,
    hub: HubConfig,
) -> (ProvisioningHandle, InMemoryHandle) {
    start_with(members, local, hub, None)
}

fn start_with(
    members: &[&str],
    local: Option<&str>,
    hub: HubConfig,
    remoting: Option<Arc<dyn RemotingBridge>>,
) -> (ProvisioningHandle, InMemoryHandle) {
    let provider = InMemoryProvider::new(ProviderId::new("static").expect("id"), 10);
    for (i, id) in members.iter().enumerate() {
        provider
            .handle()
            .add(node(id, 4000 + i as u16))
            .expect("member");
    }
    let handle = provider.handle();
    let mut service = ClusterProvisioningService::build(cluster_provisioning::builtin_registry())
        .with_failover(FailoverPolicy::tight())
        .with_hub_config(hub)
        .with_provider(Arc::new(provider));
    if let Some(local) = local {
        service = service.with_local_member(local);
    }
    if let Some(remoting) = remoting {
        service = service.with_remoting("remoting", remoting);
    }
    (service.start().expect("start"), handle)
}

/// Waits (on the test's runtime) until the published snapshot has `count`
/// members.
async fn published(service: &ProvisioningHandle, count: usize) {
    let started = Instant::now();
    while service.topology().map(|s| s.members().len()) != Some(count) {
        assert!(
            started.elapsed() < WAIT,
            "no snapshot of {count} members within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The next item, read by the `futures` executor on its own thread (no
/// tokio context there); `None` after [`WAIT`].
fn next_off_tokio<S>(stream: S) -> (S, Option<S::Item>)
where
    S: futures::Stream + Unpin + Send + 'static,
    S::Item: Send,
{
    thread::spawn(move || {
        let mut stream = stream;
        let timeout = Box::pin(futures_timer_free_sleep(WAIT));
        let item = match block_on(futures::future::select(stream.next(), timeout)) {
            futures::future::Either::Left((item, _)) => item,
            futures::future::Either::Right(((), _)) => None,
        };
        (stream, item)
    })
    .join()
    .expect("consumer thread")
}

/// A sleep with no timer runtime: a thread wakes the task.
async fn futures_timer_free_sleep(after: Duration) {
    let (tx, rx) = futures::channel::oneshot::channel::<()>();
    thread::spawn(move || {
        thread::sleep(after);
        let _ = tx.send(());
    });
    let _ = rx.await;
}

fn change(item: Option<TopologyUpdate>) -> (TopologyEventKind, String) {
    match item {
        Some(TopologyUpdate::Change(change)) => (
            change.event.kind(),
            change.event.node_id().as_str().to_owned(),
        ),
        other => panic!("expected a change, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_skip_to_the_latest_and_need_no_tokio_context() {
    let (service, members) = start(&["n1"], None, HubConfig::new());
    published(&service, 1).await;
    let snapshots = service.snapshots();
    // Four publications while nobody reads.
    for (i, id) in ["n2", "n3", "n4", "n5"].into_iter().enumerate() {
        members.add(node(id, 5000 + i as u16)).expect("add");
        published(&service, i + 2).await;
    }
    let (mut snapshots, first) = next_off_tokio(snapshots);
    let pending = futures::FutureExt::now_or_never(snapshots.next()).map(|s| s.map(|s| s.seq_no()));
    let first = first.expect("a snapshot");
    assert_eq!(
        first.members().len(),
        5,
        "the reader got a stale snapshot: {first:?}"
    );
    assert_eq!(
        first.seq_no(),
        service.topology().expect("published").seq_no()
    );
    assert_eq!(pending, None, "a backlog followed the latest snapshot");
    service.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topology_changes_start_with_a_resync_and_hide_the_local_join_and_leave() {
    let (service, members) = start(&["n1", "n2", "n3"], Some("n1"), HubConfig::new());
    published(&service, 3).await;
    assert_eq!(service.local_member(), Some(&NodeId::from("n1")));
    let stream = service.topology_changes().expect("stream");

    let (stream, item) = next_off_tokio(stream);
    match item {
        Some(TopologyUpdate::Resync(view)) => {
            assert_eq!(view.snapshot().members().len(), 3);
            assert_eq!(view.local().map(|m| m.id.as_str()), Some("n1"));
            let peers: Vec<_> = view.peers().map(|m| m.id.as_str().to_owned()).collect();
            assert_eq!(peers, ["n2", "n3"]);
        }
        other => panic!("expected a resync first, got {other:?}"),
    }

    members.add(node("n4", 4100)).expect("n4");
    let (stream, item) = next_off_tokio(stream);
    assert_eq!(change(item), (TopologyEventKind::Join, "n4".into()));

    // The local node restarts (a Leave then a Join on the wire): nothing
    // for this node; then n2 goes.
    members.change(node("n1", 4200)).expect("n1 moves");
    published_port(&service, "n1", 4200).await;
    assert!(members.remove("n2"));
    let (stream, item) = next_off_tokio(stream);
    assert_eq!(change(item), (TopologyEventKind::Leave, "n2".into()));

    // Other events about the local node still arrive.
    members.block("n1");
    let (_stream, item) = next_off_tokio(stream);
    assert_eq!(change(item), (TopologyEventKind::Blocked, "n1".into()));
    service.shutdown().await.expect("shutdown");
}

async fn published_port(service: &ProvisioningHandle, id: &str, port: u16) {
    let started = Instant::now();
    while !service.topology().is_some_and(|s| {
        s.members()
            .iter()
            .any(|m| m.id.as_str() == id && m.port == port)
    }) {
        assert!(
            started.elapsed() < WAIT,
            "{id} not published on port {port} within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topology_stream_that_falls_behind_gets_a_resync_and_delays_nobody() {
    let (service, members) = start(&["n0"], None, HubConfig::new().with_queue_capacity(2));
    published(&service, 1).await;
    let mut slow = service.topology_changes().expect("slow stream");
    let mut live = service.topology_changes().expect("live stream");
    // Both open with a resync to the one-member snapshot.
    for stream in [&mut slow, &mut live] {
        match tokio::time::timeout(WAIT, stream.next()).await {
            Ok(Some(TopologyUpdate::Resync(view))) => {
                assert_eq!(view.snapshot().members().len(), 1)
            }
            other => panic!("expected the opening resync, got {other:?}"),
        }
    }
    let started = Instant::now();
    for i in 1..=8u16 {
        members.add(node(&format!("n{i}"), 4000 + i)).expect("add");
        let item = tokio::time::timeout(WAIT, live.next())
            .await
            .expect("live item in time");
        assert_eq!(change(item), (TopologyEventKind::Join, format!("n{i}")));
    }
    println!(
        "live stream kept up with 8 publications in {:?} while the other read nothing",
        started.elapsed()
    );
    // The slow one skipped the lost changes: a resync with the whole view.
    let (_slow, item) = next_off_tokio(slow);
    match item {
        Some(TopologyUpdate::Resync(view)) => assert_eq!(view.snapshot().members().len(), 9),
        other => panic!("expected a resync after falling behind, got {other:?}"),
    }
    service.shutdown().await.expect("shutdown");
}

#[derive(Default)]
struct Recorder {
    changes: Mutex<Vec<(TopologyEventKind, String)>>,
}

impl RemotingBridge for Recorder {
    fn publish_remote_topology(&self, envelope: &TopologyEnvelope) {
        self.changes.lock().expect("recorder").push((
            envelope.event.kind(),
            envelope.event.node_id().as_str().to_owned(),
        ));
    }

    fn resync(&self, _envelope: &SnapshotEnvelope) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remoting_bridge_of_the_builder_never_hears_of_the_local_node() {
    let recorder = Arc::new(Recorder::default());
    let (service, members) = start_with(
        &["n1", "n2"],
        Some("n1"),
        HubConfig::new(),
        Some(recorder.clone()),
    );
    published(&service, 2).await;
    members.add(node("n3", 4300)).expect("n3");
    published(&service, 3).await;
    assert!(members.remove("n1"));
    published(&service, 2).await;
    let started = Instant::now();
    while recorder.changes.lock().expect("recorder").len() < 2 {
        assert!(
            started.elapsed() < WAIT,
            "the bridge got {:?}",
            recorder.changes.lock().expect("recorder")
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    service.shutdown().await.expect("shutdown");
    assert_eq!(
        *recorder.changes.lock().expect("recorder"),
        [
            (TopologyEventKind::Join, "n2".to_owned()),
            (TopologyEventKind::Join, "n3".to_owned())
        ]
    );
}
