//! [`ProvisioningHandle`]: the running service.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use provisioning_failover::FailoverPolicy;
use provisioning_provider_api::{NodeId, ProviderDescriptor, ProviderId};
use provisioning_registry::{ProviderRegistry, ProvisioningError};
use provisioning_watch_hub::metrics::ProvisioningMetrics;
use provisioning_watch_hub::wire::{ProvisioningEvent, PublishedSnapshot, RunId};
use provisioning_watch_hub::{EventSubscription, HubHandle, TopologyReceiver};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::ProviderView;
use crate::admin_change::AdminChange;
use crate::command::Command;
use crate::local_member::LocalMember;

/// A cheap, cloneable handle to a running service.
///
/// Reads (`topology`, `subscribe`, `events`, `metrics`) never wait for the
/// service; requests (`pin`, `providers`, ...) are carried out in order by
/// its driver task and answer when they took effect. Changes to the
/// provider set (`add_provider`, `remove_provider`, `enable`, `disable`,
/// `reload`) are validated, built and persisted one at a time off the
/// driver task, then applied in that order: a slow disk or a store lock
/// held by another process delays only them, never provider events,
/// failovers or reads. Safe to call from a bridge, inside a bridge call
/// included.
#[derive(Clone)]
pub struct ProvisioningHandle {
    commands: mpsc::Sender<Command>,
    changes: mpsc::Sender<AdminChange>,
    hub: HubHandle,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
    local: LocalMember,
}

impl std::fmt::Debug for ProvisioningHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProvisioningHandle")
            .field("run_id", &self.hub.run_id())
            .finish_non_exhaustive()
    }
}

impl ProvisioningHandle {
    pub(crate) fn new(
        commands: mpsc::Sender<Command>,
        changes: mpsc::Sender<AdminChange>,
        hub: HubHandle,
        mut tasks: Vec<JoinHandle<()>>,
        sinks: Vec<JoinHandle<()>>,
    ) -> Self {
        tasks.extend(sinks);
        Self {
            commands,
            changes,
            hub,
            tasks: Arc::new(Mutex::new(tasks)),
            local: LocalMember::default(),
        }
    }

    pub(crate) fn with_local(mut self, local: LocalMember) -> Self {
        self.local = local;
        self
    }

    pub(crate) fn local_member_filter(&self) -> LocalMember {
        self.local.clone()
    }

    /// The local node, when the service was given one
    /// ([`with_local_member`](crate::ClusterProvisioningService::with_local_member)).
    pub fn local_member(&self) -> Option<&NodeId> {
        self.local.id()
    }

    /// This run's id (new on every start).
    pub fn run_id(&self) -> RunId {
        self.hub.run_id()
    }

    /// The latest published snapshot, if any was published.
    pub fn topology(&self) -> Option<Arc<PublishedSnapshot>> {
        self.hub.latest()
    }

    /// A latest-topology receiver (only the newest snapshot is kept). A
    /// `tokio::sync::watch` receiver, usable without a tokio runtime;
    /// [`snapshots`](Self::snapshots) is the same as a plain stream.
    pub fn subscribe(&self) -> TopologyReceiver {
        self.hub.subscribe_topology()
    }

    /// A bounded stream of every event line (CONTRACTS §3), starting with
    /// the retained lines, `resync` and the current snapshot. A subscriber
    /// that falls behind gets `resync` and the current snapshot.
    pub fn events(&self) -> Result<EventSubscription, ProvisioningError> {
        self.hub
            .subscribe_events("events")
            .map_err(crate::service::hub_error)
    }

    /// A bounded stream that resumes after `since`: every line with a
    /// greater `seq_no` still held by the history, then live lines; or, when
    /// the history no longer reaches back that far, the retained lines,
    /// `resync` and the current snapshot, as [`events`](Self::events) starts.
    /// `events_since(0)` right after [`start`](crate::ClusterProvisioningService::start)
    /// sees the run from its first line, whatever was published meanwhile.
    pub fn events_since(&self, since: u64) -> Result<EventSubscription, ProvisioningError> {
        self.hub
            .subscribe_events_since("events", since)
            .map_err(crate::service::hub_error)
    }

    /// Lines retained for late subscribers (last termination per provider,
    /// `provisioning_unavailable` while it lasts).
    pub fn retained(&self) -> Vec<Arc<ProvisioningEvent>> {
        self.hub.retained()
    }

    /// Whether no provider is usable right now.
    pub fn is_unavailable(&self) -> bool {
        self.hub.is_unavailable()
    }

    /// The service's metrics.
    pub fn metrics(&self) -> ProvisioningMetrics {
        self.hub.metrics()
    }

    /// The watch hub's handle (history for `since` replay, consumer stats).
    pub fn hub(&self) -> &HubHandle {
        &self.hub
    }

