//! Shared helpers: the serial lock, descriptors, an event recorder.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client, GetOptions};
use futures::StreamExt;
use provisioning_backend_etcd::{EtcdError, EtcdProvider};
use provisioning_provider_api::*;
use provisioning_registry::SecretResolver;
use tokio::sync::{Mutex, MutexGuard};
use tokio::time::Instant;

static SERIAL: Mutex<()> = Mutex::const_new(());

/// Held by every test that starts etcd, for its whole run.
pub(crate) async fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().await
}

pub(crate) const PREFIX: &str = "/cluster/app/";

pub(crate) fn secrets() -> SecretResolver {
    SecretResolver::new(std::env::temp_dir())
}

pub(crate) fn descriptor(endpoints: &[String], watch: serde_json::Value) -> ProviderDescriptor {
    let json = serde_json::json!({
        "id": "etcd-test", "kind": "etcd", "priority": 10,
        "endpoints": endpoints, "watch": watch,
    });
    serde_json::from_value(json).expect("test descriptor")
}

pub(crate) fn provider(endpoints: &[String]) -> EtcdProvider {
    EtcdProvider::from_descriptor(
        descriptor(endpoints, serde_json::json!({ "prefix": PREFIX })),
        &secrets(),
    )
    .expect("valid descriptor")
}

/// Builds a provider for `descriptor` and probes it (a configuration error
/// comes back as the probe's).
pub(crate) async fn probe_descriptor(
    descriptor: &ProviderDescriptor,
    secrets: &SecretResolver,
) -> Result<(), EtcdError> {
    EtcdProvider::from_descriptor(descriptor.clone(), secrets)?
        .probe()
        .await
}

pub(crate) async fn client(endpoints: &[String]) -> Client {
    Client::connect(endpoints, None).await.expect("etcd client")
}

pub(crate) fn member_json(id: &str, host: &str, port: u16) -> String {
    serde_json::json!({ "id": id, "host": host, "port": port }).to_string()
}

/// The prefix's content at `revision` (0 = now), as the snapshot the
/// provider should publish for it.
pub(crate) async fn truth_at(client: &mut Client, revision: i64) -> ProviderSnapshot {
    let mut options = GetOptions::new().with_prefix();
    if revision > 0 {
        options = options.with_revision(revision);
    }
    let response = client.get(PREFIX, Some(options)).await.expect("get prefix");
    // The key's creation is the member's incarnation unless the value names
    // one (CONTRACTS §1).
    let specs = response.kvs().iter().map(|kv| {
        let mut spec = serde_json::from_slice::<MemberSpec>(kv.value()).expect("member value");
        if spec.incarnation.is_none() {
            spec.incarnation =
                Some(Incarnation::new(kv.create_revision().to_string()).expect("a revision"));
        }
        spec
    });
    ProviderSnapshot::from_specs(specs).expect("truth snapshot")
}

/// One recorded stream item and when it came.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) at: Instant,
    pub(crate) event: ProviderEvent,
}

/// Reads `stream` in a task and keeps every item with its arrival time.
pub(crate) struct Recorder {
    events: Arc<std::sync::Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Recorder {
    pub(crate) fn start(mut stream: ProviderStream) -> Self {
        let events = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = events.clone();
        let task = tokio::spawn(async move {
            while let Some(event) = stream.next().await {
                sink.lock().unwrap().push(Seen {
                    at: Instant::now(),
                    event,
                });
            }
        });
        Self { events, task }
    }

    pub(crate) fn all(&self) -> Vec<Seen> {
        self.events.lock().unwrap().clone()
    }

    /// Waits until an item after index `from` satisfies `want`; returns its
    /// index and the item.
    pub(crate) async fn wait_for(
        &self,
        from: usize,
        timeout: Duration,
        want: impl Fn(&ProviderEvent) -> bool,
    ) -> Option<(usize, Seen)> {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let events = self.events.lock().unwrap();
                if let Some((i, seen)) = events
                    .iter()
                    .enumerate()
                    .skip(from)
                    .find(|(_, s)| want(&s.event))
                {
                    return Some((i, seen.clone()));
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.events.lock().unwrap().len()
    }

    pub(crate) fn snapshots(&self) -> Vec<ProviderSnapshot> {
        self.all()
            .into_iter()
            .filter_map(|s| match s.event {
                ProviderEvent::Snapshot(snapshot) => Some(snapshot),
                _ => None,
            })
            .collect()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}
