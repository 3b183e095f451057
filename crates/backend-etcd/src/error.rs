//! [`EtcdError`] (public) and the private [`ClientError`], mapped to a
//! [`FaultKind`] and a permanence in one place: [`ClientError::classify`].

use std::time::Duration;

use provisioning_provider_api::{FaultKind, ProviderFault, ProviderId};
use provisioning_registry::ProvisioningError;
use thiserror::Error;

/// Why an etcd provider cannot be built, or why its probe failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum EtcdError {
    /// The descriptor cannot work (`invalid_config`): wrong kind, missing or
    /// malformed field, unknown `watch` key, unsupported TLS option, a
    /// secret or TLS file that cannot be read. Names the field.
    #[error(transparent)]
    Config(ProvisioningError),
    /// The backend could not be reached or did not answer usefully; a retry
    /// may help (`backend_unavailable`).
    #[error("provider \"{provider}\": etcd unavailable: {detail}")]
    Unavailable {
        /// Provider id.
        provider: ProviderId,
        /// What happened.
        detail: String,
    },
    /// The backend did not answer in time (`timeout`).
    #[error("provider \"{provider}\": {operation} timed out after {after:?}")]
    Timeout {
        /// Provider id.
        provider: ProviderId,
        /// What timed out.
        operation: String,
        /// The limit that passed.
        after: Duration,
    },
    /// Credentials rejected, or no permission to read the prefix
    /// (`permission_denied`).
    #[error("provider \"{provider}\": permission denied: {detail}")]
    PermissionDenied {
        /// Provider id.
        provider: ProviderId,
        /// The server's message.
        detail: String,
    },
}

impl EtcdError {
    /// The stable error code (ARCHITECTURE "Error kinds").
    pub fn code(&self) -> &'static str {
        match self {
            Self::Config(e) => e.code(),
            Self::Unavailable { .. } => "backend_unavailable",
            Self::Timeout { .. } => "timeout",
            Self::PermissionDenied { .. } => "permission_denied",
        }
    }

    /// Whether retrying the same operation may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Timeout { .. })
    }

    pub(crate) fn invalid(
        provider: &ProviderId,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::Config(ProvisioningError::invalid(
            Some(provider),
            Some(field.into()),
            message,
        ))
    }
}

impl From<EtcdError> for ProvisioningError {
    fn from(error: EtcdError) -> Self {
        match error {
            EtcdError::Config(e) => e,
            EtcdError::Unavailable { provider, detail } => Self::BackendUnavailable {
                provider: Some(provider),
                detail,
            },
            EtcdError::Timeout {
                provider,
                operation,
                after,
            } => Self::Timeout {
                provider: Some(provider),
                operation,
                after,
            },
            EtcdError::PermissionDenied { provider, detail } => Self::PermissionDenied {
                provider: Some(provider),
                detail,
            },
        }
    }
}

