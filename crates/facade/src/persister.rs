//! The service's persister task: carries out changes to the provider set
//! one at a time, off the driver task.
//!
//! Everything that can wait or block — validation, building providers
//! (which may read files a descriptor names), the store's lock, the write
//! and its fsyncs — runs here on a blocking thread. Only a set that passed
//! every check and was committed reaches the driver, which makes it the
//! running set in memory. Provider events, failovers and reads therefore
//! never wait for a write, however long another process holds the store's
//! lock (CONTRACTS §4a rule 6). Changes are applied in the order they were
//! persisted, and a caller is answered once its change runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use provisioning_failover::FailoverPolicy;
use provisioning_provider_api::ProviderDescriptor;
use provisioning_registry::{ProviderRegistry, ProviderSet, ProvisioningError};
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use crate::admin_change::AdminChange;
use crate::command::Command;
use crate::next_set::NextSet;
use crate::provider_builder::{Built, ProviderBuilder};

pub(crate) struct Persister {
    pub(crate) registry: ProviderRegistry,
    pub(crate) builder: Arc<ProviderBuilder>,
    pub(crate) policy: FailoverPolicy,
    /// The set the driver runs: the last one applied.
    pub(crate) running: Vec<ProviderDescriptor>,
    pub(crate) driver: mpsc::Sender<Command>,
    /// Set when the driver stopped while a write was pending, so that the
    /// write, once it has the lock, commits nothing.
    pub(crate) stopping: Arc<AtomicBool>,
}

fn stopped() -> ProvisioningError {
    ProvisioningError::ProvisioningUnavailable {
        detail: "the provisioning service has stopped".into(),
    }
}

/// The service stopped while a write was under way: it may have committed
/// just before (it passed the stop check and then saved) or not at all.
fn outcome_unknown() -> ProvisioningError {
    ProvisioningError::ProvisioningUnavailable {
        detail: "the provisioning service stopped while the change was being persisted; whether the store holds it is unknown".into(),
    }
}

/// The write committed, but the service stopped before running it.
fn saved_not_applied() -> ProvisioningError {
    ProvisioningError::ProvisioningUnavailable {
        detail: "the provisioning service stopped after the change was saved to the store and before it ran".into(),
    }
}

impl Persister {
    /// Carries out changes until every handle is gone or the driver stops.
    pub(crate) async fn run(mut self, mut changes: mpsc::Receiver<AdminChange>) {
        loop {
            let change = tokio::select! {
                change = changes.recv() => change,
                () = self.driver.closed() => None,
            };
            let Some(change) = change else {
                return;
            };
            self.carry_out(change).await;
        }
    }

    async fn carry_out(&mut self, change: AdminChange) {
        match change {
            AdminChange::Add(descriptor, reply) => {
                let (id, priority) = (descriptor.id.clone(), descriptor.priority);
                let checked = Some((*descriptor).clone());
                let result = self
                    .commit(checked, None, move |set| set.register(*descriptor))
                    .await;
                if result.is_ok() {
                    info!(provider = %id, priority, "provider added");
                }
                let _ = reply.send(result);
            }
            AdminChange::Remove(id, reply) => {
                let result = self
                    .commit(None, None, move |set| set.unregister(&id))
                    .await;
                if let Ok(removed) = &result {
                    info!(provider = %removed.id, "provider removed");
                }
                let _ = reply.send(result);
            }
            AdminChange::SetEnabled(id, enabled, reply) => {
                let shown = id.clone();
                let result = self
                    .commit(None, None, move |set| {
                        set.set_enabled(&id, enabled).map(drop)
                    })
                    .await;
                if result.is_ok() {
                    info!(provider = %shown, enabled, "provider enabled state changed");
                }
                let _ = reply.send(result);
            }
            AdminChange::Reload(registry, policy, reply) => {
                let result = self.reload(registry, policy.map(|p| *p)).await;
                let _ = reply.send(result);
            }
            AdminChange::ReloadStore(policy, reply) => {
                // Read under the store's lock, here in the queue: every
                // write queued earlier is in what is read, so a reload
                // never undoes a change that was already answered.
                let result = self
                    .commit(None, policy.map(|p| *p), |set| Ok(set.list()))
                    .await
                    // A reload writes nothing: if the service stopped, the
                    // outcome is known.
                    .map_err(|e| {
                        if self.driver.is_closed() {
                            stopped()
                        } else {
                            e
                        }
                    });
                let _ = reply.send(result);
            }
        }
    }

