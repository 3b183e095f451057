//! [`KubeProvider`]: the [`ClusterProvider`] over Pods or EndpointSlices.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::Api;
use kube::api::PostParams;
use provisioning_provider_api::{
    ClusterProvider, ProviderDescriptor, ProviderKind, ProviderSnapshot, ProviderStream,
    StreamOptions,
};
use provisioning_registry::{ProbeFuture, ProviderProbe, ProvisioningError, SecretResolver};

use crate::client::Connector;
use crate::error::{Target, chain_text};
use crate::{KubeError, KubeWatchConfig, MemberMapping};

/// How long each probe request may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// What every stream of one provider shares.
pub(crate) struct Inner {
    pub(crate) descriptor_id: String,
    pub(crate) watch: KubeWatchConfig,
    pub(crate) mapping: MemberMapping,
    pub(crate) connector: Connector,
    pub(crate) last_seen: Mutex<Option<ProviderSnapshot>>,
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

impl KubeProvider {
    /// Builds the provider from a `k8s` descriptor: `watch` per
    /// [`KubeWatchConfig`]; `endpoints` (at most one URL) with an optional
    /// `auth.token` reference and `tls.ca` / `tls.verify`, or none for the
    /// kubeconfig / in-cluster configuration. Secrets are resolved through
    /// `secrets` on every (re)connect, never here; nothing is contacted.
    pub fn from_descriptor(
        descriptor: ProviderDescriptor,
        secrets: &SecretResolver,
    ) -> Result<Self, KubeError> {
        if descriptor.kind != ProviderKind::K8s {
            return Err(ProvisioningError::invalid(
                Some(&descriptor.id),
                Some("kind".to_string()),
                format!("kind is {:?}, expected \"k8s\"", descriptor.kind.as_str()),
            )
            .into());
        }
        let watch = KubeWatchConfig::from_params(&descriptor.id, &descriptor.watch)?;
        let connector = Connector::new(&descriptor, &watch, secrets.clone())?;
        Ok(Self {
            inner: Arc::new(Inner {
                descriptor_id: descriptor.id.to_string(),
                mapping: MemberMapping::new(&watch),
                watch,
                connector,
                last_seen: Mutex::new(None),
            }),
            descriptor,
        })
    }

    /// The parsed `watch` configuration.
    pub fn watch_config(&self) -> &KubeWatchConfig {
        &self.inner.watch
    }

    /// Preflight: the API server answers `GET /version`, and this identity
    /// may `list` and `watch` the resource in the namespace (asked with a
    /// `SelfSubjectAccessReview`). A denial names the missing RBAC rule.
    pub async fn probe(&self) -> Result<(), KubeError> {
        let conn = self.inner.connector.connect(None).await?;
        let unavailable = |what: &str, e: &kube::Error| KubeError::Unavailable {
            message: format!("{what}: {}", chain_text(e)),
        };
        match tokio::time::timeout(PROBE_TIMEOUT, conn.client.apiserver_version()).await {
            Err(_) => {
                return Err(KubeError::Unavailable {
                    message: format!("GET /version did not answer within {PROBE_TIMEOUT:?}"),
                });
            }
            Ok(Err(kube::Error::Api(s))) if s.code == 401 || s.code == 403 => {
                return Err(KubeError::PermissionDenied {
                    message: format!("GET /version: {} {}", s.code, s.message),
                });
            }
            Ok(Err(e)) => return Err(unavailable("GET /version", &e)),
            Ok(Ok(_)) => {}
        }
        let target = Target {
            resource: self.inner.watch.resource,
            namespace: conn.namespace.clone(),
        };
        let reviews: Api<SelfSubjectAccessReview> = Api::all(conn.client.clone());
        let mut missing = Vec::new();
        for verb in ["list", "watch"] {
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(ResourceAttributes {
                        namespace: Some(conn.namespace.clone()),
                        verb: Some(verb.into()),
                        group: Some(target.resource.group().into()),
                        resource: Some(target.resource.plural().into()),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ..Default::default()
            };
            let answer = tokio::time::timeout(
                PROBE_TIMEOUT,
                reviews.create(&PostParams::default(), &review),
            )
            .await
            .map_err(|_| KubeError::Unavailable {
                message: format!("SelfSubjectAccessReview did not answer within {PROBE_TIMEOUT:?}"),
            })?;
            match answer {
                Ok(review) => {
                    let status = review.status.unwrap_or_default();
                    if !status.allowed {
                        let why = if status.reason.as_deref().unwrap_or_default().is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", status.reason.unwrap_or_default())
                        };
                        missing.push(format!("{}{why}", target.rbac_rule(verb)));
                    }
                }
                Err(kube::Error::Api(s)) if s.code == 401 => {
                    return Err(KubeError::PermissionDenied {
                        message: format!("credentials rejected: {}", s.message),
                    });
                }
                Err(e) => return Err(unavailable("SelfSubjectAccessReview", &e)),
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(KubeError::PermissionDenied {
                message: missing.join("; "),
            })
        }
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
}

/// The [`ProviderProbe`] of kind `k8s` for the registry's validator: builds
/// the provider and runs [`KubeProvider::probe`].
#[derive(Debug, Clone, Copy, Default)]
pub struct KubeProbe;

impl ProviderProbe for KubeProbe {
    fn probe<'a>(
        &'a self,
        descriptor: &'a ProviderDescriptor,
        secrets: &'a SecretResolver,
    ) -> ProbeFuture<'a> {
        Box::pin(async move {
            let provider = KubeProvider::from_descriptor(descriptor.clone(), secrets)
                .map_err(|e| e.into_provisioning_error(&descriptor.id))?;
            provider
                .probe()
                .await
                .map_err(|e| e.into_provisioning_error(&descriptor.id))
        })
    }
}
