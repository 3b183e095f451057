//! [`KubeWatchConfig`]: the `watch` schema of kind `k8s`, and what the
//! provider derives from it.

use std::collections::BTreeMap;
use std::time::Duration;

use provisioning_provider_api::{ProviderId, WatchParams};
use provisioning_registry::ProvisioningError;

use crate::{K8sResource, K8sWatch};

/// Watch timeout (server-side `timeoutSeconds`) when `idle_timeout` is not
/// set. kube-runtime's own default is 290 s; a shorter watch bounds how long
/// a stuck watch on a healthy API server goes unnoticed (see the crate docs,
/// "Blind spot").
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Page size of the relisting `list` calls (client-go's and kube-runtime's
/// default).
pub const LIST_PAGE_SIZE: u32 = 500;

/// The member source (`watch.resource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KubeResource {
    /// `pods`: Pods matching `label_selector`.
    Pods,
    /// `endpointslices`: the EndpointSlices of `service`.
    Endpointslices,
}

impl KubeResource {
    /// The resource's plural name in the API (`pods`, `endpointslices`).
    pub fn plural(self) -> &'static str {
        match self {
            Self::Pods => "pods",
            Self::Endpointslices => "endpointslices",
        }
    }

    /// The API group (`""` for the core group).
    pub fn group(self) -> &'static str {
        match self {
            Self::Pods => "",
            Self::Endpointslices => "discovery.k8s.io",
        }
    }
}

/// `watch` of a `k8s` provider (CONTRACTS §1: each backend documents its
/// keys).
///
/// | key | type | default | meaning |
/// |---|---|---|---|
/// | `namespace` | string | the kubeconfig context's / in-cluster namespace | namespace to watch |
/// | `resource` | `pods` \| `endpointslices` | required | the member source |
/// | `label_selector` | string | required for `pods` | pod label selector |
/// | `service` | string | required for `endpointslices` | the Service whose slices are watched (`kubernetes.io/service-name`) |
/// | `port_name` | string | none | the named container port (pods) or slice port (endpointslices) |
/// | `port_label` | string | none | a pod label holding the port number (takes precedence over `port_name`) |
/// | `include_unready` | bool | `false` | also members that are not ready |
/// | `blocked_annotation` | string | none | a pod (or slice) with this annotation set to `"true"` is blocked |
/// | `idle_timeout` | duration | `60s` | watch timeout: each watch is replaced after this long, and a watch silent for this + 5 s is dropped |
///
/// The stored schema, and every check of it, is the registry's [`K8sWatch`];
/// this type adds what the provider derives from it (the watch timeout, the
/// server-side selector, the labels a selector pins).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KubeWatchConfig {
    /// Namespace; the configuration's default namespace when absent.
    pub namespace: Option<String>,
    /// The member source.
    pub resource: KubeResource,
    /// Pod label selector (`pods`).
    pub label_selector: Option<String>,
    /// Service name (`endpointslices`).
    pub service: Option<String>,
    /// Named port to use.
    pub port_name: Option<String>,
    /// Pod label holding the port number.
    pub port_label: Option<String>,
    /// Also members that are not ready.
    pub include_unready: bool,
    /// Annotation that blocks a pod (or every endpoint of a slice) when
    /// `"true"`.
    pub blocked_annotation: Option<String>,
    /// Watch timeout and idle bound.
    pub idle_timeout: Option<Duration>,
}

impl KubeWatchConfig {
    /// Pods matching `label_selector`.
    pub fn pods(label_selector: impl Into<String>) -> Self {
        Self {
            namespace: None,
            resource: KubeResource::Pods,
            label_selector: Some(label_selector.into()),
            service: None,
            port_name: None,
            port_label: None,
            include_unready: false,
            blocked_annotation: None,
            idle_timeout: None,
        }
    }

    /// The EndpointSlices of `service`.
    pub fn endpoint_slices(service: impl Into<String>) -> Self {
        Self {
            resource: KubeResource::Endpointslices,
            label_selector: None,
            service: Some(service.into()),
            ..Self::pods("")
        }
    }

    /// Sets the namespace.
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Sets the named port.
    pub fn with_port_name(mut self, name: impl Into<String>) -> Self {
        self.port_name = Some(name.into());
        self
    }

    /// Sets the pod label holding the port.
    pub fn with_port_label(mut self, label: impl Into<String>) -> Self {
        self.port_label = Some(label.into());
        self
    }

    /// Sets whether unready members are included.
    pub fn with_include_unready(mut self, on: bool) -> Self {
        self.include_unready = on;
        self
    }

    /// Sets the blocking annotation.
    pub fn with_blocked_annotation(mut self, annotation: impl Into<String>) -> Self {
        self.blocked_annotation = Some(annotation.into());
        self
    }

