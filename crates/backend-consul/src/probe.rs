//! The preflight probe: [`ConsulProbe`] for the registry's validator, and
//! the checks behind [`ConsulProvider::probe`](crate::ConsulProvider::probe).

use provisioning_provider_api::ProviderDescriptor;
use provisioning_registry::{ProbeFuture, ProviderProbe, ProvisioningError, SecretResolver};

use crate::client::Client;
use crate::{ConsulError, ConsulProvider};

/// The [`ProviderProbe`] of kind `consul`: builds the provider from the
/// descriptor and runs [`ConsulProvider::probe`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ConsulProbe;

impl ProviderProbe for ConsulProbe {
    fn probe<'a>(
        &'a self,
        descriptor: &'a ProviderDescriptor,
        secrets: &'a SecretResolver,
    ) -> ProbeFuture<'a> {
        Box::pin(async move {
            let provider = ConsulProvider::from_descriptor(descriptor.clone(), secrets)?;
            provider.probe().await.map_err(ProvisioningError::from)
        })
    }
}

pub(crate) async fn probe(client: &Client) -> Result<(), ConsulError> {
    let config = client.config();
    let provider = &config.provider;
    let leader = client
        .leader()
        .await
        .map_err(|e| e.into_consul_error(provider))?;
    if leader.is_empty() {
        return Err(ConsulError::Unavailable {
            provider: provider.clone(),
            detail: "consul has no cluster leader".into(),
        });
    }
    let answer = client
        .health(0, config.watch.wait)
        .await
        .map_err(|e| e.into_consul_error(provider))?;
    if answer.meta.filtered_by_acls {
        return Err(ConsulError::PermissionDenied {
            provider: provider.clone(),
            detail: format!(
                "the token may not read service {:?} or its nodes (results filtered by ACLs)",
                config.watch.service
            ),
        });
    }
    let services = client
        .services()
        .await
        .map_err(|e| e.into_consul_error(provider))?;
    if !services.contains_key(&config.watch.service) {
        return Err(ConsulError::UnknownService {
            provider: provider.clone(),
            service: config.watch.service.clone(),
        });
    }
    Ok(())
}
