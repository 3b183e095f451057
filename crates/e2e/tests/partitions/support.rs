//! Shared pieces: the serial lock, member values, an event log.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::StreamExt;
use provisioning_backend_etcd::EtcdProvider;
use provisioning_provider_api::ProviderDescriptor;
use provisioning_provider_api::{ClusterNode, MemberSpec, RemoteTopologyEvent};
use provisioning_registry::SecretResolver;
use provisioning_testkit::etcd_cluster::EtcdCluster;
use provisioning_testkit::net_hosts::NetHosts;
use provisioning_watch_hub::wire::ProvisioningEvent;
use tokio::sync::{Mutex as AsyncMutex, MutexGuard};

static SERIAL: AsyncMutex<()> = AsyncMutex::const_new(());

/// Held by every scenario: they share the machine's cores, and timing
/// matters.
pub(crate) async fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().await
}

pub(crate) const PREFIX: &str = "/cluster/app/";

/// The stored JSON of member `id`.
pub(crate) fn member_value(id: &str, port: u16) -> Vec<u8> {
    serde_json::to_vec(&MemberSpec::from(ClusterNode::new(id, "10.1.0.1", port)))
        .unwrap_or_default()
}

/// 3 × the bound + 2 s.
pub(crate) fn margin(bound: Duration) -> Duration {
    bound * 3 + Duration::from_secs(2)
}

/// One published event, reduced to what the scenarios compare: the line
/// type and, for topology events, the change and the member id.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) at: Instant,
    pub(crate) line: String,
    pub(crate) event: Arc<ProvisioningEvent>,
}

/// Every event the service publishes, with the time it arrived.
#[derive(Debug, Clone, Default)]
pub(crate) struct EventLog {
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl EventLog {
    /// Collects `events` until the stream ends.
    pub(crate) fn collect(
        events: impl futures::Stream<Item = Arc<ProvisioningEvent>> + Send + 'static,
    ) -> Self {
        let log = Self::default();
        let seen = log.seen.clone();
        tokio::spawn(async move {
            let mut events = std::pin::pin!(events);
            while let Some(event) = events.next().await {
                let line = short_line(&event);
                seen.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(Seen {
                        at: Instant::now(),
                        line,
                        event,
                    });
            }
        });
        log
    }

    /// Everything seen so far.
    pub(crate) fn all(&self) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The short lines seen since index `from`.
    pub(crate) fn lines_since(&self, from: usize) -> Vec<String> {
        self.all().into_iter().skip(from).map(|s| s.line).collect()
    }

    /// Waits until an event since `from` satisfies `pred`; returns it.
    pub(crate) async fn wait_for(
        &self,
        from: usize,
        limit: Duration,
        pred: impl Fn(&ProvisioningEvent) -> bool,
    ) -> Option<Seen> {
        let started = Instant::now();
        loop {
            if let Some(hit) = self.all().into_iter().skip(from).find(|s| pred(&s.event)) {
                return Some(hit);
            }
            if started.elapsed() > limit {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Number of events seen so far.
    pub(crate) fn len(&self) -> usize {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// `type` of an event line, with `event node_id` for topology lines and
/// the target for `provider_changed`: enough to compare sequences exactly
/// without run ids and hashes.
pub(crate) fn short_line(event: &ProvisioningEvent) -> String {
    match event {
        ProvisioningEvent::Snapshot(s) => format!("snapshot {}", s.provider_id()),
        ProvisioningEvent::RemoteTopology(t) => match &t.event {
            RemoteTopologyEvent::Join(node) => format!("join {}", node.id),
            RemoteTopologyEvent::Leave(id) => format!("leave {id}"),
            RemoteTopologyEvent::Blocked(id) => format!("blocked {id}"),
            RemoteTopologyEvent::Unblocked(id) => format!("unblocked {id}"),
            RemoteTopologyEvent::Serving(node) => format!("serving {}", node.id),
            RemoteTopologyEvent::Draining(node) => format!("draining {}", node.id),
        },
        ProvisioningEvent::ProviderHealth(h) => format!("provider_health {:?}", h.health),
        ProvisioningEvent::ProviderChanged(c) => format!("provider_changed {}", c.to_provider_id),
        ProvisioningEvent::ProvisioningUnavailable(_) => "provisioning_unavailable".to_owned(),
        ProvisioningEvent::Terminated(_) => "terminated".to_owned(),
        ProvisioningEvent::Resync(_) => "resync".to_owned(),
        other => format!("{other:?}"),
    }
}

/// The `provisioning` binary: `$PROVISIONING_BIN` when set, else the one
/// in this test's target directory. `cargo test --workspace` (and so
/// `cargo xtask ci`) links it before running any test, and `cargo xtask
/// chaos --partitions` builds it and sets the variable; a lone `cargo test
/// -p provisioning-e2e --test partitions` needs a `cargo build -p
/// provisioning-cli` first. The test does not run cargo itself: a nested
/// build with other features would relink both ways on every run.
pub(crate) fn provisioning_bin() -> std::path::PathBuf {
    if let Some(bin) = std::env::var_os("PROVISIONING_BIN") {
        return bin.into();
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/partitions-HASH → target/<profile>/provisioning
    let bin = exe
        .parent()
        .and_then(std::path::Path::parent)
        .map(|dir| dir.join("provisioning"))
        .expect("target directory");
    assert!(
        bin.is_file(),
        "no provisioning binary at {}: run `cargo build -p provisioning-cli` first, or set \
         PROVISIONING_BIN, or use `cargo xtask chaos --partitions`",
        bin.display()
    );
    bin
}

/// Three hosts with one etcd member each, the prefix seeded with `w1` and
/// `w2`.
pub(crate) async fn seeded_etcd_on_three_hosts() -> (NetHosts, EtcdCluster) {
    let hosts = NetHosts::create(3).expect("network hosts (root and iproute2 needed)");
    let cluster = EtcdCluster::start_on(&hosts)
        .await
        .expect("etcd on 3 hosts");
    let mut client = etcd_client::Client::connect(cluster.endpoints(), None)
        .await
        .expect("etcd client");
    for (id, port) in [("w1", 4001), ("w2", 4002)] {
        client
            .put(format!("{PREFIX}{id}"), member_value(id, port), None)
            .await
            .expect("seed put");
    }
    (hosts, cluster)
}

/// The etcd provider `etcd-a` (priority 20) over `endpoints`.
pub(crate) fn etcd_provider(endpoints: &[String]) -> EtcdProvider {
    let descriptor: ProviderDescriptor = serde_json::from_value(serde_json::json!({
        "id": "etcd-a", "kind": "etcd", "priority": 20,
        "endpoints": endpoints, "watch": {"prefix": PREFIX},
    }))
    .expect("descriptor");
    EtcdProvider::from_descriptor(descriptor, &SecretResolver::new(".")).expect("etcd provider")
}
