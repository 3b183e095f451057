//! [`MemberMapping`]: the parts of the `watch` configuration that decide
//! how a Pod or an EndpointSlice becomes members, prepared once.

use std::collections::BTreeMap;

use crate::{KubeResource, KubeWatchConfig};

/// The parts of [`KubeWatchConfig`] the mapping needs, prepared once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberMapping {
    pub(crate) resource: KubeResource,
    pub(crate) port_name: Option<String>,
    pub(crate) port_label: Option<String>,
    pub(crate) include_unready: bool,
    pub(crate) blocked_annotation: Option<String>,
    pub(crate) pinned: BTreeMap<String, String>,
}

impl MemberMapping {
    /// Prepares the mapping of `config`.
    pub fn new(config: &KubeWatchConfig) -> Self {
        Self {
            resource: config.resource,
            port_name: config.port_name.clone(),
            port_label: config.port_label.clone(),
            include_unready: config.include_unready,
            blocked_annotation: config.blocked_annotation.clone(),
            pinned: config.pinned_labels(),
        }
    }

    /// The member source this mapping is for.
    pub fn resource(&self) -> KubeResource {
        self.resource
    }

    /// Whether a label or annotation key becomes a member label.
    ///
    /// Left out: labels the selector pins (the same on every member), the
    /// blocking annotation (it is the block list), the port label (it is
    /// the port), and keys under Kubernetes' reserved prefixes
    /// (`kubernetes.io/`, `k8s.io/` and their subdomains, e.g.
    /// `kubectl.kubernetes.io/last-applied-configuration`, which holds a
    /// whole manifest).
    pub(crate) fn keeps_key(&self, key: &str, value: &str, is_label: bool) -> bool {
        if is_label && self.pinned.get(key).is_some_and(|v| v == value) {
            return false;
        }
        if self.blocked_annotation.as_deref() == Some(key) && !is_label {
            return false;
        }
        if self.port_label.as_deref() == Some(key) && is_label {
            return false;
        }
        match key.split_once('/') {
            Some((prefix, _)) => !is_reserved_prefix(prefix),
            None => true,
        }
    }
}

fn is_reserved_prefix(prefix: &str) -> bool {
    ["kubernetes.io", "k8s.io"]
        .iter()
        .any(|r| prefix == *r || prefix.ends_with(&format!(".{r}")))
}
