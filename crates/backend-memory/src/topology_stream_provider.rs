//! [`TopologyStreamProvider`]: the migration path for a runtime that had one
//! topology watch.

use futures_core::Stream;
use futures_util::StreamExt;
use provisioning_provider_api::{
    ClusterNode, ClusterProvider, ProviderDescriptor, ProviderSnapshot, ProviderStream,
    ProviderTermination, StreamOptions,
};
use tokio::task::JoinHandle;

use crate::state::Shared;
use crate::{InMemoryHandle, InMemoryProvider};

/// Wraps an existing topology stream (`Stream<Item = Vec<ClusterNode>>`) as a
/// provider: every item replaces the member list. When the source ends, open
/// streams end with [`ProviderTermination::Ended`] and the last view stays
/// available to streams opened later.
///
/// A source item with duplicate member ids is reported as a fault and
/// skipped; the previous view stays.
#[derive(Debug)]
pub struct TopologyStreamProvider {
    inner: InMemoryProvider,
    pump: JoinHandle<()>,
}

impl TopologyStreamProvider {
    /// Starts forwarding `source`. Must be called inside a tokio runtime.
    pub fn spawn<S>(descriptor: ProviderDescriptor, source: S) -> Self
    where
        S: Stream<Item = Vec<ClusterNode>> + Send + 'static,
    {
        let inner = InMemoryProvider {
            descriptor,
            shared: Shared::new(Vec::new()),
        };
        let handle = inner.handle();
        let pump = tokio::spawn(pump(handle, source));
        Self { inner, pump }
    }
}

async fn pump<S>(handle: InMemoryHandle, source: S)
where
    S: Stream<Item = Vec<ClusterNode>> + Send + 'static,
{
    let mut source = std::pin::pin!(source);
    while let Some(nodes) = source.next().await {
        match ProviderSnapshot::new(nodes, Vec::new()) {
            Ok(snapshot) => {
                let (members, _) = snapshot.into_parts();
                handle.shared.update(|s| {
                    s.members = members.into_iter().map(|m| (m.id.clone(), m)).collect();
                });
            }
            Err(e) => {
                handle.inject_fault(provisioning_provider_api::ProviderFault::retryable(
                    provisioning_provider_api::FaultKind::MalformedResponse,
                    format!("topology source: {e}"),
                ));
            }
        }
    }
    handle.terminate(ProviderTermination::Ended);
}

impl Drop for TopologyStreamProvider {
    fn drop(&mut self) {
        self.pump.abort();
    }
}

impl ClusterProvider for TopologyStreamProvider {
    fn descriptor(&self) -> &ProviderDescriptor {
        self.inner.descriptor()
    }

    fn initial_snapshot(&self) -> Option<ProviderSnapshot> {
        self.inner.initial_snapshot()
    }

    fn stream(&self, options: StreamOptions) -> ProviderStream {
        self.inner.stream(options)
    }
}