    async fn request<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, ProvisioningError>>) -> Command,
    ) -> Result<T, ProvisioningError> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    async fn change<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, ProvisioningError>>) -> AdminChange,
    ) -> Result<T, ProvisioningError> {
        let (tx, rx) = oneshot::channel();
        self.changes.send(make(tx)).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Pins `id` (`manual_override`): it becomes active at once and stays
    /// active while alive (ARCHITECTURE "Failover rules" 8).
    pub async fn pin(&self, id: &ProviderId) -> Result<(), ProvisioningError> {
        self.request(|tx| Command::Pin(id.clone(), tx)).await
    }

    /// Returns to the rules, cooldown included.
    pub async fn unpin(&self) -> Result<(), ProvisioningError> {
        self.request(Command::Unpin).await
    }

    /// Validates, persists (atomically, through the registry's store) and
    /// starts a provider.
    ///
    /// Every change to the set is a read-modify-write of the stored set
    /// (one save), and what it commits becomes the running set: hand edits
    /// of the store are taken along, so a provider removed from the file by
    /// hand stops too. The change is refused, and nothing written, when a
    /// provider of that set cannot be built or the policy does not fit it.
    /// While another process holds the store's lock longer than the lock
    /// timeout, it fails with `store_busy` having changed nothing.
    pub async fn add_provider(
        &self,
        descriptor: ProviderDescriptor,
    ) -> Result<(), ProvisioningError> {
        self.change(|tx| AdminChange::Add(Box::new(descriptor), tx))
            .await
    }

    /// Stops, removes and persists; removing the active provider switches at
    /// once (reason `removed`). Persisted and applied as
    /// [`add_provider`](Self::add_provider) is.
    pub async fn remove_provider(&self, id: &str) -> Result<ProviderDescriptor, ProvisioningError> {
        self.change(|tx| AdminChange::Remove(id.to_owned(), tx))
            .await
    }

    /// Enables a provider (persisted as [`add_provider`](Self::add_provider)
    /// is).
    pub async fn enable(&self, id: &str) -> Result<(), ProvisioningError> {
        self.change(|tx| AdminChange::SetEnabled(id.to_owned(), true, tx))
            .await
    }

    /// Disables a provider (persisted as
    /// [`add_provider`](Self::add_provider) is); disabling the active one
    /// switches at once (reason `removed`).
    pub async fn disable(&self, id: &str) -> Result<(), ProvisioningError> {
        self.change(|tx| AdminChange::SetEnabled(id.to_owned(), false, tx))
            .await
    }

    /// Replaces the running provider set with `registry`'s, atomically: if
    /// any provider of the new set cannot be built or the policy conflicts
    /// with it, nothing changes and the error is returned. Later changes
    /// persist through `registry`'s store.
    pub async fn reload(&self, registry: ProviderRegistry) -> Result<(), ProvisioningError> {
        self.change(|tx| AdminChange::Reload(registry, None, tx))
            .await
    }

    /// [`reload`](Self::reload) with a policy, applied in place as a
    /// whole with the set: the same run (same `run_id`, no `resync`), the
    /// last snapshot stays published, and the new numbers apply to every
    /// decision from then on — running timers (cooldown, fail-back,
    /// no-response timeout, backoff) are measured with them, the shrink
    /// guard judges by them, and running streams are reopened with the new
    /// heartbeat interval and retry schedule when those changed. If the set
    /// cannot be built or the policy does not fit it, nothing changes.
    pub async fn reload_with_policy(
        &self,
        registry: ProviderRegistry,
        policy: FailoverPolicy,
    ) -> Result<(), ProvisioningError> {
        self.change(|tx| AdminChange::Reload(registry, Some(Box::new(policy)), tx))
            .await
    }

    /// Re-reads the service's own store and makes what it holds the
    /// running set, with `policy` when given (applied in place as with
    /// [`reload_with_policy`](Self::reload_with_policy)). Returns the set
    /// applied.
    ///
    /// The store is read by the persister under the store's lock, after
    /// every change queued before this call: a change that was answered is
    /// never undone by a reload that read the store before it was written.
    /// An invalid store, a provider that cannot be built or a policy that
    /// does not fit the set is returned as the error and nothing changes.
    pub async fn reload_from_store(
        &self,
        policy: Option<FailoverPolicy>,
    ) -> Result<Vec<ProviderDescriptor>, ProvisioningError> {
        self.change(|tx| AdminChange::ReloadStore(policy.map(Box::new), tx))
            .await
    }

    /// Every provider of the set last applied with its live state,
    /// highest priority first. Never waits for a change being persisted.
    pub async fn providers(&self) -> Result<Vec<ProviderView>, ProvisioningError> {
        self.request(Command::Providers).await
    }

    /// Stops every stream, consumer thread and task of the service and waits
    /// for them. Idempotent.
    pub async fn shutdown(&self) -> Result<(), ProvisioningError> {
        let _ = self.request(Command::Shutdown).await;
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        for task in tasks {
            // Sink forwarders end when the hub closes their subscriptions.
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        Ok(())
    }

    /// Whether every task of the service has finished.
    pub fn is_stopped(&self) -> bool {
        self.tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .all(JoinHandle::is_finished)
            && self.hub.is_shut_down()
    }
}

fn stopped() -> ProvisioningError {
    ProvisioningError::ProvisioningUnavailable {
        detail: "the provisioning service has stopped".into(),
    }
}
