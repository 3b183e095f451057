//! [`ProviderHealth`].

use core::fmt;

/// The health of a provider as published (CONTRACTS §3 `health`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum ProviderHealth {
    /// Delivering snapshots or heartbeats in time.
    #[default]
    Healthy,
    /// Usable but stale (snapshot delay above its threshold) or faults are
    /// counting up.
    Degraded,
    /// Not usable: too many consecutive faults, a permanent fault, or silent
    /// past the no-response timeout.
    Unreachable,
}

impl ProviderHealth {
    /// The contract string (`healthy`, `degraded`, `unreachable`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Degraded => "degraded",
            Self::Unreachable => "unreachable",
        }
    }

    /// The value of the `provisioning_provider_health` gauge (CONTRACTS §5).
    pub fn gauge_value(self) -> f64 {
        match self {
            Self::Healthy => 0.0,
            Self::Degraded => 1.0,
            Self::Unreachable => 2.0,
        }
    }
}

impl fmt::Display for ProviderHealth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
