//! [`K8sWatch`]: the `watch` schema of kind `k8s`.

use std::time::Duration;

use provisioning_provider_api::{ProviderDescriptor, WatchParams};
use serde::{Deserialize, Serialize};

use provisioning_registry::ProvisioningError;
use provisioning_registry::watch_schema::{non_empty, parse_watch, watch_error};

/// `watch` of a `k8s` provider: Pods by label selector, or the
/// EndpointSlices of a Service, through kube-runtime's watcher.
///
/// | key | type | default | meaning |
/// |---|---|---|---|
/// | `namespace` | string | the in-cluster namespace | namespace to watch (a DNS label) |
/// | `resource` | `pods` \| `endpointslices` | required | the member source |
/// | `label_selector` | string | required for `pods`, not allowed otherwise | pod label selector |
/// | `service` | string | required for `endpointslices`, not allowed otherwise | the Service whose slices are watched |
/// | `port_name` | string | none | the named container / endpoint port to use |
/// | `port_label` | string | none, `pods` only | a pod label holding the port number |
/// | `include_unready` | bool | `false` | also members that are not ready |
/// | `blocked_annotation` | string | none | pods with this annotation set to `"true"` are blocked |
/// | `idle_timeout` | duration | none (the backend's default), at least `1s` | watcher idle timeout: bounds how long a stuck watch goes unnoticed (the API server's `timeoutSeconds` counts whole seconds) |
///
/// `endpoints` are optional (else kubeconfig / in-cluster configuration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct K8sWatch {
    /// Namespace; the in-cluster namespace when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The member source.
    pub resource: K8sResource,
    /// Pod label selector (`pods`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
    /// Service name (`endpointslices`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Named port to use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_name: Option<String>,
    /// Pod label holding the port number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_label: Option<String>,
    /// Also members that are not ready.
    #[serde(default)]
    pub include_unready: bool,
    /// Annotation that blocks a pod when `"true"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_annotation: Option<String>,
    /// Watcher idle timeout.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::duration_option"
    )]
    pub idle_timeout: Option<Duration>,
}

/// The Kubernetes member source (`resource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum K8sResource {
    /// `pods`: Pods matching `label_selector`.
    Pods,
    /// `endpointslices`: the EndpointSlices of `service`.
    Endpointslices,
}

impl K8sWatch {
    /// Parses and checks `watch`; errors name `watch.<key>`.
    pub fn from_params(params: &WatchParams) -> Result<Self, ProvisioningError> {
        let watch: Self = parse_watch(params)?;
        watch.validate()?;
        Ok(watch)
    }

    /// Parses the descriptor's `watch`; errors name the descriptor too.
    pub fn from_descriptor(descriptor: &ProviderDescriptor) -> Result<Self, ProvisioningError> {
        Self::from_params(&descriptor.watch).map_err(|e| e.with_provider(&descriptor.id))
    }

    /// The conflict target: namespace, resource and selector or service.
    pub fn target(&self) -> [Option<&str>; 3] {
        let resource = match self.resource {
            K8sResource::Pods => "pods",
            K8sResource::Endpointslices => "endpointslices",
        };
        let selector = match self.resource {
            K8sResource::Pods => self.label_selector.as_deref(),
            K8sResource::Endpointslices => self.service.as_deref(),
        };
        [self.namespace.as_deref(), Some(resource), selector]
    }

    /// Checks the combination of keys (what [`from_params`](Self::from_params)
    /// checks after parsing); for a value built in code.
    pub fn validate(&self) -> Result<(), ProvisioningError> {
        if let Some(ns) = &self.namespace {
            let label_ok = !ns.is_empty()
                && ns.len() <= 63
                && ns
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !ns.starts_with('-')
                && !ns.ends_with('-');
            if !label_ok {
                return Err(watch_error(
                    "namespace",
                    "must be a DNS label: 1-63 of [a-z0-9-], not starting or ending with '-'",
                ));
            }
        }
        non_empty("label_selector", self.label_selector.as_deref())?;
        non_empty("service", self.service.as_deref())?;
        non_empty("port_name", self.port_name.as_deref())?;
        non_empty("port_label", self.port_label.as_deref())?;
        non_empty("blocked_annotation", self.blocked_annotation.as_deref())?;
        match self.resource {
            K8sResource::Pods => {
                if self.label_selector.is_none() {
                    return Err(watch_error("label_selector", "required for `pods`"));
                }
                if self.service.is_some() {
                    return Err(watch_error("service", "only for `endpointslices`"));
                }
            }
            K8sResource::Endpointslices => {
                if self.service.is_none() {
                    return Err(watch_error("service", "required for `endpointslices`"));
                }
                if self.label_selector.is_some() {
                    return Err(watch_error("label_selector", "only for `pods`"));
                }
                if self.port_label.is_some() {
                    return Err(watch_error("port_label", "only for `pods`"));
                }
            }
        }
        if self
            .idle_timeout
            .is_some_and(|d| d < Duration::from_secs(1))
        {
            return Err(watch_error("idle_timeout", "must be at least 1s"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<K8sWatch, ProvisioningError> {
        K8sWatch::from_params(&serde_json::from_str(json).unwrap())
    }

    #[test]
    fn pods_and_slices_parse() {
        let w = parse(
            r#"{"namespace":"default","resource":"pods","label_selector":"app=actors","port_name":"remoting","port_label":"p","include_unready":true,"blocked_annotation":"a","idle_timeout":"60s"}"#,
        )
        .unwrap();
        assert_eq!(w.idle_timeout, Some(Duration::from_secs(60)));
        assert!(w.include_unready);
        let w = parse(r#"{"resource":"endpointslices","service":"app"}"#).unwrap();
        assert_eq!(w.target(), [None, Some("endpointslices"), Some("app")]);
        assert!(!w.include_unready);
    }

    #[test]
    fn rejections_name_the_key() {
        for (json, field) in [
            (r#"{}"#, "watch.resource"),
            (r#"{"resource":"nodes"}"#, "watch.resource"),
            (r#"{"resource":"pods"}"#, "watch.label_selector"),
            (
                r#"{"resource":"pods","label_selector":"a","service":"s"}"#,
                "watch.service",
            ),
            (r#"{"resource":"endpointslices"}"#, "watch.service"),
            (
                r#"{"resource":"endpointslices","service":"s","label_selector":"a"}"#,
                "watch.label_selector",
            ),
            (
                r#"{"resource":"pods","label_selector":"a","namespace":"Bad"}"#,
                "watch.namespace",
            ),
            (
                r#"{"resource":"pods","label_selector":"a","idle_timeout":"0s"}"#,
                "watch.idle_timeout",
            ),
            (
                r#"{"resource":"pods","label_selector":"a","idle_timeout":"x"}"#,
                "watch.idle_timeout",
            ),
            (
                r#"{"resource":"pods","label_selector":"a","idle_timeout":"500ms"}"#,
                "watch.idle_timeout",
            ),
            (
                r#"{"resource":"endpointslices","service":"s","port_label":"p"}"#,
                "watch.port_label",
            ),
            (
                r#"{"resource":"pods","label_selector":"a","labelselector":"x"}"#,
                "watch.labelselector",
            ),
        ] {
            let e = parse(json).unwrap_err();
            assert_eq!(e.field(), Some(field), "{json}: {e}");
        }
    }
}
