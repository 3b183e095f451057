//! [`ProviderStatus`]: one provider as the admin API shows it.

use std::time::Instant;

use provisioning_provider_api::{ProviderHealth, ProviderId};

use crate::ProviderCondition;

/// One provider as seen by the controller (CONTRACTS §4 `/providers`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ProviderStatus {
    /// The provider.
    pub id: ProviderId,
    /// Its priority (higher is preferred).
    pub priority: u32,
    /// Whether it is enabled.
    pub enabled: bool,
    /// What is known about it.
    pub condition: ProviderCondition,
    /// The published health, `None` while nothing is known.
    pub health: Option<ProviderHealth>,
    /// Whether it is the active provider.
    pub active: bool,
    /// Running but not active: a warm standby, or a higher-priority provider
    /// watched for fail-back.
    pub standby: bool,
    /// Whether it is pinned.
    pub pinned: bool,
    /// Whether its stream runs.
    pub running: bool,
    /// Consecutive retryable faults since the last snapshot or heartbeat.
    pub consecutive_errors: u32,
    /// When its last event of any kind arrived.
    pub last_event_at: Option<Instant>,
    /// When its last snapshot or heartbeat arrived.
    pub last_liveness_at: Option<Instant>,
    /// Since when it has been continuously healthy.
    pub healthy_since: Option<Instant>,
    /// Since when it has been degraded.
    pub degraded_since: Option<Instant>,
    /// The end of its backoff, while one is set and not yet over.
    pub backoff_until: Option<Instant>,
    /// The continuous healthy period a fail-back to it needs now (rule 4,
    /// doubled after flapping).
    pub fail_back_period: std::time::Duration,
    /// Whether its view is under suspicion now: flagged as a suspicious
    /// shrink and not yet standing for `shrink_confirm` (decision 5).
    pub suspicious: bool,
    /// Whether its stream ended permanently (reopened only when enabled
    /// again or re-added).
    pub permanently_terminated: bool,
}
