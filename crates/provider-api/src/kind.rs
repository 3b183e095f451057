//! [`ProviderKind`].

use alloc::boxed::Box;
use alloc::string::String;
use core::fmt;

/// The backend kind of a provider (CONTRACTS §1 `kind`).
///
/// Custom kinds are any other string; the facade only accepts them once a
/// factory is registered for them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(from = "String", into = "String"))]
pub enum ProviderKind {
    /// `in_memory`: a static or programmatically driven member list.
    InMemory,
    /// `consul`: Consul health-service blocking queries.
    Consul,
    /// `k8s`: Kubernetes Pods or EndpointSlices.
    K8s,
    /// `etcd`: an etcd key prefix.
    Etcd,
    /// Any other kind, registered with the facade by the user.
    Custom(Box<str>),
}

impl ProviderKind {
    /// The contract string.
    pub fn as_str(&self) -> &str {
        match self {
            Self::InMemory => "in_memory",
            Self::Consul => "consul",
            Self::K8s => "k8s",
            Self::Etcd => "etcd",
            Self::Custom(name) => name,
        }
    }

    /// Whether this is one of the built-in kinds.
    pub fn is_builtin(&self) -> bool {
        !matches!(self, Self::Custom(_))
    }
}

impl From<&str> for ProviderKind {
    fn from(value: &str) -> Self {
        match value {
            "in_memory" => Self::InMemory,
            "consul" => Self::Consul,
            "k8s" => Self::K8s,
            "etcd" => Self::Etcd,
            other => Self::Custom(other.into()),
        }
    }
}

impl From<String> for ProviderKind {
    fn from(value: String) -> Self {
        Self::from(value.as_str())
    }
}

impl From<ProviderKind> for String {
    fn from(value: ProviderKind) -> Self {
        value.as_str().into()
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
