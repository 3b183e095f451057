//! [`ProviderDescriptor`]: one line of `providers.jsonl` (CONTRACTS §1).

use alloc::string::String;
use alloc::vec::Vec;

use crate::{ProviderId, ProviderKind, SecretRef, WatchParams, WatchValue};

/// Credentials of a provider, as references only: `{"token": REF}` or
/// `{"username": REF, "password": REF}`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct ProviderAuth {
    /// Bearer / ACL token.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub token: Option<SecretRef>,
    /// User name (with `password`).
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub username: Option<SecretRef>,
    /// Password (with `username`).
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub password: Option<SecretRef>,
}

impl ProviderAuth {
    /// Token authentication.
    pub fn token(token: SecretRef) -> Self {
        Self {
            token: Some(token),
            ..Self::default()
        }
    }

    /// User/password authentication.
    pub fn basic(username: SecretRef, password: SecretRef) -> Self {
        Self {
            token: None,
            username: Some(username),
            password: Some(password),
        }
    }

    /// Checks the shape: exactly a token, or a username with a password.
    /// The error names the offending field.
    pub fn check_shape(&self) -> Result<(), (&'static str, &'static str)> {
        match (&self.token, &self.username, &self.password) {
            (Some(_), None, None) | (None, Some(_), Some(_)) => Ok(()),
            (None, None, None) => Err(("auth", "needs `token` or `username` + `password`")),
            (Some(_), _, _) => Err(("auth", "`token` excludes `username` / `password`")),
            (None, Some(_), None) => Err(("auth.password", "`username` needs `password`")),
            (None, None, Some(_)) => Err(("auth.username", "`password` needs `username`")),
        }
    }
}

#[cfg(feature = "serde")]
fn default_true() -> bool {
    true
}

#[cfg(feature = "serde")]
fn is_true(value: &bool) -> bool {
    *value
}

/// TLS settings of a provider: `{"ca": PATH, "cert": PATH, "key": REF, "verify": true}`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct TlsSettings {
    /// CA bundle (PEM) to trust instead of the system roots.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub ca: Option<String>,
    /// Client certificate (PEM).
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub cert: Option<String>,
    /// Client private key, as a secret reference.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub key: Option<SecretRef>,
    /// Verify the server certificate. On unless explicitly `false`.
    #[cfg_attr(
        feature = "serde",
        serde(default = "default_true", skip_serializing_if = "is_true")
    )]
    pub verify: bool,
}

impl Default for TlsSettings {
    fn default() -> Self {
        Self {
            ca: None,
            cert: None,
            key: None,
            verify: true,
        }
    }
}

/// A registered provider: one line of `providers.jsonl`.
///
/// Field order is the stored key order of CONTRACTS §1
/// (`id, kind, priority, endpoints, auth, tls, watch, enabled`); `enabled` is
/// always written. Unknown keys are rejected at every level the contract
/// types know; `watch` keys are checked by each backend.
///
/// ```
/// use provisioning_provider_api::{ProviderDescriptor, ProviderKind, ProviderId};
/// let d = ProviderDescriptor::new(ProviderId::new("etcd-a")?, ProviderKind::Etcd, 10)
///     .with_endpoint("http://127.0.0.1:2379")
///     .with_watch("prefix", "/cluster/app/");
/// assert!(d.enabled);
/// # Ok::<(), provisioning_provider_api::ProviderIdError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct ProviderDescriptor {
    /// Unique id.
    pub id: ProviderId,
    /// Backend kind.
    pub kind: ProviderKind,
    /// Higher is preferred; unique across all providers, disabled included.
    pub priority: u32,
    /// Backend URLs (`http`/`https`).
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Vec::is_empty")
    )]
    pub endpoints: Vec<String>,
    /// Credentials, as references.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub auth: Option<ProviderAuth>,
    /// TLS settings.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub tls: Option<TlsSettings>,
    /// Kind-specific watch parameters.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "WatchParams::is_empty")
    )]
    pub watch: WatchParams,
    /// Whether the provider runs. Defaults to true.
    #[cfg_attr(feature = "serde", serde(default = "default_true"))]
    pub enabled: bool,
}

impl ProviderDescriptor {
    /// A descriptor with no endpoints, auth, TLS or watch parameters, enabled.
    pub fn new(id: ProviderId, kind: ProviderKind, priority: u32) -> Self {
        Self {
            id,
            kind,
            priority,
            endpoints: Vec::new(),
            auth: None,
            tls: None,
            watch: WatchParams::new(),
            enabled: true,
        }
    }

    /// Adds an endpoint URL.
    pub fn with_endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoints.push(url.into());
        self
    }

    /// Sets the credentials.
    pub fn with_auth(mut self, auth: ProviderAuth) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Sets the TLS settings.
    pub fn with_tls(mut self, tls: TlsSettings) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Sets one watch parameter.
    pub fn with_watch(mut self, key: impl Into<String>, value: impl Into<WatchValue>) -> Self {
        self.watch.insert(key.into(), value.into());
        self
    }

    /// Sets whether the provider is enabled.
    pub fn with_enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }
}
