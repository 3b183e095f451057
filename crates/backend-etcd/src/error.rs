//! [`EtcdError`] (public) and the private [`ClientError`], mapped to a
//! [`FaultKind`] and a permanence in one place: [`ClientError::classify`].

use provisioning_provider_api::{FaultKind, ProviderFault};
use thiserror::Error;

/// Why an etcd provider cannot be built, or why its probe failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum EtcdError {
    /// The descriptor cannot work: wrong kind, missing or malformed field,
    /// unknown `watch` key, unsupported TLS option.
    #[error("provider {id}: {field}: {message}")]
    InvalidConfig {
        /// Provider id.
        id: String,
        /// The offending field (`endpoints`, `watch.prefix`, `tls.verify`, ...).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A secret reference could not be resolved (the value is never shown).
    #[error("provider {id}: secret {reference}: {reason}")]
    Secret {
        /// Provider id.
        id: String,
        /// The reference (`env:NAME`, `file:PATH`).
        reference: String,
        /// Why it could not be read.
        reason: String,
    },
    /// The backend could not be reached or did not answer usefully; a retry
    /// may help.
    #[error("provider {id}: etcd unavailable: {detail}")]
    Unavailable {
        /// Provider id.
        id: String,
        /// What happened.
        detail: String,
    },
    /// The backend did not answer in time.
    #[error("provider {id}: etcd request timed out: {detail}")]
    Timeout {
        /// Provider id.
        id: String,
        /// What timed out.
        detail: String,
    },
    /// Credentials rejected, or no permission to read the prefix.
    #[error("provider {id}: permission denied: {detail}")]
    PermissionDenied {
        /// Provider id.
        id: String,
        /// The server's message.
        detail: String,
    },
}

impl EtcdError {
    /// The stable error code (ARCHITECTURE.md "Error kinds").
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidConfig { .. } | Self::Secret { .. } => "invalid_config",
            Self::Unavailable { .. } => "backend_unavailable",
            Self::Timeout { .. } => "timeout",
            Self::PermissionDenied { .. } => "permission_denied",
        }
    }

    /// Whether retrying the same operation may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Timeout { .. })
    }

    pub(crate) fn invalid(id: &str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidConfig {
            id: id.to_owned(),
            field: field.into(),
            message: message.into(),
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

    /// The public error for a probe or a construction step.
    pub(crate) fn into_public(self, id: &str) -> EtcdError {
        let (kind, _) = self.classify();
        let detail = self.to_string();
        let id = id.to_owned();
        match kind {
            FaultKind::Timeout => EtcdError::Timeout { id, detail },
            FaultKind::PermissionDenied => EtcdError::PermissionDenied { id, detail },
            FaultKind::InvalidConfig => EtcdError::InvalidConfig {
                id,
                field: "etcd".into(),
                message: detail,
            },
            _ => EtcdError::Unavailable { id, detail },
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
