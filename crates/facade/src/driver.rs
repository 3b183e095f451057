//! The service's single driver task: opens and closes provider streams as
//! the failover controller decides, feeds their events in, and hands the
//! decisions to the watch hub in order.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use provisioning_failover::{
    ControllerError, Decision, FailoverController, FailoverPolicy, ProviderHandle,
};
use provisioning_provider_api::{
    ClusterProvider, ProviderDescriptor, ProviderEvent, ProviderId, ProviderSnapshot,
    ProviderTermination, SwitchReason,
};
use provisioning_registry::{ProviderRegistry, ProvisioningError};
use provisioning_watch_hub::{ProviderWatchHub, PublishOutcome};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};
use tracing::{debug, info, info_span, warn};

use crate::command::Command;
use crate::provider_factory::{FactoryContext, ProviderFactories};
use crate::{ProviderView, policy_check};

/// How often the snapshot-age gauges are refreshed.
const METRICS_REFRESH: Duration = Duration::from_secs(1);
/// Capacity of the channel from stream tasks to the driver.
const STREAM_CHANNEL: usize = 1024;
/// How long shutdown waits for consumer threads, and for each provider to
/// release what it holds at its backend.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// One event from a provider's stream, tagged with the stream it came from.
struct StreamItem {
    handle: ProviderHandle,
    event: ProviderEvent,
    at: Instant,
}

struct RunningStream {
    handle: ProviderHandle,
    task: JoinHandle<()>,
}

/// Everything the driver owns at start.
pub(crate) struct DriverParts {
    pub(crate) controller: FailoverController,
    pub(crate) hub: ProviderWatchHub,
    pub(crate) registry: ProviderRegistry,
    pub(crate) providers: BTreeMap<ProviderId, Arc<dyn ClusterProvider>>,
    pub(crate) instances: BTreeMap<ProviderId, Arc<dyn ClusterProvider>>,
    pub(crate) factories: ProviderFactories,
    pub(crate) context: FactoryContext,
    pub(crate) policy: FailoverPolicy,
}

pub(crate) struct Driver {
    pub(crate) controller: FailoverController,
    pub(crate) hub: ProviderWatchHub,
    pub(crate) registry: ProviderRegistry,
    pub(crate) providers: BTreeMap<ProviderId, Arc<dyn ClusterProvider>>,
    /// Provider instances supplied by the user, by id: used instead of the
    /// factory when such an id is (re)registered.
    pub(crate) instances: BTreeMap<ProviderId, Arc<dyn ClusterProvider>>,
    pub(crate) factories: ProviderFactories,
    pub(crate) context: FactoryContext,
    pub(crate) policy: FailoverPolicy,
    streams: BTreeMap<ProviderId, RunningStream>,
    /// The last snapshot each running stream delivered.
    latest: BTreeMap<ProviderId, ProviderSnapshot>,
    /// A provider activated before its snapshot was at hand (it is published
    /// when the snapshot arrives).
    awaiting_snapshot: Option<(ProviderId, Option<(ProviderId, SwitchReason)>)>,
    /// `seq_no` of the published snapshot the suspicion flags were computed
    /// against.
    suspicion_basis: Option<u64>,
    items_tx: mpsc::Sender<StreamItem>,
    items_rx: mpsc::Receiver<StreamItem>,
}

impl Driver {
    pub(crate) fn new(parts: DriverParts) -> Self {
        let (items_tx, items_rx) = mpsc::channel(STREAM_CHANNEL);
        let DriverParts {
            controller,
            hub,
            registry,
            providers,
            instances,
            factories,
            context,
            policy,
        } = parts;
        // Every series of the running set exists from the first scrape on.
        let enabled = registry.list();
        hub.metrics()
            .set_running_providers(enabled.iter().filter(|d| d.enabled).map(|d| &d.id));
        Self {
            controller,
            hub,
            registry,
            providers,
            instances,
            factories,
            context,
            policy,
            streams: BTreeMap::new(),
            latest: BTreeMap::new(),
            awaiting_snapshot: None,
            suspicion_basis: None,
            items_tx,
            items_rx,
        }
    }

