//! [`ProviderCondition`]: what the controller knows about one provider.

use provisioning_provider_api::ProviderHealth;

/// What the controller knows about one provider: its published
/// [`ProviderHealth`] plus the states that have none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProviderCondition {
    /// No stream runs (disabled, or not needed: a lower-priority provider
    /// beyond the warm standbys) and nothing bad is known.
    Stopped,
    /// The stream is open and has not delivered its first snapshot yet.
    Starting,
    /// Delivering snapshots or heartbeats in time.
    Healthy,
    /// Usable but stale, or faults are counting up.
    Degraded,
    /// Too many consecutive faults, a permanent fault, or silent past the
    /// no-response timeout.
    Unreachable,
    /// The stream ended; it is reopened after the backoff unless the end was
    /// permanent.
    Terminated,
}

impl ProviderCondition {
    /// The published health: `None` while nothing is known (stopped or
    /// starting); a terminated provider is `Unreachable`.
    pub fn health(self) -> Option<ProviderHealth> {
        match self {
            Self::Stopped | Self::Starting => None,
            Self::Healthy => Some(ProviderHealth::Healthy),
            Self::Degraded => Some(ProviderHealth::Degraded),
            Self::Unreachable | Self::Terminated => Some(ProviderHealth::Unreachable),
        }
    }

    /// Dead: `Unreachable` or `Terminated` (rule 3 switches away at once).
    pub fn is_dead(self) -> bool {
        matches!(self, Self::Unreachable | Self::Terminated)
    }
}