/// What went wrong talking to etcd, before it becomes a fault.
#[derive(Debug, Error)]
pub(crate) enum ClientError {
    /// A request failed in the client or on the server.
    #[error("{op} via {endpoint}: {source}")]
    Request {
        op: &'static str,
        endpoint: String,
        #[source]
        source: etcd_client::Error,
    },
    /// No answer within the deadline.
    #[error("{op} via {endpoint}: no answer within {timeout_ms} ms")]
    Timeout {
        op: &'static str,
        endpoint: String,
        timeout_ms: u128,
    },
    /// The watch sent nothing, not even a progress notification, within the
    /// deadline after a progress request.
    #[error("watch via {endpoint}: no progress within {timeout_ms} ms")]
    WatchStalled { endpoint: String, timeout_ms: u128 },
    /// The server closed the watch stream.
    #[error("watch via {endpoint}: stream closed by the server")]
    WatchClosed { endpoint: String },
    /// The server cancelled the watch for a reason other than compaction.
    #[error("watch via {endpoint}: cancelled by the server: {reason}")]
    WatchCanceled { endpoint: String, reason: String },
    /// The watch start revision was compacted: relist.
    #[error("watch via {endpoint}: start revision compacted (compact revision {compact_revision})")]
    Compacted {
        endpoint: String,
        compact_revision: i64,
    },
    /// A response without the header every etcd response carries.
    #[error("{op} via {endpoint}: response without header")]
    NoHeader { op: &'static str, endpoint: String },
    /// A secret or TLS file could not be read at connect time.
    #[error("{0}")]
    Config(String),
}

impl ClientError {
    /// The one place where errors become a fault kind and a permanence.
    pub(crate) fn classify(&self) -> (FaultKind, bool) {
        use etcd_client::Error as E;
        match self {
            Self::Request { source, .. } => match source {
                E::GRpcStatus(status) => classify_status(status.code(), status.message()),
                E::TransportError(_) | E::IoError(_) | E::WatchError(_) => {
                    (FaultKind::BackendUnavailable, false)
                }
                E::LeaseKeepAliveError(_) | E::ElectError(_) | E::Internal(_) => {
                    (FaultKind::BackendUnavailable, false)
                }
                E::Utf8Error(_) => (FaultKind::MalformedResponse, false),
                E::InvalidArgs(_)
                | E::InvalidUri(_)
                | E::InvalidMetadataValue(_)
                | E::EndpointError(_)
                | E::EndpointsNotManaged => (FaultKind::InvalidConfig, true),
                // `etcd_client::Error` is not exhaustive in spirit (features
                // add variants): anything new is treated as transient.
                #[allow(unreachable_patterns, reason = "variants behind etcd-client features")]
                _ => (FaultKind::BackendUnavailable, false),
            },
            Self::Timeout { .. } | Self::WatchStalled { .. } => (FaultKind::Timeout, false),
            Self::WatchClosed { .. } | Self::NoHeader { .. } => {
                (FaultKind::BackendUnavailable, false)
            }
            Self::WatchCanceled { reason, .. } => {
                if reason.contains("permission denied") {
                    (FaultKind::PermissionDenied, true)
                } else {
                    (FaultKind::BackendUnavailable, false)
                }
            }
            Self::Compacted { .. } => (FaultKind::IndexRollback, false),
            Self::Config(_) => (FaultKind::InvalidConfig, true),
        }
    }

    /// The in-stream fault for this error.
    pub(crate) fn to_fault(&self) -> ProviderFault {
        let (kind, permanent) = self.classify();
        let detail = self.to_string();
        if kind == FaultKind::IndexRollback {
            ProviderFault::resync(detail)
        } else if permanent {
            ProviderFault::permanent(kind, detail)
        } else {
            ProviderFault::retryable(kind, detail)
        }
    }

    /// Whether the endpoint itself looks unusable (so the next attempt
    /// should try another one).
    pub(crate) fn is_connection_level(&self) -> bool {
        matches!(
            self.classify().0,
            FaultKind::BackendUnavailable | FaultKind::Timeout
        )
    }

    /// The public error for a probe; `limit` is the deadline it ran with.
    pub(crate) fn into_public(self, provider: &ProviderId, limit: Duration) -> EtcdError {
        let (kind, _) = self.classify();
        let provider = provider.clone();
        match (kind, self) {
            (FaultKind::Timeout, Self::Timeout { op, timeout_ms, .. }) => EtcdError::Timeout {
                provider,
                operation: op.to_owned(),
                after: Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(u64::MAX)),
            },
            (FaultKind::Timeout, other) => EtcdError::Timeout {
                provider,
                operation: other.to_string(),
                after: limit,
            },
            (FaultKind::PermissionDenied, other) => EtcdError::PermissionDenied {
                provider,
                detail: other.to_string(),
            },
            (FaultKind::InvalidConfig, other) => {
                EtcdError::invalid(&provider, "etcd", other.to_string())
            }
            (_, other) => EtcdError::Unavailable {
                provider,
                detail: other.to_string(),
            },
        }
    }
}

