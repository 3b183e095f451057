//! Changes to the provider set and the policy, from a
//! [`ProvisioningHandle`](crate::ProvisioningHandle) to the service's
//! persister task.

use provisioning_failover::FailoverPolicy;
use provisioning_provider_api::ProviderDescriptor;
use provisioning_registry::ProviderRegistry;

use crate::command::Reply;

pub(crate) enum AdminChange {
    /// Registers and persists a descriptor.
    Add(Box<ProviderDescriptor>, Reply<()>),
    /// Unregisters and persists.
    Remove(String, Reply<ProviderDescriptor>),
    /// Enables or disables and persists.
    SetEnabled(String, bool, Reply<()>),
    /// Replaces the whole set with the registry's (already loaded, nothing
    /// is written), and the policy when one is given.
    Reload(ProviderRegistry, Option<Box<FailoverPolicy>>, Reply<()>),
    /// Reads the set from the service's own store, under its lock and after
    /// every change queued before, and makes it (and the policy when one is
    /// given) the running set; nothing is written. Answers the set applied.
    ReloadStore(Option<Box<FailoverPolicy>>, Reply<Vec<ProviderDescriptor>>),
}
