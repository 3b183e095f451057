//! [`ConsulError`] (public) and the private wire error mapped to a
//! [`ProviderFault`] in one place, [`Error::to_fault`].

use std::time::Duration;

use provisioning_provider_api::{FaultKind, ProviderFault, ProviderId};
use provisioning_registry::ProvisioningError;

use crate::DecodeError;

/// Why a Consul provider cannot be built, or why its preflight probe failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsulError {
    /// The descriptor cannot work: a bad `watch` key, a missing endpoint, an
    /// unreadable CA file, an unresolvable secret (`invalid_config`).
    #[error(transparent)]
    Config(#[from] ProvisioningError),
    /// Consul cannot be reached or answered 429 / 5xx (`backend_unavailable`,
    /// retryable).
    #[error("provider \"{provider}\": consul unavailable: {detail}")]
    Unavailable {
        /// The provider.
        provider: ProviderId,
        /// What happened (never a token).
        detail: String,
    },
    /// The token was rejected or may not read the service
    /// (`permission_denied`).
    #[error("provider \"{provider}\": permission denied: {detail}")]
    PermissionDenied {
        /// The provider.
        provider: ProviderId,
        /// What was denied (never a token).
        detail: String,
    },
    /// The watched service is not registered in the datacenter
    /// (`invalid_config`).
    #[error(
        "provider \"{provider}\": field \"watch.service\": service {service:?} is not registered in consul"
    )]
    UnknownService {
        /// The provider.
        provider: ProviderId,
        /// The service name.
        service: String,
    },
    /// The origin given with an injected client is not `scheme://host:port`
    /// (`invalid_config`).
    #[error("injected client origin: {reason}")]
    InvalidOrigin {
        /// What is wrong with it (never the text given).
        reason: String,
    },
}

impl ConsulError {
    /// The stable error code (ARCHITECTURE "Error kinds").
    pub fn code(&self) -> &'static str {
        match self {
            Self::Config(e) => e.code(),
            Self::Unavailable { .. } => "backend_unavailable",
            Self::PermissionDenied { .. } => "permission_denied",
            Self::UnknownService { .. } | Self::InvalidOrigin { .. } => "invalid_config",
        }
    }

    /// Whether retrying later can help.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Config(e) => e.is_retryable(),
            Self::Unavailable { .. } => true,
            Self::PermissionDenied { .. }
            | Self::UnknownService { .. }
            | Self::InvalidOrigin { .. } => false,
        }
    }
}

impl From<ConsulError> for ProvisioningError {
    fn from(error: ConsulError) -> Self {
        match error {
            ConsulError::Config(e) => e,
            ConsulError::Unavailable { provider, detail } => Self::BackendUnavailable {
                provider: Some(provider),
                detail,
            },
            ConsulError::PermissionDenied { provider, detail } => Self::PermissionDenied {
                provider: Some(provider),
                detail,
            },
            ConsulError::UnknownService { provider, service } => Self::invalid(
                Some(&provider),
                Some("watch.service".to_owned()),
                format!("service {service:?} is not registered in consul"),
            ),
            ConsulError::InvalidOrigin { reason } => Self::invalid(
                None,
                Some("origin".to_owned()),
                format!("injected client origin: {reason}"),
            ),
        }
    }
}

/// What went wrong talking to Consul. Private: it reaches users as a
/// [`ProviderFault`] in the stream or a [`ConsulError`] from the probe.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The connection failed (refused, reset, DNS, TLS handshake).
    #[error("{0}")]
    Connect(String),
    /// The TLS handshake failed: an unknown issuer, a wrong host name, a
    /// rejected client certificate. Only a configuration change cures it.
    #[error("TLS: {0}")]
    Tls(String),
    /// No complete answer within the request timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// Consul answered an error status.
    #[error("HTTP {status}: {message}")]
    Status {
        /// The status code.
        status: u16,
        /// Consul's message (its plain-text body, shortened).
        message: String,
    },
    /// The answer cannot be decoded.
    #[error("malformed answer: {0}")]
    Malformed(String),
    /// The answer came from another origin than the URL asked (an injected
    /// client followed a redirect). Consul's API never redirects, and the
    /// provider's token must not follow one: permanent, like the built
    /// client's answer to a redirect (a 3xx status it does not follow),
    /// since asking again meets the same redirect.
    #[error(
        "provider \"{provider}\": the answer to {requested} came from {answered} after a redirect; refused (consul never redirects: give the injected client `redirect::Policy::none()` or an endpoint that is consul itself)"
    )]
    Redirected {
        /// The provider that asked.
        provider: ProviderId,
        /// The origin asked.
        requested: String,
        /// The origin that answered.
        answered: String,
    },
    /// The token reference cannot be resolved now (missing variable or
    /// file). Re-read on every reconnect.
    #[error("token: {0}")]
    Token(String),
}

