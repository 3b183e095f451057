//! [`FakeConsulDriver`]: the conformance driver of a Consul provider
//! watching a [`FakeConsul`].

use std::fmt;

use provisioning_provider_api::MemberSpec;

use super::{FakeConsul, FakeFailure, FakeInstance};
use crate::{Capabilities, ConformanceDriver, DriverError, InjectedFault, MembershipChange};

/// Drives a [`FakeConsul`] for the conformance suite:
///
/// - membership changes are instance writes on one service: a member is an
///   instance with `Service.ID` = member id, its own node, the member's
///   host as address, its labels as service meta, and the blocking tag
///   when blocked (configure the provider with `blocked_tag` = this tag);
/// - `Retryable`: every request answers 500 until `Heal`;
/// - `Permanent`: every request answers 403 until `Heal`;
/// - `Terminate`: calls the given closure, which must make the provider end
///   its open streams (for the Consul provider, `ConsulProvider::close`):
///   Consul itself never ends a blocking-query watch.
///
/// Capabilities: labels (meta comes back verbatim), initial snapshot; not
/// `block_non_members` (blocking is a tag on an existing instance).
pub struct FakeConsulDriver<'a, T> {
    consul: &'a FakeConsul,
    service: String,
    blocked_tag: String,
    terminate: T,
}

impl<T> fmt::Debug for FakeConsulDriver<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeConsulDriver")
            .field("service", &self.service)
            .field("blocked_tag", &self.blocked_tag)
            .finish_non_exhaustive()
    }
}

impl<'a, T: Fn() + Send + Sync> FakeConsulDriver<'a, T> {
    /// A driver of `service` on `consul`, blocking with `blocked_tag`.
    pub fn new(consul: &'a FakeConsul, service: &str, blocked_tag: &str, terminate: T) -> Self {
        Self {
            consul,
            service: service.to_owned(),
            blocked_tag: blocked_tag.to_owned(),
            terminate,
        }
    }

    /// The instance a member becomes.
    pub fn instance(&self, spec: &MemberSpec) -> FakeInstance {
        let mut i = FakeInstance::new(&self.service, spec.id.as_str(), &spec.host, spec.port);
        for (k, v) in &spec.labels {
            i = i.with_meta(k, v);
        }
        if spec.blocked {
            i = i.with_tag(&self.blocked_tag);
        }
        i
    }

    fn set_blocked(&self, id: &str, blocked: bool) -> Result<(), DriverError> {
        let tag = self.blocked_tag.clone();
        let found = self.consul.update(&self.service, id, |i| {
            i.tags.retain(|t| *t != tag);
            if blocked {
                i.tags.push(tag);
            }
        });
        if found {
            Ok(())
        } else {
            Err(DriverError(format!("no instance {id}")))
        }
    }
}

impl<T: Fn() + Send + Sync> ConformanceDriver for FakeConsulDriver<'_, T> {
    fn capabilities(&self) -> Capabilities {
        // No draining: Consul has no such signal (maintenance mode takes an
        // instance out of `passing` answers at once).
        Capabilities::none()
            .with_labels(true)
            .with_block_non_members(false)
            .with_initial_snapshot(true)
            .with_incarnations(true)
    }

    async fn apply(&self, change: MembershipChange) -> Result<(), DriverError> {
        match change {
            MembershipChange::Reset(specs) => {
                let instances = specs.iter().map(|s| self.instance(s)).collect();
                self.consul.set_instances(&self.service, instances);
                Ok(())
            }
            MembershipChange::Upsert(spec) => {
                self.consul.upsert(self.instance(&spec));
                Ok(())
            }
            MembershipChange::Remove(id) => {
                if self.consul.remove(&self.service, id.as_str()) {
                    Ok(())
                } else {
                    Err(DriverError(format!("no instance {id}")))
                }
            }
            MembershipChange::Block(id) => self.set_blocked(id.as_str(), true),
            MembershipChange::Unblock(id) => self.set_blocked(id.as_str(), false),
            // A deregistration and a registration of the same instance: a
            // new `CreateIndex`.
            MembershipChange::Restart(id) => {
                let mut instance = self
                    .consul
                    .instances(&self.service)
                    .into_iter()
                    .find(|i| i.id == id.as_str())
                    .ok_or_else(|| DriverError(format!("no instance {id}")))?;
                self.consul.remove(&self.service, id.as_str());
                instance.create_index = 0;
                self.consul.upsert(instance);
                Ok(())
            }
        }
    }

    async fn inject(&self, fault: InjectedFault) -> Result<(), DriverError> {
        match fault {
            InjectedFault::Retryable => self.consul.set_failure(FakeFailure::ServerError),
            InjectedFault::Permanent => self.consul.set_failure(FakeFailure::Forbidden),
            InjectedFault::Terminate => (self.terminate)(),
            InjectedFault::Heal => self.consul.set_failure(FakeFailure::None),
        }
        Ok(())
    }
}
