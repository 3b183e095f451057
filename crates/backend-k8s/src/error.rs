//! [`KubeError`] (the public error) and the one place where every failure of
//! the watch is turned into a fault kind and a permanence.

use provisioning_provider_api::{FaultKind, ProviderFault, ProviderId, ProviderTermination};
use provisioning_registry::ProvisioningError;
use thiserror::Error;

use crate::{KubeResource, ResponseTooLarge};

/// Why a Kubernetes provider cannot be built, connect, or pass its probe.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum KubeError {
    /// The descriptor fails a check (kind, `watch` schema, `endpoints`,
    /// `auth`, `tls`), or a secret cannot be resolved: the registry's error,
    /// naming the provider and the field.
    #[error(transparent)]
    Invalid(#[from] ProvisioningError),
    /// No client configuration could be found or loaded (kubeconfig,
    /// in-cluster files).
    #[error("kubernetes client configuration: {message}")]
    Config {
        /// What is wrong; never holds a secret.
        message: String,
    },
    /// The API server cannot be reached or answered with a server error.
    #[error("kubernetes API server unavailable: {message}")]
    Unavailable {
        /// What happened.
        message: String,
    },
    /// Credentials rejected, or a needed RBAC rule is missing.
    #[error("permission denied: {message}")]
    PermissionDenied {
        /// What is missing (names the RBAC rule).
        message: String,
    },
}

impl KubeError {
    /// The stable error code (ARCHITECTURE "Error kinds").
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(e) => e.code(),
            Self::Config { .. } => "invalid_config",
            Self::Unavailable { .. } => "backend_unavailable",
            Self::PermissionDenied { .. } => "permission_denied",
        }
    }

    /// Whether a retry may help.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Invalid(e) => e.is_retryable(),
            Self::Unavailable { .. } => true,
            Self::Config { .. } | Self::PermissionDenied { .. } => false,
        }
    }

    /// The registry's error for provider `id` (what the validator, the CLI
    /// and the admin API report).
    pub fn into_provisioning_error(self, id: &ProviderId) -> ProvisioningError {
        let provider = Some(id.clone());
        match self {
            Self::Invalid(e) => e.with_provider(id),
            Self::Config { message } => ProvisioningError::invalid(Some(id), None, message),
            Self::Unavailable { message } => ProvisioningError::BackendUnavailable {
                provider,
                detail: message,
            },
            Self::PermissionDenied { message } => ProvisioningError::PermissionDenied {
                provider,
                detail: message,
            },
        }
    }
}

impl From<KubeError> for ProvisioningError {
    /// Without the provider id; prefer
    /// [`KubeError::into_provisioning_error`] where it is known.
    fn from(error: KubeError) -> Self {
        match error {
            KubeError::Invalid(e) => e,
            KubeError::Config { message } => ProvisioningError::invalid(None, None, message),
            KubeError::Unavailable { message } => ProvisioningError::BackendUnavailable {
                provider: None,
                detail: message,
            },
            KubeError::PermissionDenied { message } => ProvisioningError::PermissionDenied {
                provider: None,
                detail: message,
            },
        }
    }
}

/// What the watch was doing when something failed, for the RBAC rule an
/// error names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verb {
    List,
    Watch,
    Get,
}

impl Verb {
    fn as_str(self) -> &'static str {
        match self {
            Self::List => "list",
            Self::Watch => "watch",
            Self::Get => "get",
        }
    }
}

/// Where a failure happened: resource and namespace, for the messages.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) resource: KubeResource,
    pub(crate) namespace: String,
}

impl Target {
    /// The RBAC rule needed for `verb`, as an operator writes it in a Role.
    pub(crate) fn rbac_rule(&self, verb: &str) -> String {
        format!(
            "RBAC rule missing: apiGroups [\"{}\"], resources [\"{}\"], verbs [\"{verb}\"] in namespace \"{}\"",
            self.resource.group(),
            self.resource.plural(),
            self.namespace
        )
    }
}

/// A failure somewhere in the watch, before it is classified.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The client could not be built (configuration, secret).
    Connect(KubeError),
    /// The watcher reported an error.
    Watcher(kube::runtime::watcher::Error),
    /// The liveness request failed.
    Ping(kube::Error),
    /// The liveness request did not answer in time.
    PingTimeout(std::time::Duration),
    /// The watcher stream ended (it never should: it recovers by itself).
    WatcherEnded,
}

