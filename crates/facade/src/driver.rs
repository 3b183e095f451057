//! The service's single driver task: opens and closes provider streams as
//! the failover controller decides, feeds their events in, and hands the
//! decisions to the watch hub in order. It never waits for I/O: changes to
//! the provider set arrive committed and built, from the persister task.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use provisioning_failover::{
    ControllerError, Decision, FailoverController, FailoverPolicy, ProviderHandle,
};
use provisioning_provider_api::{
    ClusterProvider, ProviderDescriptor, ProviderEvent, ProviderId, ProviderSnapshot,
    ProviderTermination, StreamOptions, SwitchReason,
};
use provisioning_registry::ProvisioningError;
use provisioning_watch_hub::{ProviderWatchHub, PublishOutcome};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};
use tracing::{debug, info, info_span, warn};

use crate::ProviderView;
use crate::command::Command;
use crate::liveness_prober::LivenessProber;
use crate::next_set::NextSet;
use crate::provider_builder::needs_build;

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
    /// What the stream was opened with: a policy change reopens it.
    options: StreamOptions,
    task: JoinHandle<()>,
}

/// Everything the driver owns at start.
pub(crate) struct DriverParts {
    pub(crate) controller: FailoverController,
    pub(crate) hub: ProviderWatchHub,
    /// The set to run, highest priority first.
    pub(crate) descriptors: Vec<ProviderDescriptor>,
    pub(crate) providers: BTreeMap<ProviderId, Arc<dyn ClusterProvider>>,
    pub(crate) policy: FailoverPolicy,
}

