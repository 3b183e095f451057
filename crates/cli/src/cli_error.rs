//! [`CliError`]: an error as the CLI reports it — one `error[CODE]: message`
//! line on stderr and a documented exit code (CONTRACTS §2).

use std::fmt;
use std::process::ExitCode;

use cluster_provisioning::ProvisioningError;
use cluster_provisioning::registry::ErrorCode;

/// The exit codes of CONTRACTS §2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// 0: done.
    Ok,
    /// 1: a runtime failure (I/O, the service stopped).
    Runtime,
    /// 2: invalid input: bad store, bad policy, bad arguments, a validation
    /// failure, no providers to run.
    InvalidInput,
    /// 3: a backend the command needed cannot be reached.
    Unreachable,
}

impl Exit {
    /// The process exit code.
    pub(crate) fn code(self) -> u8 {
        match self {
            Self::Ok => 0,
            Self::Runtime => 1,
            Self::InvalidInput => 2,
            Self::Unreachable => 3,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit.code())
    }
}

/// An error that ends a command: a stable code, a one-line message and the
/// exit code.
#[derive(Debug)]
pub(crate) struct CliError {
    code: &'static str,
    message: String,
    exit: Exit,
}

impl CliError {
    /// An error with an explicit code and exit code.
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>, exit: Exit) -> Self {
        Self {
            code: code.as_str(),
            message: message.into(),
            exit,
        }
    }

    /// Bad input (`invalid_argument`, exit 2).
    pub(crate) fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message, Exit::InvalidInput)
    }

    /// Bad configuration (`invalid_config`, exit 2).
    pub(crate) fn invalid_config(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidConfig, message, Exit::InvalidInput)
    }

    /// A runtime failure with `code` (exit 1).
    pub(crate) fn runtime(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(code, message, Exit::Runtime)
    }

    /// The stable code.
    #[cfg(test)]
    pub(crate) fn code(&self) -> &'static str {
        self.code
    }

    /// The exit code.
    pub(crate) fn exit(&self) -> Exit {
        self.exit
    }

    /// Exit code for a [`ProvisioningError`]: validation and lookup errors
    /// are invalid input; a backend that cannot be reached, that timed out
    /// or refused the credentials is exit 3 when the error names a provider
    /// (a probe or a backend), while the store's own file-system and lock
    /// failures are runtime failures.
    fn exit_for(error: &ProvisioningError) -> Exit {
        match error.error_code() {
            ErrorCode::InvalidConfig
            | ErrorCode::DuplicateName
            | ErrorCode::DuplicatePriority
            | ErrorCode::Conflict
            | ErrorCode::InlineSecret
            | ErrorCode::InvalidArgument
            | ErrorCode::NotFound
            | ErrorCode::ProviderDisabled
            | ErrorCode::PayloadTooLarge
            | ErrorCode::ForbiddenSecretRef
            | ErrorCode::InvalidDescriptor
            | ErrorCode::Unauthorized => Exit::InvalidInput,
            ErrorCode::BackendUnavailable | ErrorCode::Timeout | ErrorCode::PermissionDenied
                if error.provider().is_some() =>
            {
                Exit::Unreachable
            }
            _ => Exit::Runtime,
        }
    }
}

impl From<ProvisioningError> for CliError {
    fn from(error: ProvisioningError) -> Self {
        Self {
            code: error.code(),
            exit: Self::exit_for(&error),
            message: one_line(&error.to_string()),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error[{}]: {}", self.code, self.message)
    }
}

/// Joins the lines of a message, so an error is always one line.
pub(crate) fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use cluster_provisioning::api::ProviderId;

    #[test]
    fn codes_map_to_the_documented_exit_codes() {
        let unknown = ProvisioningError::UnknownField {
            provider: None,
            field: "prioirty".into(),
        }
        .at_line("providers.jsonl", 3);
        let e = CliError::from(unknown);
        assert_eq!(e.exit(), Exit::InvalidInput);
        assert_eq!(
            e.to_string(),
            r#"error[invalid_config]: providers.jsonl:3: unknown field "prioirty""#
        );
        let unreachable = ProvisioningError::BackendUnavailable {
            provider: ProviderId::new("c").ok(),
            detail: "connection refused".into(),
        };
        assert_eq!(CliError::from(unreachable).exit(), Exit::Unreachable);
        let io = ProvisioningError::io("read", "/x", std::io::Error::other("disk"));
        assert_eq!(CliError::from(io).exit(), Exit::Runtime);
        assert_eq!(Exit::Unreachable.code(), 3);
    }

    #[test]
    fn messages_are_one_line() {
        assert_eq!(one_line("a\n  b\n\nc"), "a b c");
    }
}