/// What a failure means for the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Report the fault and reconnect with backoff.
    Fault(ProviderFault),
    /// End the stream with this termination.
    Terminate(ProviderTermination),
}

/// The one mapping from a failure to its fault kind and permanence.
///
/// | failure | verdict |
/// |---|---|
/// | 401 | `permission_denied`, permanent (credentials rejected) |
/// | 403 | `permission_denied`, permanent, naming the missing RBAC rule |
/// | 404 | terminated, errored, not permanent (the resource or API is not served) |
/// | 410 Gone (HTTP or `ERROR` event) | `index_rollback` (relist) |
/// | 400 / 422 | `invalid_config`, permanent (a selector the server rejects) |
/// | 429, 5xx, other status | `backend_unavailable`, retryable |
/// | connection refused / reset, TLS, I/O | `backend_unavailable`, retryable |
/// | a timeout | `timeout`, retryable |
/// | an undecodable answer | `malformed_response`, retryable |
/// | an answer or watch line over the response limit | `malformed_response`, retryable, naming the request |
/// | client configuration, unreadable secret | `invalid_config`, permanent |
pub(crate) fn classify(failure: &Failure, target: &Target) -> Verdict {
    let (verb, err) = match failure {
        Failure::Connect(e) => {
            let kind = match e {
                KubeError::PermissionDenied { .. } => FaultKind::PermissionDenied,
                KubeError::Unavailable { .. } => FaultKind::BackendUnavailable,
                KubeError::Invalid(p) if p.code() == "permission_denied" => {
                    FaultKind::PermissionDenied
                }
                KubeError::Invalid(p) if p.is_retryable() => FaultKind::BackendUnavailable,
                _ => FaultKind::InvalidConfig,
            };
            let fault = if e.is_retryable() {
                ProviderFault::retryable(kind, e.to_string())
            } else {
                ProviderFault::permanent(kind, e.to_string())
            };
            return Verdict::Fault(fault);
        }
        Failure::PingTimeout(after) => {
            return Verdict::Fault(ProviderFault::retryable(
                FaultKind::Timeout,
                format!("GET /version did not answer within {after:?}"),
            ));
        }
        Failure::WatcherEnded => {
            return Verdict::Fault(ProviderFault::retryable(
                FaultKind::BackendUnavailable,
                "the watch stream ended",
            ));
        }
        Failure::Ping(e) => (Verb::Get, ErrorRef::Client(e)),
        Failure::Watcher(e) => {
            use kube::runtime::watcher::Error as W;
            match e {
                W::InitialListFailed(e) => (Verb::List, ErrorRef::Client(e)),
                W::WatchStartFailed(e) | W::WatchFailed(e) => (Verb::Watch, ErrorRef::Client(e)),
                W::WatchError(status) => (Verb::Watch, ErrorRef::Status(status)),
                W::NoResourceVersion => {
                    return Verdict::Fault(ProviderFault::retryable(
                        FaultKind::MalformedResponse,
                        "list answer without metadata.resourceVersion",
                    ));
                }
            }
        }
    };
    let status = match err {
        ErrorRef::Status(status) => status,
        ErrorRef::Client(kube::Error::Api(status)) => status.as_ref(),
        ErrorRef::Client(e) => return Verdict::Fault(transport_fault(verb, e)),
    };
    status_verdict(verb, status.code, &status.reason, &status.message, target)
}

