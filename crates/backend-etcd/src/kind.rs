//! [`EtcdKind`]: kind `etcd` as a plugin of the registry and the
//! service.

use std::sync::Arc;

#[cfg(feature = "client")]
use provisioning_provider_api::ProviderId;
use provisioning_provider_api::{ClusterProvider, ProviderDescriptor};
use provisioning_registry::{
    BackendKind, BuildContext, EndpointRule, ProbeFuture, ProvisioningError, SecretResolver,
};

use crate::EtcdWatch;

/// Kind `etcd`: endpoints required, `watch` is [`EtcdWatch`], two
/// descriptors with the same endpoints and prefix conflict; no quiet period
/// (the watch stream is answered at once).
///
/// Without the `client` feature the kind validates but does not build or
/// probe.
///
/// ```
/// use std::sync::Arc;
/// use provisioning_backend_etcd::EtcdKind;
/// use provisioning_registry::{ProviderValidator, descriptor_from_json};
/// let validator = ProviderValidator::new().with_kind(Arc::new(EtcdKind::new()));
/// let d = descriptor_from_json(
///     r#"{"id":"e","kind":"etcd","priority":1,"endpoints":["http://127.0.0.1:2379"],"watch":{"prefix":"/app/"}}"#,
/// )?;
/// validator.validate(&d)?;
/// let other = descriptor_from_json(
///     r#"{"id":"f","kind":"etcd","priority":2,"endpoints":["http://127.0.0.1:2379/"],"watch":{"prefix":"/app/"}}"#,
/// )?;
/// assert_eq!(validator.check_against(&[d], &other).unwrap_err().code(), "conflict");
/// # Ok::<(), provisioning_registry::ProvisioningError>(())
/// ```
#[derive(Clone, Default)]
pub struct EtcdKind {
    /// Clients the program built, used instead of the descriptor's.
    #[cfg(feature = "client")]
    clients: provisioning_registry::InjectedClients<etcd_client::Client>,
    #[cfg(not(feature = "client"))]
    _private: (),
}

impl std::fmt::Debug for EtcdKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut f = f.debug_struct("EtcdKind");
        #[cfg(feature = "client")]
        f.field("clients", &self.clients);
        f.finish()
    }
}

impl EtcdKind {
    /// The kind with the descriptor-built client.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every `etcd` provider (without a client of its own, see
    /// [`with_client_for`](Self::with_client_for)) talks to etcd through
    /// `client`: the watch, the registration lease, the liveness probe and
    /// the probe of `validate --connect`. What the descriptor still decides
    /// and what the client does instead:
    /// [`EtcdProviderBuilder::with_client`](crate::EtcdProviderBuilder::with_client).
    /// Register the kind over the built-in one with
    /// [`ProviderValidator::with_kind`](provisioning_registry::ProviderValidator::with_kind).
    #[cfg(feature = "client")]
    #[cfg_attr(docsrs, doc(cfg(feature = "client")))]
    pub fn with_client(mut self, client: etcd_client::Client) -> Self {
        self.clients = self.clients.with_every(client);
        self
    }

    /// The provider `id` talks to etcd through `client` (before a client
    /// given to [`with_client`](Self::with_client)).
    #[cfg(feature = "client")]
    #[cfg_attr(docsrs, doc(cfg(feature = "client")))]
    pub fn with_client_for(mut self, id: ProviderId, client: etcd_client::Client) -> Self {
        self.clients = self.clients.with_provider(id, client);
        self
    }

    /// The provider of `descriptor`, on its injected client if it has one.
    #[cfg(feature = "client")]
    fn provider(
        &self,
        descriptor: &ProviderDescriptor,
        secrets: &SecretResolver,
    ) -> Result<crate::EtcdProvider, crate::EtcdError> {
        let builder =
            crate::EtcdProvider::builder(descriptor.clone()).with_secrets(secrets.clone());
        match self.clients.for_provider(&descriptor.id) {
            Some(client) => builder.with_client(client.clone()).build(),
            None => builder.build(),
        }
    }
}

impl BackendKind for EtcdKind {
    fn name(&self) -> &str {
        "etcd"
    }

    fn endpoints(&self) -> EndpointRule {
        EndpointRule::Required
    }

    fn validate_watch(&self, descriptor: &ProviderDescriptor) -> Result<(), ProvisioningError> {
        EtcdWatch::from_params(&descriptor.watch).map(drop)
    }

    fn conflict_target(&self, descriptor: &ProviderDescriptor) -> Option<String> {
        EtcdWatch::from_params(&descriptor.watch)
            .ok()
            .map(|w| w.prefix)
    }

    #[cfg(feature = "client")]
    fn build(
        &self,
        descriptor: &ProviderDescriptor,
        context: &BuildContext,
    ) -> Result<Arc<dyn ClusterProvider>, ProvisioningError> {
        self.provider(descriptor, &context.secrets)
            .map(|p| Arc::new(p) as Arc<dyn ClusterProvider>)
            .map_err(ProvisioningError::from)
    }

    #[cfg(not(feature = "client"))]
    fn build(
        &self,
        _descriptor: &ProviderDescriptor,
        _context: &BuildContext,
    ) -> Result<Arc<dyn ClusterProvider>, ProvisioningError> {
        Err(provisioning_registry::kind_without_client(self.name()))
    }

    #[cfg(feature = "client")]
    fn probe<'a>(
        &'a self,
        descriptor: &'a ProviderDescriptor,
        secrets: &'a SecretResolver,
    ) -> Option<ProbeFuture<'a>> {
        // `EtcdProbe`'s checks, on the client the provider would use.
        Some(Box::pin(async move {
            let provider = self.provider(descriptor, secrets)?;
            provider.probe().await.map_err(ProvisioningError::from)
        }))
    }

    #[cfg(not(feature = "client"))]
    fn probe<'a>(
        &'a self,
        _descriptor: &'a ProviderDescriptor,
        _secrets: &'a SecretResolver,
    ) -> Option<ProbeFuture<'a>> {
        // Nothing can be reached without the client: say so rather than
        // let a preflight pass unprobed.
        Some(Box::pin(async move {
            Err(provisioning_registry::kind_without_client(self.name()))
        }))
    }
}
