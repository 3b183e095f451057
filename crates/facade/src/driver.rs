//! The service's single driver task: opens and closes provider streams as
//! the failover controller decides, feeds their events in, and hands the
//! decisions to the watch hub in order. It never waits for I/O: changes to
//! the provider set arrive committed and built, from the persister task.
//!
//! This file holds the task's state and its loop; the steps live beside
//! it: `streams` (the provider streams and their items), `publishing` (the
//! controller's decisions carried out on the hub) and `commands` (requests
//! from the handles: pin, apply a set, views).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use provisioning_failover::{ControllerError, FailoverController, FailoverPolicy};
use provisioning_provider_api::{
    ClusterProvider, ProviderDescriptor, ProviderId, ProviderSnapshot, SwitchReason,
};
use provisioning_registry::ProvisioningError;
use provisioning_watch_hub::{ProviderWatchHub, PublishOutcome};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tracing::{info, warn};

use crate::command::Command;

mod commands;
mod publishing;
mod streams;

use streams::{RunningStream, StreamItem};

/// How often the snapshot-age gauges are refreshed.
const METRICS_REFRESH: Duration = Duration::from_secs(1);
/// Capacity of the channel from stream tasks to the driver.
const STREAM_CHANNEL: usize = 1024;
/// How long shutdown waits for consumer threads, and for each provider to
/// release what it holds at its backend.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// Everything the driver owns at start.
pub(crate) struct DriverParts {
    pub(crate) controller: FailoverController,
    pub(crate) hub: ProviderWatchHub,
    /// The set to run, highest priority first.
    pub(crate) descriptors: Vec<ProviderDescriptor>,
    pub(crate) providers: BTreeMap<ProviderId, Arc<dyn ClusterProvider>>,
    pub(crate) policy: FailoverPolicy,
    /// The service's seed: each stream's backoff jitter is seeded from it.
    pub(crate) rng_seed: u64,
}

pub(crate) struct Driver {
    pub(crate) controller: FailoverController,
    pub(crate) hub: ProviderWatchHub,
    /// The set last applied, highest priority first: what runs (its enabled
    /// descriptors) and what `providers()` lists.
    descriptors: Vec<ProviderDescriptor>,
    pub(crate) providers: BTreeMap<ProviderId, Arc<dyn ClusterProvider>>,
    pub(crate) policy: FailoverPolicy,
    rng_seed: u64,
    streams: BTreeMap<ProviderId, RunningStream>,
    /// Each provider's reconnect count (streams opened again, recoveries
    /// after a fault) since it entered the running set, shown on its
    /// `provider_stream` span.
    reconnects: BTreeMap<ProviderId, Arc<AtomicU64>>,
    /// The last snapshot each running stream delivered.
    latest: BTreeMap<ProviderId, ProviderSnapshot>,
    /// A provider activated before its snapshot was at hand (it is published
    /// when the snapshot arrives).
    awaiting_snapshot: Option<(ProviderId, Option<(ProviderId, SwitchReason)>)>,
    /// `seq_no` of the published snapshot the suspicion flags were computed
    /// against.
    suspicion_basis: Option<u64>,
    /// When the controller gets the policy's own no-response timeout after
    /// a reload shortened it (see [`set_policy`](Self::set_policy)).
    policy_settles_at: Option<Instant>,
    items_tx: mpsc::Sender<StreamItem>,
    items_rx: mpsc::Receiver<StreamItem>,
}

// The hub's transactions span a whole step of the driver.
impl std::borrow::Borrow<ProviderWatchHub> for Driver {
    fn borrow(&self) -> &ProviderWatchHub {
        &self.hub
    }
}

impl std::borrow::BorrowMut<ProviderWatchHub> for Driver {
    fn borrow_mut(&mut self) -> &mut ProviderWatchHub {
        &mut self.hub
    }
}

