//! [`RosterProvider`]: the provider of [`RosterKind`](crate::RosterKind).

use provisioning_backend_memory::InMemoryProvider;
use provisioning_provider_api::{
    ClusterProvider, LivenessCheck, ProviderDescriptor, ProviderShutdown, ProviderSnapshot,
    ProviderStream, StreamOptions,
};

/// An in-memory view under a `roster` descriptor: the stream, heartbeats and
/// scripted faults are the in-memory provider's, the descriptor is the
/// custom kind's.
#[derive(Debug)]
pub struct RosterProvider {
    descriptor: ProviderDescriptor,
    inner: InMemoryProvider,
}

impl RosterProvider {
    pub(crate) fn new(descriptor: ProviderDescriptor, inner: InMemoryProvider) -> Self {
        Self { descriptor, inner }
    }
}

impl ClusterProvider for RosterProvider {
    fn descriptor(&self) -> &ProviderDescriptor {
        &self.descriptor
    }

    fn initial_snapshot(&self) -> Option<ProviderSnapshot> {
        self.inner.initial_snapshot()
    }

    fn stream(&self, options: StreamOptions) -> ProviderStream {
        self.inner.stream(options)
    }

    fn liveness_probe(&self) -> Option<LivenessCheck> {
        self.inner.liveness_probe()
    }

    fn shutdown(&self) -> ProviderShutdown<'_> {
        self.inner.shutdown()
    }
}
