//! [`KubeProvider`]: the [`ClusterProvider`] over Pods or EndpointSlices.

use std::sync::{Arc, Mutex, PoisonError};

use provisioning_provider_api::{
    ClusterProvider, LivenessCheck, ProviderDescriptor, ProviderKind, ProviderSnapshot,
    ProviderStream, StreamOptions,
};
use provisioning_registry::{ProvisioningError, SecretResolver};

use crate::client::Connector;
use crate::liveness::LivenessClient;
use crate::{KubeError, KubeWatchConfig, MemberMapping};

/// What every stream of one provider shares.
pub(crate) struct Inner {
    pub(crate) descriptor_id: String,
    pub(crate) watch: KubeWatchConfig,
    pub(crate) mapping: MemberMapping,
    pub(crate) connector: Connector,
    pub(crate) last_seen: Mutex<Option<ProviderSnapshot>>,
    /// The client liveness probes use.
    pub(crate) liveness: LivenessClient,
}

/// A provider whose members are the Pods matching a label selector, or the
/// endpoints of a Service's EndpointSlices, watched through kube-runtime's
/// `watcher` (see the crate docs for the rules).
pub struct KubeProvider {
    descriptor: ProviderDescriptor,
    inner: Arc<Inner>,
}

impl std::fmt::Debug for KubeProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeProvider")
            .field("id", &self.descriptor.id)
            .field("watch", &self.inner.watch)
            .field("connector", &self.inner.connector)
            .finish_non_exhaustive()
    }
}

/// Builds a [`KubeProvider`]; see [`KubeProvider::builder`].
pub struct KubeProviderBuilder {
    descriptor: ProviderDescriptor,
    secrets: Option<SecretResolver>,
    client: Option<kube::Client>,
}

impl std::fmt::Debug for KubeProviderBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeProviderBuilder")
            .field("id", &self.descriptor.id)
            .finish_non_exhaustive()
    }
}

impl KubeProviderBuilder {
    /// Sets the secret resolver (default: the process environment, relative
    /// `file:` paths against the current directory).
    pub fn with_secrets(mut self, secrets: SecretResolver) -> Self {
        self.secrets = Some(secrets);
        self
    }

    /// Sends every request (the watch, its `/version` heartbeat, the
    /// liveness and preflight probes) through `client` instead of a client
    /// built from the descriptor or the kubeconfig. Its base URL, TLS,
    /// credentials, timeouts, retry policy and tower layers are its own: the
    /// descriptor's `endpoints`, `auth` and `tls` are checked, then unused,
    /// and no kubeconfig is read. Still the descriptor's: `watch` (resource,
    /// selectors, namespace — else the client's default namespace — and the
    /// watch timeout sent to the server). The provider's own layers (the
    /// response size limit, the spacing of watches the server ends at once)
    /// sit on top of it. A client built with kube's defaults retries 429 and
    /// 503 answers itself; the provider's built client does not, so its
    /// backoff sees them.
    pub fn with_client(mut self, client: kube::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Validates the descriptor and builds the provider: `watch` per
    /// [`KubeWatchConfig`]; `endpoints` (at most one URL) with an optional
    /// `auth.token` reference and `tls.ca` / `tls.verify`, or none for the
    /// kubeconfig / in-cluster configuration. Secrets are resolved on every
    /// (re)connect, never here; nothing is contacted.
    pub fn build(self) -> Result<KubeProvider, KubeError> {
        let descriptor = self.descriptor;
        if descriptor.kind != ProviderKind::K8s {
            return Err(ProvisioningError::invalid(
                Some(&descriptor.id),
                Some("kind".to_string()),
                format!("kind is {:?}, expected \"k8s\"", descriptor.kind.as_str()),
            )
            .into());
        }
        let secrets = self
            .secrets
            .unwrap_or_else(|| SecretResolver::new(std::path::PathBuf::from(".")));
        let watch = KubeWatchConfig::from_params(&descriptor.id, &descriptor.watch)?;
        let mut connector = Connector::new(&descriptor, &watch, secrets)?;
        if let Some(client) = self.client {
            connector = connector.with_injected(client);
        }
        Ok(KubeProvider {
            inner: Arc::new(Inner {
                descriptor_id: descriptor.id.to_string(),
                mapping: MemberMapping::new(&watch),
                watch,
                connector,
                last_seen: Mutex::new(None),
                liveness: LivenessClient::default(),
            }),
            descriptor,
        })
    }
}

impl KubeProvider {
    /// A builder for `descriptor`.
    pub fn builder(descriptor: ProviderDescriptor) -> KubeProviderBuilder {
        KubeProviderBuilder {
            descriptor,
            secrets: None,
            client: None,
        }
    }

    /// Builds the provider from a `k8s` descriptor (see
    /// [`KubeProviderBuilder::build`]), resolving secrets through `secrets`.
    pub fn from_descriptor(
        descriptor: ProviderDescriptor,
        secrets: &SecretResolver,
    ) -> Result<Self, KubeError> {
        Self::builder(descriptor)
            .with_secrets(secrets.clone())
            .build()
    }

    /// Ends the provider. It holds nothing to undo on the server (no
    /// self-registration), and its streams end when dropped, so this never
    /// fails; it is here so that every backend shuts down alike.
    pub async fn shutdown(&self) -> Result<(), KubeError> {
        Ok(())
    }

    /// The parsed `watch` configuration.
    pub fn watch_config(&self) -> &KubeWatchConfig {
        &self.inner.watch
    }

    /// Preflight: the API server answers `GET /version`, and this identity
    /// may `list` and `watch` the resource in the namespace (asked with a
    /// `SelfSubjectAccessReview`; where reviews are not allowed, a one-item
    /// `list` checks that verb). A denial names the missing RBAC rule.
    pub async fn probe(&self) -> Result<(), KubeError> {
        crate::probe::probe(&self.inner).await
    }
}

impl ClusterProvider for KubeProvider {
    fn descriptor(&self) -> &ProviderDescriptor {
        &self.descriptor
    }

    fn initial_snapshot(&self) -> Option<ProviderSnapshot> {
        self.inner
            .last_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn stream(&self, options: StreamOptions) -> ProviderStream {
        crate::stream::open(self.inner.clone(), options)
    }

    fn liveness_probe(&self) -> Option<LivenessCheck> {
        self.inner.liveness.check()
    }
}
