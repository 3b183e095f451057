//! The driver's commands: pin and unpin, a committed provider set (and
//! policy) made the running one, and the providers' views.

use std::collections::BTreeMap;
use std::sync::Arc;

use provisioning_failover::FailoverPolicy;
use provisioning_provider_api::{
    ClusterProvider, ProviderDescriptor, ProviderId, ProviderSnapshot,
};
use provisioning_registry::ProvisioningError;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::{Driver, SHUTDOWN_WAIT, controller_error};
use crate::ProviderView;
use crate::command::Command;
use crate::next_set::NextSet;
use crate::provider_builder::{Built, needs_build};

impl Driver {
    /// Carries out one request (shutdown is handled by the run loop).
    pub(super) fn on_command(&mut self, command: Command) {
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
    pub(super) fn apply_set(
        &mut self,
        next: NextSet,
        now: Instant,
    ) -> Result<(), ProvisioningError> {
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
        // with its new descriptor).
        self.leave(&current, &next_ids, &built, now);
        self.enter(&current, &next_ids, built, now);
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

    /// The providers of the running set that are gone from the next one, or
    /// replaced in it, leave: out of the controller, stream closed, their
    /// provider released (a user-supplied instance that stays is not), a
    /// removed one's metrics forgotten.
    fn leave(
        &mut self,
        current: &BTreeMap<ProviderId, ProviderDescriptor>,
        next_ids: &BTreeMap<ProviderId, ProviderDescriptor>,
        built: &Built,
        now: Instant,
    ) {
        for id in current.keys() {
            let removed = !next_ids.contains_key(id);
            if removed || built.contains_key(id) {
                let _ = self.controller.remove_provider(id, now.into_std());
                self.apply_decisions(now, None);
                if let Some(stream) = self.streams.remove(id) {
                    stream.task.abort();
                }
                self.latest.remove(id);
                self.reconnects.remove(id);
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
    }

    /// The new or changed providers enter with their built provider; the
    /// others that stay have their enabled flag toggled in place.
    fn enter(
        &mut self,
        current: &BTreeMap<ProviderId, ProviderDescriptor>,
        next_ids: &BTreeMap<ProviderId, ProviderDescriptor>,
        mut built: Built,
        now: Instant,
    ) {
        for (id, d) in next_ids {
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
    pub(super) fn set_policy(&mut self, policy: FailoverPolicy, now: Instant) -> bool {
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

    pub(super) fn views(&self, now: Instant) -> Vec<ProviderView> {
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