    /// Sets the watch timeout / idle bound.
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }

    /// Parses and checks a descriptor's `watch` with the registry's
    /// schema ([`K8sWatch`]) plus this backend's checks; errors name
    /// `watch.<key>` and the provider.
    pub fn from_params(id: &ProviderId, params: &WatchParams) -> Result<Self, ProvisioningError> {
        let watch = K8sWatch::from_params(params).map_err(|e| e.with_provider(id))?;
        let config = Self::from(watch);
        config.check().map_err(|e| e.with_provider(id))?;
        Ok(config)
    }

    /// Checks the combination of keys with the registry's rules
    /// ([`K8sWatch::validate`]): one schema, one set of checks, whether the
    /// configuration came from a store or was built in code.
    pub fn check(&self) -> Result<(), ProvisioningError> {
        K8sWatch::from(self).validate()
    }

    /// The watch timeout in whole seconds (at least 1).
    pub fn watch_timeout_secs(&self) -> u32 {
        let secs = self.idle_timeout.unwrap_or(DEFAULT_IDLE_TIMEOUT).as_secs();
        u32::try_from(secs).unwrap_or(u32::MAX).max(1)
    }

    /// The server-side label selector of the watch: the pod selector, or
    /// `kubernetes.io/service-name=<service>` for slices.
    pub fn server_selector(&self) -> String {
        match self.resource {
            KubeResource::Pods => self.label_selector.clone().unwrap_or_default(),
            KubeResource::Endpointslices => format!(
                "kubernetes.io/service-name={}",
                self.service.as_deref().unwrap_or_default()
            ),
        }
    }

    /// Labels every selected pod carries by construction (the selector's
    /// `key=value` / `key==value` terms). They say nothing about a member,
    /// so they are left out of member labels.
    pub fn pinned_labels(&self) -> BTreeMap<String, String> {
        let mut pinned = BTreeMap::new();
        if self.resource != KubeResource::Pods {
            return pinned;
        }
        let selector = self.label_selector.as_deref().unwrap_or_default();
        for term in split_terms(selector) {
            if term.contains("!=") {
                continue;
            }
            let pair = term.split_once("==").or_else(|| term.split_once('='));
            if let Some((key, value)) = pair {
                pinned.insert(key.trim().to_string(), value.trim().to_string());
            }
        }
        pinned
    }
}

/// Splits a selector at the commas outside parentheses.
fn split_terms(selector: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in selector.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                terms.push(selector[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(selector[start..].trim());
    terms.retain(|t| !t.is_empty());
    terms
}

impl From<K8sWatch> for KubeWatchConfig {
    fn from(watch: K8sWatch) -> Self {
        Self {
            namespace: watch.namespace,
            resource: match watch.resource {
                K8sResource::Endpointslices => KubeResource::Endpointslices,
                _ => KubeResource::Pods,
            },
            label_selector: watch.label_selector,
            service: watch.service,
            port_name: watch.port_name,
            port_label: watch.port_label,
            include_unready: watch.include_unready,
            blocked_annotation: watch.blocked_annotation,
            idle_timeout: watch.idle_timeout,
        }
    }
}

impl From<&KubeWatchConfig> for K8sWatch {
    fn from(config: &KubeWatchConfig) -> Self {
        K8sWatch {
            namespace: config.namespace.clone(),
            resource: match config.resource {
                KubeResource::Pods => K8sResource::Pods,
                KubeResource::Endpointslices => K8sResource::Endpointslices,
            },
            label_selector: config.label_selector.clone(),
            service: config.service.clone(),
            port_name: config.port_name.clone(),
            port_label: config.port_label.clone(),
            include_unready: config.include_unready,
            blocked_annotation: config.blocked_annotation.clone(),
            idle_timeout: config.idle_timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<KubeWatchConfig, ProvisioningError> {
        let id = ProviderId::new("k8s").unwrap();
        KubeWatchConfig::from_params(&id, &serde_json::from_str(json).unwrap())
    }

    #[test]
    fn pods_and_slices_parse() {
        let w = parse(
            r#"{"namespace":"default","resource":"pods","label_selector":"app=actors","port_name":"remoting","include_unready":true,"blocked_annotation":"a","idle_timeout":"30s"}"#,
        )
        .unwrap();
        assert_eq!(w.watch_timeout_secs(), 30);
        assert_eq!(
            w.pinned_labels().get("app").map(String::as_str),
            Some("actors")
        );
        let w = parse(r#"{"resource":"endpointslices","service":"app"}"#).unwrap();
        assert_eq!(w.server_selector(), "kubernetes.io/service-name=app");
        assert_eq!(w.watch_timeout_secs(), 60);
    }

    #[test]
    fn selector_terms_pin_only_equalities() {
        let w = KubeWatchConfig::pods("app=a, tier==web,env!=dev,zone in (a,b),!legacy");
        let pinned = w.pinned_labels();
        assert_eq!(pinned.len(), 2, "{pinned:?}");
        assert_eq!(pinned["tier"], "web");
    }

    #[test]
    fn rejections_name_the_key() {
        for (json, field) in [
            (r#"{"resource":"pods"}"#, "watch.label_selector"),
            (r#"{"resource":"endpointslices"}"#, "watch.service"),
            (
                r#"{"resource":"pods","label_selector":"a","service":"s"}"#,
                "watch.service",
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
                r#"{"resource":"pods","label_selector":" "}"#,
                "watch.label_selector",
            ),
            (
                r#"{"resource":"pods","label_selector":"a","idle_timeout":"500ms"}"#,
                "watch.idle_timeout",
            ),
            (
                r#"{"resource":"endpointslices","service":"s","port_label":"p"}"#,
                "watch.port_label",
            ),
        ] {
            let e = parse(json).unwrap_err();
            assert_eq!(e.field(), Some(field), "{json}: {e}");
            assert_eq!(e.provider().map(|p| p.as_str()), Some("k8s"));
        }
        let unknown =
            parse(r#"{"resource":"pods","label_selector":"a","labelselector":"x"}"#).unwrap_err();
        assert!(unknown.to_string().contains("labelselector"), "{unknown}");
        assert_eq!(unknown.code(), "invalid_config");
    }
}
