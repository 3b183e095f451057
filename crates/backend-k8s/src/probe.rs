//! The preflight probe: [`KubeProbe`] for the registry's validator, and the
//! checks behind [`KubeProvider::probe`].

use std::time::Duration;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use provisioning_provider_api::ProviderDescriptor;
use provisioning_registry::{ProbeFuture, ProviderProbe, SecretResolver};

use crate::error::{Target, chain_text};
use crate::provider::Inner;
use crate::{KubeError, KubeProvider, KubeResource};

/// How long each probe request may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

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

fn unavailable(what: &str, e: &kube::Error) -> KubeError {
    KubeError::Unavailable {
        message: format!("{what}: {}", chain_text(e)),
    }
}

async fn within<T>(
    what: &str,
    request: impl Future<Output = Result<T, kube::Error>>,
) -> Result<Result<T, kube::Error>, KubeError> {
    tokio::time::timeout(PROBE_TIMEOUT, request)
        .await
        .map_err(|_| KubeError::Unavailable {
            message: format!("{what} did not answer within {PROBE_TIMEOUT:?}"),
        })
}

pub(crate) async fn probe(inner: &Inner) -> Result<(), KubeError> {
    let conn = inner.connector.connect(None).await?;
    match within("GET /version", conn.client.apiserver_version()).await? {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 401 || s.code == 403 => {
            return Err(KubeError::PermissionDenied {
                message: format!("GET /version: {} {}", s.code, s.message),
            });
        }
        Err(e) => return Err(unavailable("GET /version", &e)),
    }
    let target = Target {
        resource: inner.watch.resource,
        namespace: conn.namespace.clone(),
    };
    let mut missing = Vec::new();
    for verb in ["list", "watch"] {
        match review(&conn.client, &target, verb).await? {
            Review::Allowed => {}
            Review::Denied(why) => missing.push(format!("{}{why}", target.rbac_rule(verb))),
            // Reviews are not allowed (or not served): try the list itself;
            // `watch` cannot be checked without holding a watch open.
            Review::Unavailable => {
                if let Some(denied) = list_one(&conn.client, &target).await? {
                    missing.push(denied);
                }
                break;
            }
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

enum Review {
    Allowed,
    Denied(String),
    Unavailable,
}

async fn review(client: &Client, target: &Target, verb: &str) -> Result<Review, KubeError> {
    let reviews: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(target.namespace.clone()),
                verb: Some(verb.into()),
                group: Some(target.resource.group().into()),
                resource: Some(target.resource.plural().into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let post = PostParams::default();
    match within("SelfSubjectAccessReview", reviews.create(&post, &review)).await? {
        Ok(answer) => {
            let status = answer.status.unwrap_or_default();
            if status.allowed {
                return Ok(Review::Allowed);
            }
            let reason = status.reason.unwrap_or_default();
            Ok(Review::Denied(if reason.is_empty() {
                String::new()
            } else {
                format!(" ({reason})")
            }))
        }
        Err(kube::Error::Api(s)) if s.code == 401 => Err(KubeError::PermissionDenied {
            message: format!("credentials rejected: {}", s.message),
        }),
        Err(kube::Error::Api(s)) if s.code == 403 || s.code == 404 => Ok(Review::Unavailable),
        Err(e) => Err(unavailable("SelfSubjectAccessReview", &e)),
    }
}

/// A one-item list: `Some(rule)` when it is forbidden.
async fn list_one(client: &Client, target: &Target) -> Result<Option<String>, KubeError> {
    let params = ListParams::default().limit(1);
    let answer = match target.resource {
        KubeResource::Pods => {
            let api: Api<Pod> = Api::namespaced(client.clone(), &target.namespace);
            within("list", api.list(&params)).await?.map(|_| ())
        }
        KubeResource::Endpointslices => {
            let api: Api<EndpointSlice> = Api::namespaced(client.clone(), &target.namespace);
            within("list", api.list(&params)).await?.map(|_| ())
        }
    };
    match answer {
        Ok(()) => Ok(None),
        Err(kube::Error::Api(s)) if s.code == 403 => Ok(Some(format!(
            "{} ({})",
            target.rbac_rule("list"),
            s.message
        ))),
        Err(e) => Err(unavailable("list", &e)),
    }
}