/// gRPC status codes as etcd uses them (`api/v3rpc/rpctypes/error.go`).
fn classify_status(code: tonic::Code, message: &str) -> (FaultKind, bool) {
    use tonic::Code;
    match code {
        Code::DeadlineExceeded => (FaultKind::Timeout, false),
        Code::PermissionDenied | Code::Unauthenticated => (FaultKind::PermissionDenied, true),
        // etcd reports some auth failures as InvalidArgument: "user name is
        // empty" (auth on, no credentials), "authentication failed".
        Code::InvalidArgument
            if message.contains("user name is empty")
                || message.contains("authentication failed")
                || message.contains("permission denied") =>
        {
            (FaultKind::PermissionDenied, true)
        }
        Code::OutOfRange if message.contains("compacted") => (FaultKind::IndexRollback, false),
        // Credentials given while auth is off, or a malformed request: the
        // configuration cannot work against this server.
        Code::InvalidArgument | Code::FailedPrecondition | Code::Unimplemented => {
            (FaultKind::InvalidConfig, true)
        }
        // Unavailable (refused, no leader, request timed out on the server),
        // Unknown (transport), Aborted, ResourceExhausted, Internal,
        // Cancelled, ...: the backend cannot answer now.
        _ => (FaultKind::BackendUnavailable, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::{Code, Status};

    fn status(code: Code, message: &str) -> ClientError {
        ClientError::Request {
            op: "list",
            endpoint: "http://127.0.0.1:2379".into(),
            source: etcd_client::Error::GRpcStatus(Status::new(code, message)),
        }
    }

    #[test]
    fn etcd_errors_map_to_kinds_and_permanence() {
        for (error, kind, permanent) in [
            (
                status(Code::Unavailable, "etcdserver: no leader"),
                FaultKind::BackendUnavailable,
                false,
            ),
            (
                status(Code::Unavailable, "tcp connect error"),
                FaultKind::BackendUnavailable,
                false,
            ),
            (
                status(Code::Unknown, "h2 protocol error"),
                FaultKind::BackendUnavailable,
                false,
            ),
            (
                status(Code::DeadlineExceeded, "context deadline exceeded"),
                FaultKind::Timeout,
                false,
            ),
            (
                status(Code::PermissionDenied, "etcdserver: permission denied"),
                FaultKind::PermissionDenied,
                true,
            ),
            (
                status(Code::InvalidArgument, "etcdserver: user name is empty"),
                FaultKind::PermissionDenied,
                true,
            ),
            (
                status(
                    Code::InvalidArgument,
                    "etcdserver: authentication failed, invalid user ID or password",
                ),
                FaultKind::PermissionDenied,
                true,
            ),
            (
                status(Code::Unauthenticated, "etcdserver: invalid auth token"),
                FaultKind::PermissionDenied,
                true,
            ),
            (
                status(
                    Code::OutOfRange,
                    "etcdserver: mvcc: required revision has been compacted",
                ),
                FaultKind::IndexRollback,
                false,
            ),
            (
                status(
                    Code::FailedPrecondition,
                    "etcdserver: authentication is not enabled",
                ),
                FaultKind::InvalidConfig,
                true,
            ),
            (
                ClientError::Compacted {
                    endpoint: "e".into(),
                    compact_revision: 9,
                },
                FaultKind::IndexRollback,
                false,
            ),
            (
                ClientError::WatchCanceled {
                    endpoint: "e".into(),
                    reason: "etcdserver: permission denied".into(),
                },
                FaultKind::PermissionDenied,
                true,
            ),
            (
                ClientError::WatchStalled {
                    endpoint: "e".into(),
                    timeout_ms: 500,
                },
                FaultKind::Timeout,
                false,
            ),
            (
                ClientError::WatchClosed {
                    endpoint: "e".into(),
                },
                FaultKind::BackendUnavailable,
                false,
            ),
            (
                ClientError::Config("secret env:X: not set".into()),
                FaultKind::InvalidConfig,
                true,
            ),
        ] {
            assert_eq!(error.classify(), (kind, permanent), "{error}");
            let fault = error.to_fault();
            assert_eq!((fault.kind, fault.permanent), (kind, permanent), "{error}");
            assert_eq!(fault.is_resync(), kind == FaultKind::IndexRollback);
        }
    }

    #[test]
    fn public_errors_keep_codes_and_convert_to_the_registry() {
        let id = ProviderId::new("etcd-a").unwrap();
        let limit = Duration::from_secs(5);
        let e = status(Code::Unavailable, "refused").into_public(&id, limit);
        assert_eq!((e.code(), e.is_retryable()), ("backend_unavailable", true));
        let e = status(Code::PermissionDenied, "denied").into_public(&id, limit);
        assert_eq!((e.code(), e.is_retryable()), ("permission_denied", false));
        assert_eq!(ProvisioningError::from(e).code(), "permission_denied");
        let e = ClientError::Timeout {
            op: "check",
            endpoint: "e".into(),
            timeout_ms: 1500,
        }
        .into_public(&id, limit);
        assert!(
            matches!(&e, EtcdError::Timeout { after, .. } if *after == Duration::from_millis(1500)),
            "{e:?}"
        );
        assert_eq!(ProvisioningError::from(e).code(), "timeout");
    }
}
