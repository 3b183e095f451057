//! [`EtcdProbe`]: the preflight of kind `etcd` for the registry's validator.

use provisioning_provider_api::ProviderDescriptor;
use provisioning_registry::{ProbeFuture, ProviderProbe, ProvisioningError, SecretResolver};

use crate::EtcdProvider;

/// The [`ProviderProbe`] of kind `etcd`: runs [`EtcdProvider::probe`] —
/// an endpoint is reachable, the credentials are accepted, and the prefix
/// can be read (a count-only, linearizable range read, so a member without
/// a leader fails it too).
#[derive(Debug, Clone, Copy, Default)]
pub struct EtcdProbe;

impl ProviderProbe for EtcdProbe {
    fn probe<'a>(
        &'a self,
        descriptor: &'a ProviderDescriptor,
        secrets: &'a SecretResolver,
    ) -> ProbeFuture<'a> {
        Box::pin(async move {
            let provider = EtcdProvider::from_descriptor(descriptor.clone(), secrets)?;
            provider.probe().await.map_err(ProvisioningError::from)
        })
    }
}
