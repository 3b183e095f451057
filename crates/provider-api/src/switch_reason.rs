//! [`SwitchReason`]: why the active provider changed (CONTRACTS §3
//! `provider_changed.reason`). Shared by the failover controller, which
//! decides, and the watch hub, which publishes.

use core::fmt;

/// Why the active provider changed.
#[doc(alias = "ProviderFailoverReason")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum SwitchReason {
    /// The active provider was silent past the no-response timeout.
    Timeout,
    /// The active provider became unreachable through faults, or stayed
    /// degraded for a whole cooldown while a healthy alternative existed.
    HealthDegraded,
    /// The active provider's stream ended.
    Terminated,
    /// An operator pinned another provider.
    ManualOverride,
    /// A higher-priority provider was healthy for a whole cooldown (fail-back).
    PriorityRestored,
    /// The active provider was removed or disabled.
    Removed,
    /// The first provider to deliver a snapshot after all were down.
    Recovered,
}

impl SwitchReason {
    /// The contract string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::HealthDegraded => "health_degraded",
            Self::Terminated => "terminated",
            Self::ManualOverride => "manual_override",
            Self::PriorityRestored => "priority_restored",
            Self::Removed => "removed",
            Self::Recovered => "recovered",
        }
    }

    /// Every reason, in contract order.
    pub const ALL: [Self; 7] = [
        Self::Timeout,
        Self::HealthDegraded,
        Self::Terminated,
        Self::ManualOverride,
        Self::PriorityRestored,
        Self::Removed,
        Self::Recovered,
    ];
}

impl fmt::Display for SwitchReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
