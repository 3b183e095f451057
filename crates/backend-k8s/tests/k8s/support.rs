//! Shared helpers of the integration tests.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use provisioning_backend_k8s::KubeProvider;
use provisioning_provider_api::{ClusterProvider, ProviderEvent, ProviderStream, StreamOptions};
use provisioning_registry::SecretResolver;
use provisioning_testkit::fake_kube::{FakeKube, KubeDriver, KubeDriverMode};
use serde_json::Value;
use tokio::time::{Instant, timeout_at};

pub(crate) const NS: &str = "apps";

pub(crate) async fn fake() -> Arc<FakeKube> {
    Arc::new(FakeKube::start().await.expect("bind a loopback port"))
}

pub(crate) fn driver(fake: &Arc<FakeKube>, mode: KubeDriverMode) -> KubeDriver {
    KubeDriver::new(fake.clone(), mode, NS)
}

pub(crate) fn provider(driver: &KubeDriver, extra: Value) -> KubeProvider {
    let descriptor = driver.descriptor("k8s", extra).expect("descriptor");
    KubeProvider::from_descriptor(descriptor, &secrets()).expect("provider")
}

pub(crate) fn secrets() -> SecretResolver {
    SecretResolver::new(std::env::temp_dir())
}

/// Options with a 1 s heartbeat and a short backoff so fault tests finish
/// quickly (the schedule's shape is the policy's: at once, 100 ms, then
/// exponential).
pub(crate) fn options() -> StreamOptions {
    StreamOptions::new(Duration::from_secs(1)).with_backoff(
        Duration::from_millis(500),
        2.0,
        Duration::from_secs(2),
        0.2,
    )
}

pub(crate) fn open(provider: &KubeProvider) -> ProviderStream {
    provider.stream(options())
}

/// Every event until `pred` holds for one, or panics after `within`.
pub(crate) async fn until(
    stream: &mut ProviderStream,
    within: Duration,
    what: &str,
    mut pred: impl FnMut(&ProviderEvent) -> bool,
) -> Vec<ProviderEvent> {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    loop {
        match timeout_at(deadline, stream.next()).await {
            Err(_) => panic!("{what}: not within {within:?}; saw {seen:#?}"),
            Ok(None) => panic!("{what}: stream ended; saw {seen:#?}"),
            Ok(Some(event)) => {
                let done = pred(&event);
                seen.push(event);
                if done {
                    return seen;
                }
            }
        }
    }
}

/// Member ids of a snapshot event.
pub(crate) fn ids(event: &ProviderEvent) -> Option<Vec<String>> {
    match event {
        ProviderEvent::Snapshot(s) => Some(s.members().iter().map(|m| m.id.to_string()).collect()),
        _ => None,
    }
}

/// Ids of the draining members of a snapshot event.
pub(crate) fn draining(event: &ProviderEvent) -> Option<Vec<String>> {
    match event {
        ProviderEvent::Snapshot(s) => Some(
            s.members()
                .iter()
                .filter(|m| m.state == provisioning_provider_api::MemberState::Draining)
                .map(|m| m.id.to_string())
                .collect(),
        ),
        _ => None,
    }
}