impl Error {
    /// The one place where a wire error becomes a fault kind and a
    /// permanence: 429 and 5xx may pass, 400 / 401 / 403 and the other 4xx
    /// need an operator.
    pub(crate) fn to_fault(&self) -> ProviderFault {
        let detail = self.to_string();
        match self {
            Self::Connect(_) => ProviderFault::retryable(FaultKind::BackendUnavailable, detail),
            Self::Timeout(_) => ProviderFault::retryable(FaultKind::Timeout, detail),
            Self::Status { status, .. } => match status {
                429 | 500..=599 => ProviderFault::retryable(FaultKind::BackendUnavailable, detail),
                401 | 403 => ProviderFault::permanent(
                    FaultKind::PermissionDenied,
                    format!(
                        "{detail} (the ACL token is missing, unknown or may not read the service)"
                    ),
                ),
                _ => ProviderFault::permanent(
                    FaultKind::InvalidConfig,
                    format!("{detail} (consul rejected the query; check the watch settings)"),
                ),
            },
            Self::Malformed(_) => ProviderFault::retryable(FaultKind::MalformedResponse, detail),
            Self::Token(_) | Self::Redirected { .. } => {
                ProviderFault::permanent(FaultKind::InvalidConfig, detail)
            }
            Self::Tls(_) => ProviderFault::permanent(
                FaultKind::InvalidConfig,
                format!("{detail} (check tls.ca, tls.cert / tls.key and the endpoint's host name)"),
            ),
        }
    }

    /// The same classification for the preflight probe.
    pub(crate) fn into_consul_error(self, provider: &ProviderId) -> ConsulError {
        let fault = self.to_fault();
        let provider = provider.clone();
        match fault.kind {
            FaultKind::PermissionDenied => ConsulError::PermissionDenied {
                provider,
                detail: fault.detail,
            },
            FaultKind::InvalidConfig => ConsulError::Config(ProvisioningError::invalid(
                Some(&provider),
                None,
                fault.detail,
            )),
            _ => ConsulError::Unavailable {
                provider,
                detail: fault.detail,
            },
        }
    }
}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Self {
        match e {
            DecodeError::Status { status, message } => Self::Status { status, message },
            other => Self::Malformed(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_kind_and_permanence() {
        let status = |status| Error::Status {
            status,
            message: "m".into(),
        };
        for (s, kind, permanent) in [
            (429, FaultKind::BackendUnavailable, false),
            (500, FaultKind::BackendUnavailable, false),
            (503, FaultKind::BackendUnavailable, false),
            (400, FaultKind::InvalidConfig, true),
            (401, FaultKind::PermissionDenied, true),
            (403, FaultKind::PermissionDenied, true),
            (404, FaultKind::InvalidConfig, true),
        ] {
            let f = status(s).to_fault();
            assert_eq!((f.kind, f.permanent), (kind, permanent), "{s}");
            assert!(f.detail.contains(&format!("HTTP {s}")), "{}", f.detail);
        }
        let f = Error::Timeout(Duration::from_secs(2)).to_fault();
        assert_eq!((f.kind, f.permanent), (FaultKind::Timeout, false));
        let f = Error::Malformed("eof".into()).to_fault();
        assert_eq!((f.kind, f.permanent), (FaultKind::MalformedResponse, false));
        let f = Error::Connect("refused".into()).to_fault();
        assert_eq!(
            (f.kind, f.permanent),
            (FaultKind::BackendUnavailable, false)
        );
        let f = Error::Token("gone".into()).to_fault();
        assert_eq!((f.kind, f.permanent), (FaultKind::InvalidConfig, true));
        let f = Error::Redirected {
            provider: ProviderId::new("c").unwrap_or_else(|e| panic!("{e}")),
            requested: "http://a:1".into(),
            answered: "http://b:2".into(),
        }
        .to_fault();
        assert_eq!((f.kind, f.permanent), (FaultKind::InvalidConfig, true));
        assert!(f.detail.contains("provider \"c\""), "{}", f.detail);
        let f = Error::Tls("UnknownIssuer".into()).to_fault();
        assert_eq!((f.kind, f.permanent), (FaultKind::InvalidConfig, true));
    }

    #[test]
    fn probe_errors_keep_codes() {
        let id = ProviderId::new("c").unwrap_or_else(|e| panic!("{e}"));
        let e = Error::Status {
            status: 403,
            message: "Permission denied".into(),
        }
        .into_consul_error(&id);
        assert_eq!(e.code(), "permission_denied");
        assert!(!e.is_retryable());
        let e = Error::Connect("refused".into()).into_consul_error(&id);
        assert_eq!(e.code(), "backend_unavailable");
        assert!(e.is_retryable());
        let p: ProvisioningError = e.into();
        assert_eq!(p.code(), "backend_unavailable");
    }
}