enum ErrorRef<'a> {
    Client(&'a kube::Error),
    Status(&'a kube::core::Status),
}

fn status_verdict(verb: Verb, code: u16, reason: &str, message: &str, target: &Target) -> Verdict {
    let what = match verb {
        Verb::Get => "GET /version".to_string(),
        _ => format!("{} {}", verb.as_str(), target.resource.plural()),
    };
    let said = if message.is_empty() { reason } else { message };
    let detail = format!("{what}: {code} {said}");
    match code {
        401 => Verdict::Fault(ProviderFault::permanent(
            FaultKind::PermissionDenied,
            format!("credentials rejected ({detail})"),
        )),
        403 => {
            let rule = match verb {
                Verb::Get => {
                    "RBAC rule missing: nonResourceURLs [\"/version\"], verbs [\"get\"]".to_string()
                }
                _ => target.rbac_rule(verb.as_str()),
            };
            Verdict::Fault(ProviderFault::permanent(
                FaultKind::PermissionDenied,
                format!("{rule} ({detail})"),
            ))
        }
        404 if verb != Verb::Get => Verdict::Terminate(ProviderTermination::Errored {
            reason: format!(
                "the API server does not serve {} in namespace \"{}\" ({detail})",
                target.resource.plural(),
                target.namespace
            ),
            permanent: false,
        }),
        410 => Verdict::Fault(ProviderFault::resync(format!(
            "resource version expired, relisting ({detail})"
        ))),
        400 | 422 => Verdict::Fault(ProviderFault::permanent(FaultKind::InvalidConfig, detail)),
        504 => Verdict::Fault(ProviderFault::retryable(FaultKind::Timeout, detail)),
        _ => Verdict::Fault(ProviderFault::retryable(
            FaultKind::BackendUnavailable,
            detail,
        )),
    }
}

fn transport_fault(verb: Verb, e: &kube::Error) -> ProviderFault {
    let what = match verb {
        Verb::Get => "GET /version",
        Verb::List => "list",
        Verb::Watch => "watch",
    };
    if let Some(too_large) = too_large(e) {
        // It names the request itself.
        return ProviderFault::retryable(FaultKind::MalformedResponse, too_large.to_string());
    }
    let text = chain_text(e);
    match e {
        kube::Error::SerdeError(_)
        | kube::Error::FromUtf8(_)
        | kube::Error::LinesCodecMaxLineLengthExceeded => {
            ProviderFault::retryable(FaultKind::MalformedResponse, format!("{what}: {text}"))
        }
        kube::Error::InferConfig(_) | kube::Error::InferKubeconfig(_) => {
            ProviderFault::permanent(FaultKind::InvalidConfig, format!("{what}: {text}"))
        }
        _ if text.contains("timed out") || text.contains("deadline") => {
            ProviderFault::retryable(FaultKind::Timeout, format!("{what}: {text}"))
        }
        _ => ProviderFault::retryable(FaultKind::BackendUnavailable, format!("{what}: {text}")),
    }
}

/// The [`ResponseTooLarge`] behind `e`, if the response limit stopped it.
/// kube wraps a body error in an `io::Error` on the watch path, whose
/// `source()` skips the error it holds, so those are opened by hand.
pub(crate) fn too_large<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a ResponseTooLarge> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<ResponseTooLarge>() {
            return Some(found);
        }
        next = match e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            Some(held) => Some(held as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    None
}

/// The error with its sources, `: `-joined (kube's top-level messages say
/// little: "ServiceError: client error (Connect)").
pub(crate) fn chain_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            resource: KubeResource::Pods,
            namespace: "apps".into(),
        }
    }

    fn status(code: u16) -> Failure {
        let status = kube::core::Status::failure("nope", "Reason").with_code(code);
        Failure::Watcher(kube::runtime::watcher::Error::InitialListFailed(
            kube::Error::Api(status.boxed()),
        ))
    }

    #[test]
    fn forbidden_is_permanent_and_names_the_rule() {
        match classify(&status(403), &target()) {
            Verdict::Fault(f) => {
                assert!(f.permanent);
                assert_eq!(f.kind, FaultKind::PermissionDenied);
                assert!(
                    f.detail.contains(
                        "apiGroups [\"\"], resources [\"pods\"], verbs [\"list\"] in namespace \"apps\""
                    ),
                    "{}",
                    f.detail
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn status_codes_map_once() {
        let kind = |code| match classify(&status(code), &target()) {
            Verdict::Fault(f) => format!("{}:{}", f.kind, f.permanent),
            Verdict::Terminate(t) => format!("terminated:{}", t.is_permanent()),
        };
        assert_eq!(kind(401), "permission_denied:true");
        assert_eq!(kind(404), "terminated:false");
        assert_eq!(kind(410), "index_rollback:false");
        assert_eq!(kind(422), "invalid_config:true");
        assert_eq!(kind(429), "backend_unavailable:false");
        assert_eq!(kind(500), "backend_unavailable:false");
        assert_eq!(kind(504), "timeout:false");
    }

    #[test]
    fn watch_error_event_410_is_a_resync() {
        let status = kube::core::Status::failure("too old", "Expired").with_code(410);
        let f = Failure::Watcher(kube::runtime::watcher::Error::WatchError(status.boxed()));
        assert!(matches!(classify(&f, &target()), Verdict::Fault(f) if f.is_resync()));
    }
}