impl Driver {
    pub(crate) fn new(parts: DriverParts) -> Self {
        let (items_tx, items_rx) = mpsc::channel(STREAM_CHANNEL);
        let DriverParts {
            controller,
            hub,
            descriptors,
            providers,
            policy,
            rng_seed,
        } = parts;
        // Every series of the running set exists from the first scrape on.
        hub.metrics()
            .set_running_providers(descriptors.iter().filter(|d| d.enabled).map(|d| &d.id));
        Self {
            controller,
            hub,
            descriptors,
            providers,
            policy,
            rng_seed,
            streams: BTreeMap::new(),
            reconnects: BTreeMap::new(),
            latest: BTreeMap::new(),
            awaiting_snapshot: None,
            suspicion_basis: None,
            policy_settles_at: None,
            items_tx,
            items_rx,
        }
    }

    /// Registers every provider with the controller and runs until shutdown.
    pub(crate) async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let now = Instant::now();
        for d in &self.descriptors {
            if let Err(e) =
                self.controller
                    .add_provider(d.id.clone(), d.priority, d.enabled, now.into_std())
            {
                warn!(provider = %d.id, error = %e, "provider not added to the failover controller");
            }
        }
        self.apply_decisions(now, None);
        let mut next_metrics = now + METRICS_REFRESH;
        loop {
            let deadline = [
                self.controller.next_deadline().map(Instant::from_std),
                self.policy_settles_at,
                self.hub.next_deadline().map(Instant::from_std),
                Some(next_metrics),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(next_metrics);
            tokio::select! {
                biased;
                command = commands.recv() => match command {
                    Some(Command::Shutdown(reply)) => {
                        self.shutdown().await;
                        let _ = reply.send(Ok(()));
                        return;
                    }
                    Some(command) => {
                        ProviderWatchHub::transaction(&mut self, |driver: &mut Self| {
                            driver.on_command(command);
                            driver.refresh_suspicion(Instant::now());
                        });
                    }
                    // Every handle is gone: nobody can observe the service.
                    None => {
                        self.shutdown().await;
                        return;
                    }
                },
                Some(item) = self.items_rx.recv() => {
                    let at = item.at;
                    // One wake-up for everything this event publishes (the
                    // hub wakes the consumers before it assesses views).
                    ProviderWatchHub::transaction(&mut self, |driver: &mut Self| {
                        driver.on_item(item);
                        driver.refresh_suspicion(at);
                    });
                }
                () = sleep_until(deadline) => ProviderWatchHub::transaction(&mut self, |driver: &mut Self| {
                    let now = Instant::now();
                    if driver.policy_settles_at.is_some_and(|at| now >= at) {
                        driver.policy_settles_at = None;
                        driver.controller.set_policy(driver.policy.clone(), now.into_std());
                    }
                    driver.controller.tick(now.into_std());
                    driver.apply_decisions(now, None);
                    if let PublishOutcome::Published { seq_no } = driver.hub.tick(now.into_std()) {
                        info!(seq_no, "held shrink confirmed by time and published");
                    }
                    driver.refresh_suspicion(now);
                    if now >= next_metrics {
                        driver.refresh_gauges(now);
                        next_metrics = now + METRICS_REFRESH;
                    }
                }),
            }
        }
    }

    async fn shutdown(&mut self) {
        for (_, stream) in std::mem::take(&mut self.streams) {
            stream.task.abort();
        }
        // Deregister self-registrations and revoke leases, all at once.
        let releases = self.providers.values().map(|provider| {
            let id = provider.descriptor().id.clone();
            async move {
                if tokio::time::timeout(SHUTDOWN_WAIT, provider.shutdown())
                    .await
                    .is_err()
                {
                    warn!(provider = %id, "provider shutdown timed out");
                }
            }
        });
        futures::future::join_all(releases).await;
        if let Err(e) = self.hub.shutdown(SHUTDOWN_WAIT) {
            warn!(error = %e, "watch hub shutdown incomplete");
        }
        info!("provisioning service stopped");
    }
}

/// Maps a controller refusal to the service's error type.
pub(crate) fn controller_error(e: ControllerError) -> ProvisioningError {
    match e {
        ControllerError::UnknownProvider(id) => ProvisioningError::provider_not_found(id.as_str()),
        ControllerError::Disabled(id) => ProvisioningError::ProviderDisabled { id },
        other => ProvisioningError::InvalidArgument {
            message: other.to_string(),
        },
    }
}
