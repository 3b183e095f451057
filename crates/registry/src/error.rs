//! [`ProvisioningError`]: the one error type of the provisioning service.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use provisioning_provider_api::{ProviderId, SecretRef, format_duration};

use crate::ErrorCode;

/// Every error of registration, validation, storage, secret resolution,
/// preflight and the operator interfaces.
///
/// The CLI prints it as `error[CODE]: MESSAGE` with [`code`](Self::code) and
/// [`Display`](fmt::Display); the admin API returns
/// `{"error": MESSAGE, "code": CODE}`. Messages name the descriptor and the
/// field where one is involved, and never contain a secret value.
///
/// ```
/// use provisioning_registry::{ErrorCode, ProvisioningError};
/// let e = ProvisioningError::UnknownField { provider: None, field: "prioirty".into() }
///     .at_line("providers.jsonl", 3);
/// assert_eq!(e.code(), "invalid_config");
/// assert_eq!(e.to_string(), r#"providers.jsonl:3: unknown field "prioirty""#);
/// assert_eq!(e.line(), Some(3));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProvisioningError {
    /// A field is missing, malformed or not allowed for the kind; also an
    /// unknown kind or a malformed store line (`invalid_config`).
    #[error("{}{message}", Subject(provider.as_ref(), field.as_deref()))]
    InvalidConfig {
        /// The descriptor, when known.
        provider: Option<ProviderId>,
        /// The field path (`endpoints[0]`, `watch.register.ttl`), when known.
        field: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// A key no schema knows, at any level (`invalid_config`).
    #[error("unknown field \"{field}\"{}", InProvider(provider.as_ref()))]
    UnknownField {
        /// The descriptor, when known.
        provider: Option<ProviderId>,
        /// The full path of the unknown key (`auth.tokn`).
        field: String,
    },
    /// The id is already registered (`duplicate_name`).
    #[error("provider \"{id}\": field \"id\": provider \"{id}\" is already registered")]
    DuplicateName {
        /// The id registered twice.
        id: ProviderId,
    },
    /// The priority is already used (`duplicate_priority`).
    #[error(
        "provider \"{id}\": field \"priority\": priority {priority} is already used by provider \"{existing}\""
    )]
    DuplicatePriority {
        /// The descriptor being registered.
        id: ProviderId,
        /// The priority both use.
        priority: u32,
        /// The provider that has it.
        existing: ProviderId,
    },
    /// Same kind, endpoints and watch target as another provider (`conflict`).
    #[error(
        "provider \"{id}\": field \"watch\": same kind, endpoints and watch target as provider \"{existing}\""
    )]
    Conflict {
        /// The descriptor being registered.
        id: ProviderId,
        /// The provider it duplicates.
        existing: ProviderId,
    },
    /// A secret written inline instead of a reference (`inline_secret`). The
    /// value is never kept.
    #[error(
        "{}inline secret (value not shown): expected a reference `env:NAME` or `file:PATH`",
        Subject(provider.as_ref(), Some(field))
    )]
    InlineSecret {
        /// The descriptor, when known.
        provider: Option<ProviderId>,
        /// Where the secret was written (`auth.token`, `endpoints[0]`).
        field: String,
    },
    /// A secret reference cannot be resolved (`invalid_config`): a missing
    /// variable, an unreadable file, an empty value.
    #[error("secret {reference}: {reason}")]
    SecretUnavailable {
        /// The reference (never the value).
        reference: SecretRef,
        /// Why it cannot be resolved.
        reason: String,
    },
    /// A secret reference the admin API does not allow: not an allowed
    /// variable, or a file outside the secrets directory
    /// (`forbidden_secret_ref`). Names the reference, never a value.
    #[error(
        "{}secret reference {reference} is not allowed: {reason}",
        Subject(provider.as_ref(), Some(field))
    )]
    ForbiddenSecretRef {
        /// The descriptor, when known.
        provider: Option<ProviderId>,
        /// Where the reference is (`auth.token`, `tls.key`).
        field: String,
        /// The reference.
        reference: SecretRef,
        /// Why it is refused.
        reason: String,
    },
    /// A file the descriptor names is not a regular file of at most 1 MiB
    /// (`invalid_descriptor`). The message says what the file is, never
    /// what it holds.
    #[error("{}{message}", Subject(provider.as_ref(), field.as_deref()))]
    InvalidDescriptor {
        /// The descriptor, when known.
        provider: Option<ProviderId>,
        /// The field naming the file (`tls.ca`), when known.
        field: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// A backend cannot answer now (`backend_unavailable`, retryable).
    #[error("{}backend unavailable: {detail}", Subject(provider.as_ref(), None))]
    BackendUnavailable {
        /// The provider, when known.
        provider: Option<ProviderId>,
        /// What happened.
        detail: String,
    },
    /// An operation did not finish in time (`timeout`, retryable).
    #[error(
        "{}{operation} timed out after {}",
        Subject(provider.as_ref(), None),
        format_duration(*after)
    )]
    Timeout {
        /// The provider, when known.
        provider: Option<ProviderId>,
        /// What timed out (`preflight`, `waiting for the store lock`).
        operation: String,
        /// The limit that passed.
        after: Duration,
    },
    /// Credentials or permissions are insufficient (`permission_denied`).
    #[error("{}permission denied: {detail}", Subject(provider.as_ref(), None))]
    PermissionDenied {
        /// The provider, when known.
        provider: Option<ProviderId>,
        /// What was denied.
        detail: String,
    },
    /// A backend position went backwards (`index_rollback`, retryable).
    #[error("{}index rolled back: {detail}", Subject(provider.as_ref(), None))]
    IndexRollback {
        /// The provider, when known.
        provider: Option<ProviderId>,
        /// Which position.
        detail: String,
    },
    /// A provider is not healthy (`provider_unhealthy`, retryable).
    #[error("provider \"{provider}\" is unhealthy: {detail}")]
    ProviderUnhealthy {
        /// The provider.
        provider: ProviderId,
        /// Its last error.
        detail: String,
    },
    /// No provider is usable (`provisioning_unavailable`, retryable).
    #[error("no provider is usable: {detail}")]
    ProvisioningUnavailable {
        /// Why.
        detail: String,
    },
    /// Bad CLI arguments or request body (`invalid_argument`).
    #[error("{message}")]
    InvalidArgument {
        /// What is wrong.
        message: String,
    },
    /// Missing or wrong token (`unauthorized`).
    #[error("unauthorized: {detail}")]
    Unauthorized {
        /// Why (never the token).
        detail: String,
    },
    /// An unknown id (`not_found`).
    #[error("{what} \"{id}\" not found")]
    NotFound {
        /// What was looked up (`provider`).
        what: &'static str,
        /// The id asked for.
        id: String,
    },
    /// The provider is disabled (`provider_disabled`).
    #[error("provider \"{id}\" is disabled")]
    ProviderDisabled {
        /// The provider.
        id: ProviderId,
    },
    /// Nothing published yet (`not_ready`, retryable).
    #[error("not ready: {detail}")]
    NotReady {
        /// What is missing.
        detail: String,
    },
    /// A request body over the limit (`payload_too_large`).
    #[error("payload larger than {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// A file-system operation of a store failed (`permission_denied` when
    /// the OS denied it, else `backend_unavailable`, retryable).
    #[error("{operation} {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was attempted (`read`, `rename`, `fsync`).
        operation: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Another holder kept the store's lock for longer than the lock
    /// timeout (`store_busy`, retryable). Nothing was written.
    #[error(
        "store busy: the lock {} is held by another process; gave up after {}, nothing was changed",
        lock.display(),
        format_duration(*waited)
    )]
    StoreBusy {
        /// The lock file.
        lock: PathBuf,
        /// How long the write waited.
        waited: Duration,
    },
    /// An error located in a stored file: `providers.jsonl:3: ...`. Its code
    /// is the inner error's.
    #[error("{file}:{line}: {error}")]
    AtLine {
        /// The file name as shown to the operator.
        file: String,
        /// 1-based line number.
        line: usize,
        /// The error on that line.
        error: Box<ProvisioningError>,
    },
}

