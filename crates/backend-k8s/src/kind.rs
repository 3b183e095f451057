//! [`KubeKind`]: kind `k8s` as a plugin of the registry and the
//! service.

use std::sync::Arc;

#[cfg(feature = "client")]
use provisioning_provider_api::ProviderId;
use provisioning_provider_api::{ClusterProvider, ProviderDescriptor};
use provisioning_registry::{
    BackendKind, BuildContext, EndpointRule, ProbeFuture, ProvisioningError, SecretResolver,
};

use crate::K8sWatch;

/// Kind `k8s`: at most one endpoint (the API server URL; none means the
/// in-cluster or kubeconfig default), `watch` is [`K8sWatch`], two
/// descriptors with the same endpoint, namespace, resource and selector or
/// service conflict; no quiet period.
///
/// Without the `client` feature the kind validates but does not build or
/// probe.
///
/// ```
/// use std::sync::Arc;
/// use provisioning_backend_k8s::KubeKind;
/// use provisioning_registry::{ProviderValidator, descriptor_from_json};
/// let validator = ProviderValidator::new().with_kind(Arc::new(KubeKind::new()));
/// let d = descriptor_from_json(
///     r#"{"id":"k","kind":"k8s","priority":1,"watch":{"resource":"pods","label_selector":"app=x"}}"#,
/// )?;
/// validator.validate(&d)?;
/// let e = validator.validate(&d.clone().with_watch("service", "x")).unwrap_err();
/// assert_eq!(e.field(), Some("watch.service"));
/// # Ok::<(), provisioning_registry::ProvisioningError>(())
/// ```
#[derive(Clone, Default)]
pub struct KubeKind {
    /// Clients the program built, used instead of the descriptor's.
    #[cfg(feature = "client")]
    clients: provisioning_registry::InjectedClients<kube::Client>,
    #[cfg(not(feature = "client"))]
    _private: (),
}

impl std::fmt::Debug for KubeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut f = f.debug_struct("KubeKind");
        #[cfg(feature = "client")]
        f.field("clients", &self.clients);
        f.finish()
    }
}

impl KubeKind {
    /// The kind with the descriptor-built client.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every `k8s` provider (without a client of its own, see
    /// [`with_client_for`](Self::with_client_for)) sends its requests
    /// through `client` — a `kube::Client` with its own tower layers, say:
    /// the watch, the liveness probe and the probe of `validate --connect`.
    /// What the descriptor still decides and what the client does instead:
    /// [`KubeProviderBuilder::with_client`](crate::KubeProviderBuilder::with_client).
    /// Register the kind over the built-in one with
    /// [`ProviderValidator::with_kind`](provisioning_registry::ProviderValidator::with_kind).
    #[cfg(feature = "client")]
    #[cfg_attr(docsrs, doc(cfg(feature = "client")))]
    pub fn with_client(mut self, client: kube::Client) -> Self {
        self.clients = self.clients.with_every(client);
        self
    }

    /// The provider `id` sends its requests through `client` (before a
    /// client given to [`with_client`](Self::with_client)).
    #[cfg(feature = "client")]
    #[cfg_attr(docsrs, doc(cfg(feature = "client")))]
    pub fn with_client_for(mut self, id: ProviderId, client: kube::Client) -> Self {
        self.clients = self.clients.with_provider(id, client);
        self
    }

    /// The provider of `descriptor`, on its injected client if it has one.
    #[cfg(feature = "client")]
    fn provider(
        &self,
        descriptor: &ProviderDescriptor,
        secrets: &SecretResolver,
    ) -> Result<crate::KubeProvider, ProvisioningError> {
        let builder =
            crate::KubeProvider::builder(descriptor.clone()).with_secrets(secrets.clone());
        match self.clients.for_provider(&descriptor.id) {
            Some(client) => builder.with_client(client.clone()).build(),
            None => builder.build(),
        }
        .map_err(|e| e.into_provisioning_error(&descriptor.id))
    }
}

impl BackendKind for KubeKind {
    fn name(&self) -> &str {
        "k8s"
    }

    fn endpoints(&self) -> EndpointRule {
        EndpointRule::AtMostOne {
            what: "the API server URL",
        }
    }

    fn validate_watch(&self, descriptor: &ProviderDescriptor) -> Result<(), ProvisioningError> {
        K8sWatch::from_params(&descriptor.watch).map(drop)
    }

    fn conflict_target(&self, descriptor: &ProviderDescriptor) -> Option<String> {
        let watch = K8sWatch::from_params(&descriptor.watch).ok()?;
        serde_json::to_string(&watch.target()).ok()
    }

    #[cfg(feature = "client")]
    fn build(
        &self,
        descriptor: &ProviderDescriptor,
        context: &BuildContext,
    ) -> Result<Arc<dyn ClusterProvider>, ProvisioningError> {
        self.provider(descriptor, &context.secrets)
            .map(|p| Arc::new(p) as Arc<dyn ClusterProvider>)
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
        // `KubeProbe`'s checks, on the client the provider would use.
        Some(Box::pin(async move {
            self.provider(descriptor, secrets)?
                .probe()
                .await
                .map_err(|e| e.into_provisioning_error(&descriptor.id))
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
