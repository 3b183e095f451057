//! A service with two in-memory providers and recording bridges.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster_provisioning::{ClusterProvisioningService, FailoverPolicy, ProvisioningHandle};
use futures::StreamExt;
use provisioning_backend_memory::{InMemoryHandle, InMemoryProvider};
use provisioning_e2e::Recorder;
use provisioning_provider_api::{ClusterNode, ProviderId, ProviderSnapshot};
use provisioning_watch_hub::EventSubscription;
use provisioning_watch_hub::wire::ProvisioningEvent;

pub(crate) struct Harness {
    pub(crate) service: ProvisioningHandle,
    pub(crate) primary: InMemoryHandle,
    pub(crate) standby: InMemoryHandle,
    pub(crate) primary_id: ProviderId,
    pub(crate) standby_id: ProviderId,
    pub(crate) placement: Arc<Recorder>,
    pub(crate) partition: Arc<Recorder>,
    pub(crate) remoting: Arc<Recorder>,
    pub(crate) events: EventSubscription,
    pub(crate) policy: FailoverPolicy,
}

pub(crate) fn node(id: &str, port: u16) -> ClusterNode {
    ClusterNode::new(id, "127.0.0.1", port)
}

impl Harness {
    /// `primary` (priority 20, members p1 p2 p3) and `standby` (priority 10,
    /// members p1 p2 p3' s1).
    pub(crate) async fn start() -> Self {
        Self::start_with(FailoverPolicy::tight()).await
    }

    pub(crate) async fn start_with(policy: FailoverPolicy) -> Self {
        let primary_id = ProviderId::new("primary").unwrap();
        let standby_id = ProviderId::new("standby").unwrap();
        let primary = InMemoryProvider::new(primary_id.clone(), 20);
        let standby = InMemoryProvider::new(standby_id.clone(), 10);
        for (i, id) in ["p1", "p2", "p3"].iter().enumerate() {
            primary.handle().add(node(id, 4000 + i as u16)).unwrap();
        }
        // Both watch the same cluster; the standby's view differs a little
        // (p3 on another port, one member more), as two backends' do.
        for (id, port) in [("p1", 4000), ("p2", 4001), ("p3", 5003), ("s1", 5000)] {
            standby.handle().add(node(id, port)).unwrap();
        }
        let (placement, partition, remoting) = (Recorder::new(), Recorder::new(), Recorder::new());
        let (primary_handle, standby_handle) = (primary.handle(), standby.handle());
        let service = ClusterProvisioningService::build(cluster_provisioning::builtin_registry())
            .with_failover(policy.clone())
            .with_provider(Arc::new(primary))
            .with_provider(Arc::new(standby))
            .with_bridges(placement.clone(), partition.clone(), remoting.clone())
            .with_rng_seed(7)
            .start()
            .expect("service starts");
        let events = service.events().expect("event subscription");
        Self {
            service,
            primary: primary_handle,
            standby: standby_handle,
            primary_id,
            standby_id,
            placement,
            partition,
            remoting,
            events,
            policy,
        }
    }

    /// Waits until every bridge holds a snapshot with `hash` (the remoting
    /// bridge: a rebuilt view with that hash that equals `expected`).
    pub(crate) async fn all_bridges_hold(
        &self,
        expected: &ProviderSnapshot,
        limit: Duration,
    ) -> Option<Duration> {
        let hash = expected.hash();
        let started = Instant::now();
        for bridge in [&self.placement, &self.partition] {
            bridge
                .wait_for(limit, |s| {
                    s.snapshots.last().is_some_and(|l| l.hash() == hash)
                })
                .await?;
        }
        self.remoting
            .wait_for(limit, |s| {
                s.view_hash == Some(hash) && s.view.matches(expected)
            })
            .await?;
        Some(started.elapsed())
    }

    /// The next event line matching `pred`, within `limit`.
    pub(crate) async fn next_event(
        &mut self,
        limit: Duration,
        pred: impl Fn(&ProvisioningEvent) -> bool,
    ) -> Option<(Arc<ProvisioningEvent>, Duration)> {
        let started = Instant::now();
        loop {
            let left = limit.checked_sub(started.elapsed())?;
            match tokio::time::timeout(left, self.events.next()).await {
                Ok(Some(event)) if pred(&event) => return Some((event, started.elapsed())),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return None,
            }
        }
    }

    /// No bridge saw an event that did not fit or a non-increasing seq_no.
    pub(crate) fn assert_no_violations(&self) {
        for (name, bridge) in [
            ("placement", &self.placement),
            ("partition", &self.partition),
            ("remoting", &self.remoting),
        ] {
            let state = bridge.state();
            assert!(
                state.violations.is_empty(),
                "{name}: {:?}",
                state.violations
            );
        }
    }

    /// 3× the bound + 2 s.
    pub(crate) fn margin(bound: Duration) -> Duration {
        bound * 3 + Duration::from_secs(2)
    }
}

pub(crate) fn changed(
    event: &ProvisioningEvent,
) -> Option<&provisioning_watch_hub::wire::ChangeEnvelope> {
    match event {
        ProvisioningEvent::ProviderChanged(c) => Some(c),
        _ => None,
    }
}
