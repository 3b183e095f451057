//! Each provider stream's backoff jitter is seeded from the service's seed
//! and the provider's id, so a run can be replayed.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use cluster_provisioning::api::{
    ClusterProvider, ProviderDescriptor, ProviderId, ProviderSnapshot, ProviderStream,
    StreamOptions,
};
use cluster_provisioning::memory::InMemoryProvider;
use cluster_provisioning::{ClusterProvisioningService, FailoverPolicy};

/// An in-memory provider that records the options of every stream opened.
struct Recording {
    inner: InMemoryProvider,
    opened: Arc<Mutex<Vec<StreamOptions>>>,
}

impl ClusterProvider for Recording {
    fn descriptor(&self) -> &ProviderDescriptor {
        self.inner.descriptor()
    }

    fn initial_snapshot(&self) -> Option<ProviderSnapshot> {
        self.inner.initial_snapshot()
    }

    fn stream(&self, options: StreamOptions) -> ProviderStream {
        self.opened
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(options);
        self.inner.stream(options)
    }
}

/// The jitter seed of the first stream a service seeded with `seed` opens
/// for a provider named `id`.
async fn stream_seed(seed: u64, id: &str) -> Option<u64> {
    let opened = Arc::new(Mutex::new(Vec::new()));
    let provider = Recording {
        inner: InMemoryProvider::new(ProviderId::new(id).expect("id"), 10),
        opened: opened.clone(),
    };
    let service = ClusterProvisioningService::build(cluster_provisioning::builtin_registry())
        .with_failover(FailoverPolicy::tight())
        .with_rng_seed(seed)
        .with_provider(Arc::new(provider))
        .start()
        .expect("service");
    let started = Instant::now();
    let options = loop {
        if let Some(o) = opened
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .first()
        {
            break *o;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no stream opened"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    service.shutdown().await.expect("shutdown");
    options.jitter_seed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_jitter_is_seeded_from_the_service_seed_and_the_provider() {
    let a7 = stream_seed(7, "a").await;
    let expected = FailoverPolicy::tight()
        .stream_options()
        .with_jitter_seed_for(7, &ProviderId::new("a").expect("id"))
        .jitter_seed;
    assert_eq!(a7, expected);
    assert_eq!(stream_seed(7, "a").await, a7);
    assert_ne!(stream_seed(8, "a").await, a7);
    assert_ne!(stream_seed(7, "b").await, a7);
}
