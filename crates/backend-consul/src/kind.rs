//! [`ConsulKind`]: kind `consul` as a plugin of the registry and the
//! service.

use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "client")]
use provisioning_provider_api::ProviderId;
use provisioning_provider_api::{ClusterProvider, ProviderDescriptor};
use provisioning_registry::{
    BackendKind, BuildContext, EndpointRule, ProbeFuture, ProvisioningError, SecretResolver,
};

use crate::ConsulWatch;

/// Kind `consul`: endpoints required, `watch` is [`ConsulWatch`], two
/// descriptors with the same endpoints, service, dc, ns, tag and filter
/// conflict, the quiet period is `wait × 17/16`.
///
/// Without the `client` feature the kind validates but does not build or
/// probe.
///
/// ```
/// use std::sync::Arc;
/// use provisioning_backend_consul::ConsulKind;
/// use provisioning_registry::{ProviderValidator, descriptor_from_json};
/// let validator = ProviderValidator::new().with_kind(Arc::new(ConsulKind::new()));
/// let d = descriptor_from_json(
///     r#"{"id":"c","kind":"consul","priority":1,"endpoints":["http://127.0.0.1:8500"],"watch":{"service":"app","wait":"4s"}}"#,
/// )?;
/// validator.validate(&d)?;
/// let quiet = validator.quiet_periods(&[d])?;
/// assert_eq!(quiet[0].1, Some(std::time::Duration::from_millis(4250)));
/// # Ok::<(), provisioning_registry::ProvisioningError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct ConsulKind {
    /// Clients the program built, used instead of the descriptor's.
    #[cfg(feature = "client")]
    clients: provisioning_registry::InjectedClients<(crate::ConsulOrigin, reqwest::Client)>,
    #[cfg(not(feature = "client"))]
    _private: (),
}

impl ConsulKind {
    /// The kind with the descriptor-built client.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every `consul` provider (without a client of its own, see
    /// [`with_client_for`](Self::with_client_for)) whose endpoints are all
    /// at `origin` sends its requests through `client`: the watch, the
    /// probe of `validate --connect`, the liveness probe and
    /// self-registration. A provider with an endpoint elsewhere uses the
    /// client its descriptor describes, as if none were injected (with a
    /// warning naming it): whoever writes descriptors never gets what the
    /// program put in the client sent to a server of their choosing. What
    /// the descriptor still decides and what the client does instead:
    /// [`ConsulProviderBuilder::with_client`](crate::ConsulProviderBuilder::with_client).
    /// Register the kind over the built-in one with
    /// [`ProviderValidator::with_kind`](provisioning_registry::ProviderValidator::with_kind).
    #[cfg(feature = "client")]
    #[cfg_attr(docsrs, doc(cfg(feature = "client")))]
    pub fn with_client(mut self, origin: crate::ConsulOrigin, client: reqwest::Client) -> Self {
        self.clients = self.clients.with_every((origin, client));
        self
    }

    /// The provider `id` sends its requests through `client` when its
    /// endpoints are all at `origin` (before a client given to
    /// [`with_client`](Self::with_client)). An id can be deleted and used
    /// again by another descriptor: the origin, not the id, decides where
    /// the client may go.
    #[cfg(feature = "client")]
    #[cfg_attr(docsrs, doc(cfg(feature = "client")))]
    pub fn with_client_for(
        mut self,
        id: ProviderId,
        origin: crate::ConsulOrigin,
        client: reqwest::Client,
    ) -> Self {
        self.clients = self.clients.with_provider(id, (origin, client));
        self
    }

    /// The provider of `descriptor`, on its injected client if it has one.
    #[cfg(feature = "client")]
    fn provider(
        &self,
        descriptor: &ProviderDescriptor,
        secrets: &SecretResolver,
    ) -> Result<crate::ConsulProvider, crate::ConsulError> {
        let builder =
            crate::ConsulProvider::builder(descriptor.clone()).with_secrets(secrets.clone());
        match self.clients.for_provider(&descriptor.id) {
            Some((origin, client)) => builder.with_client(origin.clone(), client.clone()).build(),
            None => builder.build(),
        }
    }
}

impl BackendKind for ConsulKind {
    fn name(&self) -> &str {
        "consul"
    }

    fn endpoints(&self) -> EndpointRule {
        EndpointRule::Required
    }

    fn validate_watch(&self, descriptor: &ProviderDescriptor) -> Result<(), ProvisioningError> {
        ConsulWatch::from_params(&descriptor.watch).map(drop)
    }

    fn conflict_target(&self, descriptor: &ProviderDescriptor) -> Option<String> {
        let watch = ConsulWatch::from_params(&descriptor.watch).ok()?;
        serde_json::to_string(&watch.target()).ok()
    }

    fn quiet_period(
        &self,
        descriptor: &ProviderDescriptor,
    ) -> Result<Option<Duration>, ProvisioningError> {
        ConsulWatch::from_params(&descriptor.watch).map(|w| Some(w.quiet_period()))
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
        // `ConsulProbe`'s checks, on the client the provider would use.
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