pub(crate) struct Driver {
    pub(crate) controller: FailoverController,
    pub(crate) hub: ProviderWatchHub,
    /// The set last applied, highest priority first: what runs (its enabled
    /// descriptors) and what `providers()` lists.
    descriptors: Vec<ProviderDescriptor>,
    pub(crate) providers: BTreeMap<ProviderId, Arc<dyn ClusterProvider>>,
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
            streams: BTreeMap::new(),
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
        let options = self.policy.stream_options();
        let task = self.spawn_stream(provider, handle.clone(), options);
        self.streams.insert(
            id,
            RunningStream {
                handle,
                options,
                task,
            },
        );
    }

    /// Runs one stream of `provider`, tagging its items with `tag`, with
    /// the provider's liveness probes beside it: their faults travel as
    /// the stream's own.
    fn spawn_stream(
        &self,
        provider: Arc<dyn ClusterProvider>,
        tag: ProviderHandle,
        options: StreamOptions,
    ) -> JoinHandle<()> {
        let mut stream = provider.stream(options);
        let mut prober = LivenessProber::new(provider, options, self.hub.metrics().clone());
        let tx = self.items_tx.clone();
        tokio::spawn(async move {
            let mut terminated = false;
            loop {
                let event = tokio::select! {
                    event = stream.next() => match event {
                        Some(event) => {
                            if event.is_liveness() {
                                prober.on_stream_liveness();
                            }
                            event
                        }
                        None => break,
                    },
                    fault = prober.next_fault() => ProviderEvent::Fault(fault),
                };
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
        })
    }

    /// Reopens every running stream opened with other options than the
    /// policy's (the heartbeat interval a provider keeps, its fast retries
    /// and backoff are fixed when its stream opens). The controller keeps
    /// its view of the provider: the reopened stream carries the same
    /// handle, its first snapshot is published only if it differs, and the
    /// last snapshot stays at hand for a switch meanwhile.
    fn reopen_streams(&mut self) {
        let options = self.policy.stream_options();
        let stale: Vec<ProviderId> = self
            .streams
            .iter()
            .filter(|(_, s)| s.options != options)
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            let Some(provider) = self.providers.get(&id).cloned() else {
                continue;
            };
            let Some(stream) = self.streams.get(&id) else {
                continue;
            };
            let handle = stream.handle.clone();
            let task = self.spawn_stream(provider, handle, options);
            if let Some(stream) = self.streams.get_mut(&id) {
                stream.task.abort();
                stream.task = task;
                stream.options = options;
            }
            debug!(provider = %id, "stream reopened with the new policy's options");
        }
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
            Command::Apply(next, reply) => {
                let result = self.apply_set(*next, now);
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

    /// Makes a committed set the running set, in memory: every provider
    /// of the previous set that is gone or changed leaves (its stream
    /// closes, a removed one's metrics are forgotten), every new or changed
    /// one enters with its built provider, enabled flags are toggled in
    /// place, and the policy, when given, replaces the running one. The
    /// same reconciliation serves API changes and reloads, so what runs is
    /// always exactly the enabled descriptors of the last set applied
    /// (CONTRACTS §4a rule 7). Refused whole, before anything changes, if a
    /// new or changed descriptor comes without its provider.
    fn apply_set(&mut self, next: NextSet, now: Instant) -> Result<(), ProvisioningError> {
        let NextSet {
            descriptors: mut next,
            mut built,
            policy,
        } = next;
        let current: BTreeMap<ProviderId, ProviderDescriptor> = self
            .descriptors
            .iter()
            .map(|d| (d.id.clone(), d.clone()))
            .collect();
        if let Some(d) = next
            .iter()
            .find(|d| needs_build(current.get(&d.id), d) && !built.contains_key(&d.id))
        {
            return Err(ProvisioningError::invalid(
                Some(&d.id),
                None,
                "no provider was built for this descriptor; the running set is kept",
            ));
        }
        // Only what is new or changed enters anew.
        built.retain(|id, _| {
            next.iter()
                .any(|d| &d.id == id && needs_build(current.get(id), d))
        });
        // The new numbers first, so streams opened below use them.
        let policy_changed = policy.is_some_and(|policy| self.set_policy(policy, now));
        let next_ids: BTreeMap<ProviderId, ProviderDescriptor> =
            next.iter().map(|d| (d.id.clone(), d.clone())).collect();
        // Removed or replaced providers leave first (a replaced one re-enters
        // below with its new descriptor).
        for id in current.keys() {
            let removed = !next_ids.contains_key(id);
            if removed || built.contains_key(id) {
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
                if removed {
                    self.hub.metrics().forget_provider(id);
                    info!(provider = %id, "provider left the running set");
                }
            }
        }
        for (id, d) in &next_ids {
            if let Some(provider) = built.remove(id) {
                self.providers.insert(id.clone(), provider);
                if let Err(e) =
                    self.controller
                        .add_provider(id.clone(), d.priority, d.enabled, now.into_std())
                {
                    // A validated set has unique ids and priorities, and
                    // every provider that leaves has left by now.
                    warn!(provider = %id, error = %e, "provider not added to the failover controller");
                }
            } else if let Some(old) = current.get(id)
                && old.enabled != d.enabled
            {
                let result = if d.enabled {
                    self.controller.enable_provider(id, now.into_std())
                } else {
                    self.controller.disable_provider(id, now.into_std())
                };
                if let Err(e) = result {
                    warn!(provider = %id, error = %e, "enabled state not changed in the failover controller");
                }
            }
        }
        next.sort_by_key(|d| std::cmp::Reverse(d.priority));
        self.descriptors = next;
        // The metrics follow the running set at once: a new provider's
        // series start at 0, a disabled or removed one's are gone.
        self.hub
            .metrics()
            .set_running_providers(self.descriptors.iter().filter(|d| d.enabled).map(|d| &d.id));
        debug!(
            providers = self.descriptors.len(),
            policy_changed, "provider set applied"
        );
        self.apply_decisions(now, None);
        if policy_changed {
            self.reopen_streams();
        }
        Ok(())
    }

    /// Replaces the policy in place (same run, no resync): the controller
    /// measures running timers with the new numbers from now on, the hub
    /// judges shrinks by them, and streams are reopened with the new options
    /// once the set is applied. Returns whether anything changed.
    ///
    /// One number waits: a shorter no-response timeout. A running stream
    /// heartbeats on the old interval until it is reopened, so measuring its
    /// silence so far against the new timeout would declare a healthy
    /// provider unreachable. The controller keeps the longer timeout for one
    /// new timeout — long enough for every reopened stream to speak on the
    /// new schedule — then gets the policy as it is.
    fn set_policy(&mut self, policy: FailoverPolicy, now: Instant) -> bool {
        if policy == self.policy {
            return false;
        }
        if let Err(e) = self
            .hub
            .set_shrink_guard(policy.max_shrink_ratio, policy.shrink_confirm)
        {
            // The policy was validated before it got here.
            warn!(error = %e, "shrink guard kept its numbers");
        }
        let in_force = self.controller.policy().timeout;
        let mut deciding = policy.clone();
        if policy.timeout < in_force && !self.streams.is_empty() {
            deciding.timeout = in_force;
            self.policy_settles_at = Some(now + policy.timeout);
        } else {
            self.policy_settles_at = None;
        }
        self.controller.set_policy(deciding, now.into_std());
        self.policy = policy;
        // Suspicion flags depend on the shrink ratio: assess them again.
        self.suspicion_basis = None;
        info!("failover policy replaced in place");
        true
    }

    fn views(&self, now: Instant) -> Vec<ProviderView> {
        let now = now.into_std();
        self.descriptors
            .iter()
            .cloned()
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