    /// Read-modify-write of the store through the registry (one save per
    /// change), then hands the committed set to the driver.
    ///
    /// The stored set is the base, hand edits included: what the change
    /// commits is what runs next, so a descriptor removed from the file by
    /// hand stops with it and one added by hand starts (rule 7). Every new
    /// or changed provider of that set is built, and the policy checked
    /// against it, under the lock and before the save: a set that cannot
    /// run is never written. `checked` (a descriptor from outside) is
    /// validated on its own before the lock is waited for. `policy`, when
    /// given, is checked against that set instead of the running one and
    /// applied with it.
    async fn commit<T>(
        &mut self,
        checked: Option<ProviderDescriptor>,
        policy: Option<FailoverPolicy>,
        change: impl FnOnce(&mut ProviderSet) -> Result<T, ProvisioningError> + Send + 'static,
    ) -> Result<T, ProvisioningError>
    where
        T: Send + 'static,
    {
        let registry = self.registry.clone();
        let builder = self.builder.clone();
        let running = self.running.clone();
        let checked_policy = policy.clone().unwrap_or_else(|| self.policy.clone());
        let stopping = self.stopping.clone();
        let (out, next, built) = self
            .off_driver(outcome_unknown, move || {
                if let Some(descriptor) = &checked {
                    registry.validator().validate(descriptor)?;
                }
                registry.update(|set| {
                    if stopping.load(Ordering::Acquire) {
                        return Err(stopped());
                    }
                    let out = change(set)?;
                    let next = set.list();
                    let built = builder.prepare(&running, &next, &checked_policy)?;
                    Ok((out, next, built))
                })
            })
            .await?;
        self.apply(next, built, policy).await.map_err(|e| {
            if self.driver.is_closed() {
                saved_not_applied()
            } else {
                e
            }
        })?;
        Ok(out)
    }

    /// Replaces the running set with `registry`'s (read from the store, so
    /// nothing is written) and, when given, the policy. Nothing changes
    /// unless every provider builds and the policy fits the set.
    async fn reload(
        &mut self,
        registry: ProviderRegistry,
        policy: Option<FailoverPolicy>,
    ) -> Result<(), ProvisioningError> {
        let next = registry.list();
        // The new registry's kinds build and check its set, as they will
        // validate the writes that follow.
        let builder = Arc::new(self.builder.with_kinds(registry.validator().clone()));
        let running = self.running.clone();
        let checked = policy.clone().unwrap_or_else(|| self.policy.clone());
        let descriptors = next.clone();
        let preparing = builder.clone();
        let built = self
            .off_driver(stopped, move || {
                preparing.prepare(&running, &descriptors, &checked)
            })
            .await?;
        self.apply(next, built, policy).await?;
        self.registry = registry;
        self.builder = builder;
        Ok(())
    }

    /// Runs `work` on a blocking thread. If the driver stops meanwhile, the
    /// caller is answered at once with `on_stop` and a write that has not
    /// committed yet commits nothing.
    async fn off_driver<T>(
        &self,
        on_stop: fn() -> ProvisioningError,
        work: impl FnOnce() -> Result<T, ProvisioningError> + Send + 'static,
    ) -> Result<T, ProvisioningError>
    where
        T: Send + 'static,
    {
        let task = tokio::task::spawn_blocking(work);
        tokio::select! {
            joined = task => joined.map_err(|e| ProvisioningError::ProvisioningUnavailable {
                detail: format!("the change failed: {e}"),
            })?,
            () = self.driver.closed() => {
                self.stopping.store(true, Ordering::Release);
                Err(on_stop())
            }
        }
    }

    /// Hands a committed set to the driver and waits until it runs.
    async fn apply(
        &mut self,
        descriptors: Vec<ProviderDescriptor>,
        built: Built,
        policy: Option<FailoverPolicy>,
    ) -> Result<(), ProvisioningError> {
        let (tx, rx) = oneshot::channel();
        let next = NextSet {
            descriptors: descriptors.clone(),
            built,
            policy: policy.clone(),
        };
        self.driver
            .send(Command::Apply(Box::new(next), tx))
            .await
            .map_err(|_| stopped())?;
        match rx.await.map_err(|_| stopped())? {
            Ok(()) => {
                self.running = descriptors;
                if let Some(policy) = policy {
                    self.policy = policy;
                }
                Ok(())
            }
            Err(e) => {
                warn!(error = %e, "a committed provider set was not applied; the running set is kept");
                Err(e)
            }
        }
    }
}
