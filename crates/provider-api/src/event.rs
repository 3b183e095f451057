//! [`ProviderEvent`] and its parts: what a provider's stream yields.

use alloc::string::String;
use core::fmt;
use core::time::Duration;

use crate::ProviderSnapshot;

/// The kind of a non-terminal provider error, with its stable code
/// (ARCHITECTURE "Error kinds").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FaultKind {
    /// Connection refused or reset, 5xx, 429, DNS failure: the backend cannot
    /// answer now.
    BackendUnavailable,
    /// A request timed out.
    Timeout,
    /// Credentials rejected or not allowed (401/403, missing RBAC rule).
    PermissionDenied,
    /// The backend position went backwards (Consul index, etcd compaction,
    /// Kubernetes 410): the provider relists. A resync, not an error: it does
    /// not count towards `max_errors`.
    IndexRollback,
    /// The descriptor or the backend's configuration cannot work.
    InvalidConfig,
    /// The backend answered something that cannot be decoded (malformed body,
    /// bad value under a key, duplicate member ids).
    MalformedResponse,
}

impl FaultKind {
    /// The stable code carried by `provider_health` lines and API errors.
    /// A malformed answer means the backend is not usable, so it shares
    /// `backend_unavailable`; the detail says what was malformed.
    pub fn code(self) -> &'static str {
        match self {
            Self::BackendUnavailable | Self::MalformedResponse => "backend_unavailable",
            Self::Timeout => "timeout",
            Self::PermissionDenied => "permission_denied",
            Self::IndexRollback => "index_rollback",
            Self::InvalidConfig => "invalid_config",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A non-terminal error reported inside the stream. The stream goes on and
/// recovers by itself on the next poll (kube-runtime's watcher model).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderFault {
    /// What went wrong.
    pub kind: FaultKind,
    /// `true` when retrying cannot help (bad credentials, bad configuration):
    /// the provider is `Unreachable` at once.
    pub permanent: bool,
    /// Human-readable detail; never holds a secret.
    pub detail: String,
}

impl ProviderFault {
    /// A fault that a retry may cure.
    pub fn retryable(kind: FaultKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            permanent: false,
            detail: detail.into(),
        }
    }

    /// A fault that no retry will cure.
    pub fn permanent(kind: FaultKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            permanent: true,
            detail: detail.into(),
        }
    }

    /// A resync notice (`index_rollback`): the backend position went back and
    /// the provider relists. Not an error.
    pub fn resync(detail: impl Into<String>) -> Self {
        Self::retryable(FaultKind::IndexRollback, detail)
    }

    /// Whether this is a resync notice rather than an error.
    pub fn is_resync(&self) -> bool {
        self.kind == FaultKind::IndexRollback
    }
}

impl fmt::Display for ProviderFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let permanence = if self.permanent {
            "permanent"
        } else {
            "retryable"
        };
        write!(f, "{} ({permanence}): {}", self.kind, self.detail)
    }
}

/// Why a stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderTermination {
    /// The stream ended normally (the backend closed it, or the provider was
    /// told to stop).
    Ended,
    /// The stream ended because of an error.
    Errored {
        /// What happened; never holds a secret.
        reason: String,
        /// `true` when reopening cannot help; the stream is then not reopened.
        permanent: bool,
    },
}

impl ProviderTermination {
    /// The contract string (`ended`, `errored`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Ended => "ended",
            Self::Errored { .. } => "errored",
        }
    }

    /// Whether the stream may be reopened.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            Self::Errored {
                permanent: true,
                ..
            }
        )
    }
}

/// Liveness without new content: a blocking query that returned unchanged, a
/// successful liveness probe, an etcd progress notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Heartbeat {
    /// Backend staleness when it reports one (Consul `X-Consul-LastContact`).
    pub last_contact: Option<Duration>,
}

/// One item of a provider's stream.
///
/// The first item of every stream is a [`Snapshot`](Self::Snapshot), or a
/// [`Fault`](Self::Fault) if none could be obtained. While healthy, a provider
/// yields a snapshot or heartbeat at least once per heartbeat interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderEvent {
    /// A complete, changed view.
    Snapshot(ProviderSnapshot),
    /// Alive, view unchanged.
    Heartbeat(Heartbeat),
    /// A non-terminal error; the stream goes on.
    Fault(ProviderFault),
    /// The stream ends; no item follows.
    Terminated(ProviderTermination),
}

impl ProviderEvent {
    /// A heartbeat without staleness information.
    pub fn heartbeat() -> Self {
        Self::Heartbeat(Heartbeat::default())
    }

    /// Whether the event is evidence of liveness (snapshot or heartbeat).
    pub fn is_liveness(&self) -> bool {
        matches!(self, Self::Snapshot(_) | Self::Heartbeat(_))
    }
}