    /// Registers every provider with the controller and runs until shutdown.
    pub(crate) async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let now = Instant::now();
        let descriptors = self.registry.list();
        for d in &descriptors {
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
                        {
                            let _wakes = self.hub.batch_wakes();
                            self.on_command(command);
                        }
                        let _wakes = self.hub.batch_wakes();
                        self.refresh_suspicion(Instant::now());
                    }
                    // Every handle is gone: nobody can observe the service.
                    None => {
                        self.shutdown().await;
                        return;
                    }
                },
                Some(item) = self.items_rx.recv() => {
                    let at = item.at;
                    {
                        // One wake-up for everything this event publishes.
                        let _wakes = self.hub.batch_wakes();
                        self.on_item(item);
                    }
                    // Consumers are woken before the views are assessed
                    // against what they now hold.
                    let _wakes = self.hub.batch_wakes();
                    self.refresh_suspicion(at);
                }
                () = sleep_until(deadline) => {
                    let _wakes = self.hub.batch_wakes();
                    let now = Instant::now();
                    self.controller.tick(now.into_std());
                    self.apply_decisions(now, None);
                    if let PublishOutcome::Published { seq_no } = self.hub.tick(now.into_std()) {
                        info!(seq_no, "held shrink confirmed by time and published");
                    }
                    self.refresh_suspicion(now);
                    if now >= next_metrics {
                        self.refresh_gauges(now);
                        next_metrics = now + METRICS_REFRESH;
                    }
                }
            }
        }
    }

    /// Decision 5 compares each candidate's view with the published one:
    /// after every publication of a snapshot (a switch included, even to an
    /// identical view), every running provider's flag and disagreement gauge
    /// are computed again (a provider whose view is unchanged only
    /// heartbeats). The hub keeps each standby's diff from that assessment,
    /// so that a switch to it publishes without diffing.
    fn refresh_suspicion(&mut self, now: Instant) {
        let basis = self.hub.latest().map(|l| l.seq_no());
        if basis == self.suspicion_basis {
            return;
        }
        self.suspicion_basis = basis;
        for (id, snapshot) in &self.latest {
            let suspicious = self.hub.assess_candidate(id, snapshot);
            // Only fails for an unknown id; `latest` holds running ones.
            let _ = self
                .controller
                .set_suspicious(id, snapshot.hash(), suspicious, now.into_std());
        }
        self.apply_decisions(now, None);
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

    fn on_item(&mut self, item: StreamItem) {
        let id = item.handle.id().clone();
        let current = self
            .streams
            .get(&id)
            .is_some_and(|s| s.handle == item.handle);
        if !current {
            // A stream closed since this item was sent.
            return;
        }
        let _span = info_span!("provider_event", provider = %id).entered();
        let now = item.at;
        match &item.event {
            ProviderEvent::Snapshot(snapshot) => {
                self.latest.insert(id.clone(), snapshot.clone());
                let suspicious = self.hub.assess_candidate(&id, snapshot);
                // Only fails for an unknown id, and the stream is current.
                let _ = self.controller.set_suspicious(
                    &id,
                    snapshot.hash(),
                    suspicious,
                    now.into_std(),
                );
            }
            ProviderEvent::Fault(fault) => {
                debug!(kind = %fault.kind, permanent = fault.permanent, detail = %fault.detail, "fault");
                self.hub.metrics().record_stream_interruption(&id);
            }
            ProviderEvent::Terminated(termination) => {
                info!(reason = termination.as_str(), "stream terminated");
                self.hub.terminated(id.clone(), termination);
                if let Some(stream) = self.streams.remove(&id) {
                    stream.task.abort();
                }
            }
            ProviderEvent::Heartbeat(_) => {}
        }
        self.controller
            .on_event(&item.handle, &item.event, now.into_std());
        let snapshot = match item.event {
            ProviderEvent::Snapshot(snapshot) => Some((id, snapshot)),
            _ => None,
        };
        self.apply_decisions(now, snapshot);
    }

    /// Applies the controller's decisions; then publishes `arrived` (a
    /// snapshot that just came in) if no activation or switch did.
    fn apply_decisions(&mut self, now: Instant, arrived: Option<(ProviderId, ProviderSnapshot)>) {
        let mut consumed = false;
        for decision in self.controller.drain() {
            match decision {
                Decision::OpenStream { handle } => self.open_stream(handle),
                Decision::CloseStream { handle } => self.close_stream(&handle),
                Decision::Activate { to } => {
                    info!(to = %to, "first activation");
                    consumed |= arrived.as_ref().is_some_and(|(id, _)| id == &to);
                    self.publish_switch(to, None, now);
                }
                Decision::Switch { from, to, reason } => {
                    info!(from = %from, to = %to, reason = %reason, "switch");
                    consumed |= arrived.as_ref().is_some_and(|(id, _)| id == &to);
                    self.publish_switch(to, Some((from, reason)), now);
                }
                Decision::HealthChanged {
                    id,
                    health,
                    code,
                    detail,
                } => {
                    info!(provider = %id, health = %health, code = code.unwrap_or("-"), detail = %detail, "health changed");
                    self.hub.provider_health(id, health, code, &detail);
                }
                Decision::BackoffUntil { id, until } => {
                    debug!(provider = %id, in_ms = until.saturating_duration_since(now.into_std()).as_millis() as u64, "backoff");
                }
                Decision::AllDown { since, last_active } => {
                    let since_ms = wall_clock_ms(now.into_std(), since);
                    warn!(last_active = ?last_active.as_ref().map(ProviderId::as_str), "all providers down: provisioning unavailable");
                    self.hub.unavailable(since_ms);
                }
                Decision::AllDownEnded { .. } => info!("a provider is usable again"),
                _ => {}
            }
        }
        if consumed {
            return;
        }
        if let Some((id, snapshot)) = arrived {
            if self
                .awaiting_snapshot
                .as_ref()
                .is_some_and(|(to, _)| to == &id)
            {
                self.publish_switch(id, None, now);
                return;
            }
            let outcome = if self.hub.active_provider() == Some(&id) {
                self.hub
                    .publish_active(id.clone(), snapshot, now.into_std())
            } else {
                self.hub.observe_standby(&id, &snapshot, now.into_std())
            };
            if let PublishOutcome::HeldShrink { until } = outcome {
                info!(provider = %id, hold_ms = until.saturating_duration_since(now.into_std()).as_millis() as u64, "suspicious shrink held");
            }
        }
    }

    /// Publishes an activation (`change == None`) or a switch with the
    /// target's latest snapshot.
    fn publish_switch(
        &mut self,
        to: ProviderId,
        change: Option<(ProviderId, SwitchReason)>,
        now: Instant,
    ) {
        let change = change.or_else(|| {
            self.awaiting_snapshot
                .take()
                .and_then(|(_, pending)| pending)
        });
        let Some(snapshot) = self.latest.get(&to).cloned() else {
            // Cannot happen with a conforming controller (a provider becomes
            // eligible through a snapshot); publish as soon as one arrives.
            warn!(provider = %to, "activated before its first snapshot");
            self.awaiting_snapshot = Some((to, change));
            return;
        };
        self.awaiting_snapshot = None;
        let outcome = match change {
            Some((from, reason)) => {
                self.hub
                    .switch(Some(from), to, reason, snapshot, now.into_std())
            }
            None if self.hub.latest().is_none() => {
                match self
                    .hub
                    .activate(to.clone(), snapshot.clone(), now.into_std())
                {
                    Ok(outcome) => outcome,
                    Err(e) => {
                        warn!(error = %e, "activation refused by the hub; publishing as a recovery");
                        self.hub
                            .switch(None, to, SwitchReason::Recovered, snapshot, now.into_std())
                    }
                }
            }
            None => self
                .hub
                .switch(None, to, SwitchReason::Recovered, snapshot, now.into_std()),
        };
        debug!(?outcome, "published");
    }

    fn open_stream(&mut self, handle: ProviderHandle) {
        let id = handle.id().clone();
        let Some(provider) = self.providers.get(&id).cloned() else {
            warn!(provider = %id, "stream requested for an unknown provider");
            return;
        };
        if let Some(previous) = self.streams.remove(&id) {
            previous.task.abort();
        }
        self.latest.remove(&id);
        debug!(provider = %id, "stream opened");
        let mut stream = provider.stream(self.policy.stream_options());
        let tx = self.items_tx.clone();
        let tag = handle.clone();
        let task = tokio::spawn(async move {
            let mut terminated = false;
            while let Some(event) = stream.next().await {
                terminated = matches!(event, ProviderEvent::Terminated(_));
                let item = StreamItem {
                    handle: tag.clone(),
                    event,
                    at: Instant::now(),
                };
                if tx.send(item).await.is_err() || terminated {
                    return;
                }
            }
            if !terminated {
                // A stream that ends without saying why ended normally.
                let item = StreamItem {
                    handle: tag,
                    event: ProviderEvent::Terminated(ProviderTermination::Ended),
                    at: Instant::now(),
                };
                let _ = tx.send(item).await;
            }
        });
        self.streams.insert(id, RunningStream { handle, task });
    }

    fn close_stream(&mut self, handle: &ProviderHandle) {
        let id = handle.id();
        if self.streams.get(id).is_some_and(|s| &s.handle == handle) {
            if let Some(stream) = self.streams.remove(id) {
                stream.task.abort();
            }
            self.latest.remove(id);
            debug!(provider = %id, "stream closed");
        }
    }

    fn refresh_gauges(&self, now: Instant) {
        let metrics = self.hub.metrics();
        let statuses = self.controller.statuses();
        // The running set of CONTRACTS §5: series of a provider that left it
        // go within a refresh, a new one's start at 0.
        metrics.set_running_providers(statuses.iter().filter(|s| s.enabled).map(|s| &s.id));
        for status in statuses {
            if let Some(at) = status.last_liveness_at.filter(|_| status.running) {
                metrics.set_snapshot_age(&status.id, now.into_std().saturating_duration_since(at));
            }
        }
    }

    /// Carries out one request (shutdown is handled by the run loop).
    fn on_command(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Pin(id, reply) => {
                let result = self
                    .controller
                    .pin(&id, now.into_std())
                    .map_err(controller_error);
                self.apply_decisions(now, None);
                let _ = reply.send(result);
            }
            Command::Unpin(reply) => {
                self.controller.unpin(now.into_std());
                self.apply_decisions(now, None);
                let _ = reply.send(Ok(()));
            }
            Command::Add(descriptor, reply) => {
                let result = self.add(*descriptor, now);
                let _ = reply.send(result);
            }
            Command::Remove(id, reply) => {
                let result = self.remove(&id, now);
                let _ = reply.send(result);
            }
            Command::SetEnabled(id, enabled, reply) => {
                let result = self.set_enabled(&id, enabled, now);
                let _ = reply.send(result);
            }
            Command::Reload(registry, reply) => {
                let result = self.reload(registry, now);
                let _ = reply.send(result);
            }
            Command::Providers(reply) => {
                let _ = reply.send(Ok(self.views(now)));
            }
            // The run loop handles shutdown before dispatching here.
            Command::Shutdown(reply) => {
                let _ = reply.send(Ok(()));
            }
        }
    }

    fn build(
        &self,
        descriptor: &ProviderDescriptor,
    ) -> Result<Arc<dyn ClusterProvider>, ProvisioningError> {
        match self.instances.get(&descriptor.id) {
            Some(instance) => Ok(instance.clone()),
            None => self.factories.build(descriptor, &self.context),
        }
    }

    fn add(
        &mut self,
        descriptor: ProviderDescriptor,
        now: Instant,
    ) -> Result<(), ProvisioningError> {
        // Validate and build before anything is persisted or started.
        self.registry.validator().validate(&descriptor)?;
        let provider = self.build(&descriptor)?;
        let mut all = self.registry.list();
        all.push(descriptor.clone());
        policy_check(&self.policy, &all)?;
        self.registry
            .update(|set| set.register(descriptor.clone()))?;
        self.providers.insert(descriptor.id.clone(), provider);
        self.controller
            .add_provider(
                descriptor.id.clone(),
                descriptor.priority,
                descriptor.enabled,
                now.into_std(),
            )
            .map_err(controller_error)?;
        info!(provider = %descriptor.id, priority = descriptor.priority, "provider added");
        self.apply_decisions(now, None);
        Ok(())
    }

    fn remove(&mut self, id: &str, now: Instant) -> Result<ProviderDescriptor, ProvisioningError> {
        let removed = self.registry.update(|set| set.unregister(id))?;
        self.controller
            .remove_provider(&removed.id, now.into_std())
            .map_err(controller_error)?;
        self.apply_decisions(now, None);
        if let Some(stream) = self.streams.remove(&removed.id) {
            stream.task.abort();
        }
        self.latest.remove(&removed.id);
        if let Some(provider) = self.providers.remove(&removed.id) {
            release(provider);
        }
        self.hub.metrics().forget_provider(&removed.id);
        info!(provider = %removed.id, "provider removed");
        Ok(removed)
    }

    fn set_enabled(
        &mut self,
        id: &str,
        enabled: bool,
        now: Instant,
    ) -> Result<(), ProvisioningError> {
        self.registry
            .update(|set| set.set_enabled(id, enabled).map(drop))?;
        let id = ProviderId::new(id).map_err(|e| ProvisioningError::InvalidArgument {
            message: e.to_string(),
        })?;
        let result = if enabled {
            self.controller.enable_provider(&id, now.into_std())
        } else {
            self.controller.disable_provider(&id, now.into_std())
        };
        result.map_err(controller_error)?;
        info!(provider = %id, enabled, "provider enabled state changed");
        self.apply_decisions(now, None);
        Ok(())
    }

    fn reload(
        &mut self,
        registry: ProviderRegistry,
        now: Instant,
    ) -> Result<(), ProvisioningError> {
        let next = registry.list();
        policy_check(&self.policy, &next)?;
        let current: BTreeMap<ProviderId, ProviderDescriptor> = self
            .registry
            .list()
            .into_iter()
            .map(|d| (d.id.clone(), d))
            .collect();
        // Build every new or changed provider first: a set that cannot start
        // is refused whole and the running set stays.
        let mut built = BTreeMap::new();
        for d in &next {
            let changed = current.get(&d.id).is_none_or(|old| {
                // The enabled flag alone is toggled in place, not rebuilt.
                let mut same_flag = old.clone();
                same_flag.enabled = d.enabled;
                &same_flag != d
            });
            if changed {
                built.insert(d.id.clone(), self.build(d)?);
            }
        }
        let next_ids: BTreeMap<ProviderId, ProviderDescriptor> =
            next.into_iter().map(|d| (d.id.clone(), d)).collect();
        // Removed or replaced providers leave first (a replaced one re-enters
        // below with its new descriptor).
        for id in current.keys() {
            if !next_ids.contains_key(id) || built.contains_key(id) {
                let _ = self.controller.remove_provider(id, now.into_std());
                self.apply_decisions(now, None);
                if let Some(stream) = self.streams.remove(id) {
                    stream.task.abort();
                }
                self.latest.remove(id);
                if let Some(provider) = self.providers.remove(id) {
                    // A user-supplied instance is reused, not released.
                    let reused = built.get(id).is_some_and(|b| Arc::ptr_eq(b, &provider));
                    if !reused {
                        release(provider);
                    }
                }
            }
        }
        for (id, d) in &next_ids {
            if let Some(provider) = built.remove(id) {
                self.providers.insert(id.clone(), provider);
                self.controller
                    .add_provider(id.clone(), d.priority, d.enabled, now.into_std())
                    .map_err(controller_error)?;
            } else if let Some(old) = current.get(id)
                && old.enabled != d.enabled
            {
                let result = if d.enabled {
                    self.controller.enable_provider(id, now.into_std())
                } else {
                    self.controller.disable_provider(id, now.into_std())
                };
                result.map_err(controller_error)?;
            }
        }
        self.registry = registry;
        info!(providers = next_ids.len(), "provider set reloaded");
        self.apply_decisions(now, None);
        Ok(())
    }

    fn views(&self, now: Instant) -> Vec<ProviderView> {
        let now = now.into_std();
        self.registry
            .list()
            .into_iter()
            .map(|descriptor| {
                let status = self.controller.status(&descriptor.id);
                ProviderView {
                    health: status.as_ref().and_then(|s| s.health),
                    active: status.as_ref().is_some_and(|s| s.active),
                    standby: status.as_ref().is_some_and(|s| s.standby),
                    pinned: status.as_ref().is_some_and(|s| s.pinned),
                    consecutive_errors: status.as_ref().map_or(0, |s| s.consecutive_errors),
                    last_event_age: status
                        .as_ref()
                        .and_then(|s| s.last_event_at)
                        .map(|at| now.saturating_duration_since(at)),
                    backoff_remaining: status
                        .as_ref()
                        .and_then(|s| s.backoff_until)
                        .map(|until| until.saturating_duration_since(now)),
                    members: self.latest.get(&descriptor.id).map(ProviderSnapshot::len),
                    descriptor,
                }
            })
            .collect()
    }
}

/// Lets a provider that left the running set release what it holds at its
/// backend, without holding up the driver.
fn release(provider: Arc<dyn ClusterProvider>) {
    tokio::spawn(async move {
        let id = provider.descriptor().id.clone();
        if tokio::time::timeout(SHUTDOWN_WAIT, provider.shutdown())
            .await
            .is_err()
        {
            warn!(provider = %id, "provider shutdown timed out");
        }
    });
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

/// Wall-clock milliseconds of `at`, given that `now` is the current instant.
fn wall_clock_ms(now: std::time::Instant, at: std::time::Instant) -> u64 {
    let wall = SystemTime::now()
        .checked_sub(now.saturating_duration_since(at))
        .unwrap_or(UNIX_EPOCH);
    wall.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
