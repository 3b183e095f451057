//! [`ProviderBuilder`]: turns a descriptor set into the providers that
//! still need building, before anything of it is applied.

use std::collections::BTreeMap;
use std::sync::Arc;

use provisioning_failover::FailoverPolicy;
use provisioning_provider_api::{ClusterProvider, ProviderDescriptor, ProviderId};
use provisioning_registry::{BuildContext, ProviderValidator, ProvisioningError};

use crate::policy_check;

/// The providers built for a set, by id: exactly those
/// [`needs_build`] names.
pub(crate) type Built = BTreeMap<ProviderId, Arc<dyn ClusterProvider>>;

/// Builds providers from descriptors: a user-supplied instance when one
/// exists for the id, else the descriptor's kind (through the registry's
/// validator, which knows the registered kinds).
///
/// Building may read files a descriptor names (`tls.ca`, `file:` secrets),
/// so it runs on a blocking thread, never on the driver task.
pub(crate) struct ProviderBuilder {
    pub(crate) kinds: ProviderValidator,
    /// Provider instances supplied by the user, by id: used instead of the
    /// kind when such an id is (re)registered.
    pub(crate) instances: BTreeMap<ProviderId, Arc<dyn ClusterProvider>>,
    pub(crate) context: BuildContext,
}

impl ProviderBuilder {
    /// The provider of `descriptor`.
    pub(crate) fn build(
        &self,
        descriptor: &ProviderDescriptor,
    ) -> Result<Arc<dyn ClusterProvider>, ProvisioningError> {
        match self.instances.get(&descriptor.id) {
            Some(instance) => Ok(instance.clone()),
            None => self.kinds.build(descriptor, &self.context),
        }
    }

    /// The same builder with the kinds `kinds` knows (a reload with a
    /// registry of its own builds and checks with that registry's kinds).
    pub(crate) fn with_kinds(&self, kinds: ProviderValidator) -> Self {
        Self {
            kinds,
            instances: self.instances.clone(),
            context: self.context.clone(),
        }
    }

    /// Everything `next` needs before it can replace `running`: `policy`
    /// must fit its providers, and every new or changed descriptor must
    /// build. Returns the built providers; on any error nothing of `next`
    /// may be applied.
    pub(crate) fn prepare(
        &self,
        running: &[ProviderDescriptor],
        next: &[ProviderDescriptor],
        policy: &FailoverPolicy,
    ) -> Result<Built, ProvisioningError> {
        policy_check(&self.kinds, policy, next)?;
        let running: BTreeMap<&ProviderId, &ProviderDescriptor> =
            running.iter().map(|d| (&d.id, d)).collect();
        let mut built = Built::new();
        for d in next {
            if needs_build(running.get(&d.id).copied(), d) {
                built.insert(d.id.clone(), self.build(d)?);
            }
        }
        Ok(built)
    }
}

/// Whether `new` needs a new provider when `old` runs under its id: it is
/// new, or changed in anything but the enabled flag (which is toggled in
/// place).
pub(crate) fn needs_build(old: Option<&ProviderDescriptor>, new: &ProviderDescriptor) -> bool {
    old.is_none_or(|old| {
        let mut same_flag = old.clone();
        same_flag.enabled = new.enabled;
        &same_flag != new
    })
}
