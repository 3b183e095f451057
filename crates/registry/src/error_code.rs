//! [`ErrorCode`]: the stable, machine-readable error codes of ARCHITECTURE
//! "Error kinds".

use std::fmt;

/// A stable error code. Every error that leaves the process (CLI `error[..]`
/// lines, admin API bodies) carries one; the strings never change.
///
/// ```
/// use provisioning_registry::ErrorCode;
/// assert_eq!(ErrorCode::DuplicatePriority.as_str(), "duplicate_priority");
/// assert!(ErrorCode::BackendUnavailable.is_retryable());
/// assert!(!ErrorCode::InvalidConfig.is_retryable());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ErrorCode {
    /// A descriptor, store line, policy or secret reference is malformed.
    InvalidConfig,
    /// A provider id is registered twice.
    DuplicateName,
    /// A priority is used by two providers (disabled ones included).
    DuplicatePriority,
    /// The same kind, endpoints and watch target are registered twice.
    Conflict,
    /// A secret was written inline instead of as `env:` / `file:` reference.
    InlineSecret,
    /// A backend (or the store's file system) cannot answer now.
    BackendUnavailable,
    /// An operation did not finish in time.
    Timeout,
    /// Credentials or file permissions do not allow the operation.
    PermissionDenied,
    /// A backend position went backwards: a resync, not a failure.
    IndexRollback,
    /// A provider is not healthy.
    ProviderUnhealthy,
    /// No provider is usable.
    ProvisioningUnavailable,
    /// Bad CLI arguments or request body.
    InvalidArgument,
    /// Missing or wrong admin token.
    Unauthorized,
    /// An unknown provider id (or other resource).
    NotFound,
    /// The provider exists but is disabled.
    ProviderDisabled,
    /// No snapshot has been published yet.
    NotReady,
    /// A request body is too large.
    PayloadTooLarge,
    /// `serve` was asked to listen beyond loopback without a token.
    InsecureListen,
    /// A request body that is not `application/json`.
    UnsupportedMediaType,
    /// A request sent from a page of another origin.
    ForbiddenOrigin,
    /// A request naming a host that is not this loopback listener (DNS
    /// rebinding).
    ForbiddenHost,
    /// Every event-stream slot of the admin API is taken.
    TooManyStreams,
    /// A descriptor sent to the admin API references a secret the operator
    /// did not allow (CONTRACTS §4a rule 3).
    ForbiddenSecretRef,
    /// A file a descriptor names is not a regular file of at most 1 MiB
    /// (CONTRACTS §4a rule 4).
    InvalidDescriptor,
    /// Another process holds the store's lock longer than the lock timeout:
    /// nothing was changed; retry later.
    StoreBusy,
}

impl ErrorCode {
    /// Every code, in the order of ARCHITECTURE "Error kinds".
    pub const ALL: [ErrorCode; 25] = [
        Self::InvalidConfig,
        Self::DuplicateName,
        Self::DuplicatePriority,
        Self::Conflict,
        Self::InlineSecret,
        Self::BackendUnavailable,
        Self::Timeout,
        Self::PermissionDenied,
        Self::IndexRollback,
        Self::ProviderUnhealthy,
        Self::ProvisioningUnavailable,
        Self::InvalidArgument,
        Self::Unauthorized,
        Self::NotFound,
        Self::ProviderDisabled,
        Self::NotReady,
        Self::PayloadTooLarge,
        Self::InsecureListen,
        Self::UnsupportedMediaType,
        Self::ForbiddenOrigin,
        Self::ForbiddenHost,
        Self::TooManyStreams,
        Self::ForbiddenSecretRef,
        Self::InvalidDescriptor,
        Self::StoreBusy,
    ];

    /// The stable code string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidConfig => "invalid_config",
            Self::DuplicateName => "duplicate_name",
            Self::DuplicatePriority => "duplicate_priority",
            Self::Conflict => "conflict",
            Self::InlineSecret => "inline_secret",
            Self::BackendUnavailable => "backend_unavailable",
            Self::Timeout => "timeout",
            Self::PermissionDenied => "permission_denied",
            Self::IndexRollback => "index_rollback",
            Self::ProviderUnhealthy => "provider_unhealthy",
            Self::ProvisioningUnavailable => "provisioning_unavailable",
            Self::InvalidArgument => "invalid_argument",
            Self::Unauthorized => "unauthorized",
            Self::NotFound => "not_found",
            Self::ProviderDisabled => "provider_disabled",
            Self::NotReady => "not_ready",
            Self::PayloadTooLarge => "payload_too_large",
            Self::InsecureListen => "insecure_listen",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::ForbiddenOrigin => "forbidden_origin",
            Self::ForbiddenHost => "forbidden_host",
            Self::TooManyStreams => "too_many_streams",
            Self::ForbiddenSecretRef => "forbidden_secret_ref",
            Self::InvalidDescriptor => "invalid_descriptor",
            Self::StoreBusy => "store_busy",
        }
    }

    /// Whether retrying the same operation later can succeed without anyone
    /// changing the configuration: backends coming back, timeouts, resyncs,
    /// providers recovering, the first snapshot arriving, the store's lock
    /// being released.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::BackendUnavailable
                | Self::Timeout
                | Self::IndexRollback
                | Self::ProviderUnhealthy
                | Self::ProvisioningUnavailable
                | Self::NotReady
                | Self::TooManyStreams
                | Self::StoreBusy
        )
    }

    /// Parses a code string.
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == code)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_parse_back() {
        let mut seen = std::collections::BTreeSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "duplicate {code}");
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
        }
        assert_eq!(ErrorCode::parse("nope"), None);
    }
}
