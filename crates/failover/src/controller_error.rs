//! [`ControllerError`]: a request the controller cannot carry out.

use provisioning_provider_api::ProviderId;

/// Why the controller refused a request (membership change, pin).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ControllerError {
    /// No provider has this id.
    #[error("no provider {0:?}")]
    UnknownProvider(ProviderId),
    /// A provider with this id exists already.
    #[error("provider {0:?} exists already")]
    DuplicateProvider(ProviderId),
    /// Another provider has this priority (priorities are unique).
    #[error("priority {priority} of {id:?} is already held by {existing:?}")]
    DuplicatePriority {
        /// The provider being added.
        id: ProviderId,
        /// The priority.
        priority: u32,
        /// The provider holding it.
        existing: ProviderId,
    },
    /// The provider is disabled, so it cannot be pinned.
    #[error("provider {0:?} is disabled")]
    Disabled(ProviderId),
}

impl ControllerError {
    /// The stable error code (ARCHITECTURE "Error kinds").
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownProvider(_) => "not_found",
            Self::DuplicateProvider(_) => "duplicate_name",
            Self::DuplicatePriority { .. } => "duplicate_priority",
            Self::Disabled(_) => "provider_disabled",
        }
    }

    /// Whether retrying the same request can succeed: never, it needs a
    /// different request or another membership first.
    pub fn is_retryable(&self) -> bool {
        false
    }
}
