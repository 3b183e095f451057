//! [`ProviderView`]: one provider as the operator interfaces show it.

use std::time::Duration;

use provisioning_provider_api::{ProviderDescriptor, ProviderHealth};

/// A registered provider with its live state (CONTRACTS §4 `/providers`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ProviderView {
    /// The descriptor as stored (secrets as references).
    pub descriptor: ProviderDescriptor,
    /// Published health; `None` while nothing is known yet.
    pub health: Option<ProviderHealth>,
    /// The active provider.
    pub active: bool,
    /// Running but not active (warm standby or watched for fail-back).
    pub standby: bool,
    /// Pinned by an operator.
    pub pinned: bool,
    /// Consecutive retryable faults since the last snapshot or heartbeat.
    pub consecutive_errors: u32,
    /// Time since its last event, if any arrived.
    pub last_event_age: Option<Duration>,
    /// Time left in its backoff, if any.
    pub backoff_remaining: Option<Duration>,
    /// Members in its last snapshot, if its stream runs.
    pub members: Option<usize>,
}