/// `provider "x": field "f": ` prefix of messages.
struct Subject<'a>(Option<&'a ProviderId>, Option<&'a str>);

impl fmt::Display for Subject<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(id) = self.0 {
            write!(f, "provider \"{id}\": ")?;
        }
        if let Some(field) = self.1 {
            write!(f, "field \"{field}\": ")?;
        }
        Ok(())
    }
}

/// ` in provider "x"` suffix.
struct InProvider<'a>(Option<&'a ProviderId>);

impl fmt::Display for InProvider<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(id) => write!(f, " in provider \"{id}\""),
            None => Ok(()),
        }
    }
}

impl ProvisioningError {
    /// An `invalid_config` error naming the descriptor and field.
    pub fn invalid(
        provider: Option<&ProviderId>,
        field: impl Into<Option<String>>,
        message: impl Into<String>,
    ) -> Self {
        Self::InvalidConfig {
            provider: provider.cloned(),
            field: field.into(),
            message: message.into(),
        }
    }

    /// A `not_found` error for a provider id.
    pub fn provider_not_found(id: impl Into<String>) -> Self {
        Self::NotFound {
            what: "provider",
            id: id.into(),
        }
    }

    /// An [`Io`](Self::Io) error.
    pub fn io(operation: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            path: path.into(),
            operation,
            source,
        }
    }

    /// Locates this error at `file:line`.
    pub fn at_line(self, file: impl Into<String>, line: usize) -> Self {
        Self::AtLine {
            file: file.into(),
            line,
            error: Box::new(self),
        }
    }

    /// Names the descriptor in errors that do not name one yet.
    pub fn with_provider(self, id: &ProviderId) -> Self {
        match self {
            Self::AtLine { file, line, error } => Self::AtLine {
                file,
                line,
                error: Box::new(error.with_provider(id)),
            },
            mut other => {
                if let Self::InvalidConfig { provider, .. }
                | Self::UnknownField { provider, .. }
                | Self::InlineSecret { provider, .. }
                | Self::ForbiddenSecretRef { provider, .. }
                | Self::InvalidDescriptor { provider, .. }
                | Self::BackendUnavailable { provider, .. }
                | Self::Timeout { provider, .. }
                | Self::PermissionDenied { provider, .. }
                | Self::IndexRollback { provider, .. } = &mut other
                    && provider.is_none()
                {
                    *provider = Some(id.clone());
                }
                other
            }
        }
    }

    /// Prefixes the field path (`watch` + `service` = `watch.service`) in
    /// errors that carry one.
    pub fn within(mut self, parent: &str) -> Self {
        let join = |field: &mut String| {
            *field = if field.is_empty() {
                parent.to_owned()
            } else if field.starts_with('[') {
                format!("{parent}{field}")
            } else {
                format!("{parent}.{field}")
            };
        };
        match &mut self {
            Self::InvalidConfig { field, .. } | Self::InvalidDescriptor { field, .. } => {
                match field {
                    Some(f) => join(f),
                    None => *field = Some(parent.to_owned()),
                }
            }
            Self::UnknownField { field, .. }
            | Self::InlineSecret { field, .. }
            | Self::ForbiddenSecretRef { field, .. } => join(field),
            _ => {}
        }
        self
    }

    /// The error kind.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            Self::InvalidConfig { .. } | Self::UnknownField { .. } => ErrorCode::InvalidConfig,
            Self::SecretUnavailable { .. } => ErrorCode::InvalidConfig,
            Self::DuplicateName { .. } => ErrorCode::DuplicateName,
            Self::DuplicatePriority { .. } => ErrorCode::DuplicatePriority,
            Self::Conflict { .. } => ErrorCode::Conflict,
            Self::InlineSecret { .. } => ErrorCode::InlineSecret,
            Self::BackendUnavailable { .. } => ErrorCode::BackendUnavailable,
            Self::Timeout { .. } => ErrorCode::Timeout,
            Self::PermissionDenied { .. } => ErrorCode::PermissionDenied,
            Self::IndexRollback { .. } => ErrorCode::IndexRollback,
            Self::ProviderUnhealthy { .. } => ErrorCode::ProviderUnhealthy,
            Self::ProvisioningUnavailable { .. } => ErrorCode::ProvisioningUnavailable,
            Self::InvalidArgument { .. } => ErrorCode::InvalidArgument,
            Self::Unauthorized { .. } => ErrorCode::Unauthorized,
            Self::NotFound { .. } => ErrorCode::NotFound,
            Self::ProviderDisabled { .. } => ErrorCode::ProviderDisabled,
            Self::NotReady { .. } => ErrorCode::NotReady,
            Self::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            Self::ForbiddenSecretRef { .. } => ErrorCode::ForbiddenSecretRef,
            Self::InvalidDescriptor { .. } => ErrorCode::InvalidDescriptor,
            Self::StoreBusy { .. } => ErrorCode::StoreBusy,
            Self::Io { source, .. } => match source.kind() {
                io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
                    ErrorCode::PermissionDenied
                }
                _ => ErrorCode::BackendUnavailable,
            },
            Self::AtLine { error, .. } => error.error_code(),
        }
    }

    /// The stable code string (`invalid_config`, `duplicate_name`, ...).
    pub fn code(&self) -> &'static str {
        self.error_code().as_str()
    }

    /// Whether retrying later can help without a configuration change.
    pub fn is_retryable(&self) -> bool {
        self.error_code().is_retryable()
    }

    /// The descriptor the error is about, when known.
    pub fn provider(&self) -> Option<&ProviderId> {
        match self {
            Self::InvalidConfig { provider, .. }
            | Self::UnknownField { provider, .. }
            | Self::InlineSecret { provider, .. }
            | Self::ForbiddenSecretRef { provider, .. }
            | Self::InvalidDescriptor { provider, .. }
            | Self::BackendUnavailable { provider, .. }
            | Self::Timeout { provider, .. }
            | Self::PermissionDenied { provider, .. }
            | Self::IndexRollback { provider, .. } => provider.as_ref(),
            Self::DuplicateName { id }
            | Self::DuplicatePriority { id, .. }
            | Self::Conflict { id, .. }
            | Self::ProviderDisabled { id } => Some(id),
            Self::ProviderUnhealthy { provider, .. } => Some(provider),
            Self::AtLine { error, .. } => error.provider(),
            _ => None,
        }
    }

    /// The field path the error is about, when known.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::InvalidConfig { field, .. } | Self::InvalidDescriptor { field, .. } => {
                field.as_deref()
            }
            Self::UnknownField { field, .. }
            | Self::InlineSecret { field, .. }
            | Self::ForbiddenSecretRef { field, .. } => Some(field),
            Self::DuplicateName { .. } => Some("id"),
            Self::DuplicatePriority { .. } => Some("priority"),
            Self::Conflict { .. } => Some("watch"),
            Self::AtLine { error, .. } => error.field(),
            _ => None,
        }
    }

    /// The 1-based line in a stored file, for load errors.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::AtLine { line, .. } => Some(*line),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> ProviderId {
        ProviderId::new(s).unwrap()
    }

    #[test]
    fn messages_name_provider_and_field() {
        let e =
            ProvisioningError::invalid(Some(&id("c")), Some("watch".into()), "missing").within("x");
        assert_eq!(e.to_string(), r#"provider "c": field "x.watch": missing"#);
        let e = ProvisioningError::UnknownField {
            provider: None,
            field: "tokn".into(),
        }
        .within("auth")
        .with_provider(&id("a"));
        assert_eq!(
            e.to_string(),
            r#"unknown field "auth.tokn" in provider "a""#
        );
        assert_eq!(e.field(), Some("auth.tokn"));
        let e = ProvisioningError::invalid(None, None, "m")
            .at_line("p.jsonl", 2)
            .with_provider(&id("z"));
        assert_eq!(e.to_string(), r#"p.jsonl:2: provider "z": m"#);
        assert_eq!(e.provider().map(ProviderId::as_str), Some("z"));
    }

    #[test]
    fn io_codes_follow_the_os_error() {
        let denied = ProvisioningError::io(
            "open",
            "/x",
            io::Error::from(io::ErrorKind::PermissionDenied),
        );
        assert_eq!(denied.code(), "permission_denied");
        assert!(!denied.is_retryable());
        let other = ProvisioningError::io("open", "/x", io::Error::other("disk"));
        assert_eq!(other.code(), "backend_unavailable");
        assert!(other.is_retryable());
    }

    #[test]
    fn store_busy_names_the_lock_and_is_retryable() {
        let e = ProvisioningError::StoreBusy {
            lock: PathBuf::from("/s/providers.jsonl.lock"),
            waited: Duration::from_secs(10),
        };
        assert_eq!(e.code(), "store_busy");
        assert!(e.is_retryable());
        assert_eq!(
            e.to_string(),
            "store busy: the lock /s/providers.jsonl.lock is held by another process; gave up after 10s, nothing was changed"
        );
    }

    #[test]
    fn timeout_shows_duration_text() {
        let e = ProvisioningError::Timeout {
            provider: Some(id("k")),
            operation: "preflight".into(),
            after: Duration::from_secs(5),
        };
        assert_eq!(
            e.to_string(),
            r#"provider "k": preflight timed out after 5s"#
        );
        assert!(e.is_retryable());
    }
}
