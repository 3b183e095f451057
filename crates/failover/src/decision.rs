//! [`Decision`]: what the controller tells its driver to do or publish.

use std::time::Instant;

use provisioning_provider_api::{ProviderHealth, ProviderId, SwitchReason};

use crate::ProviderHandle;

/// One output of the [`FailoverController`](crate::FailoverController),
/// drained in order with [`drain`](crate::FailoverController::drain).
///
/// Decisions come in the order they were made: first what the time passing
/// before an input decided, then what the input decided. Within each step:
/// health changes and backoffs, streams closed because they hung, the
/// activation, switch or all-down, then the streams opened and closed to
/// match the new running set. Carrying them out in order is always correct.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Decision {
    /// Open a stream for `handle.id()` with
    /// [`FailoverPolicy::stream_options`](crate::FailoverPolicy::stream_options)
    /// and tag its events with `handle`.
    OpenStream {
        /// The new stream's handle.
        handle: ProviderHandle,
    },
    /// Drop the stream `handle` (not needed any more, the provider was
    /// disabled or removed, or it hung past the no-response timeout).
    CloseStream {
        /// The stream to drop.
        handle: ProviderHandle,
    },
    /// The first activation of the run: publish `to`'s snapshot, with no
    /// `provider_changed` (CONTRACTS §3). Start-up is not a switch.
    Activate {
        /// The provider that is now active.
        to: ProviderId,
    },
    /// The active provider changed: publish `provider_changed` with
    /// `reason`, then `to`'s snapshot and its diff.
    Switch {
        /// The previously active provider (after all-down: the last active
        /// one).
        from: ProviderId,
        /// The provider that is now active.
        to: ProviderId,
        /// Why (CONTRACTS §3).
        reason: SwitchReason,
    },
    /// A provider's published health changed (`provider_health` line).
    HealthChanged {
        /// The provider.
        id: ProviderId,
        /// Its new health.
        health: ProviderHealth,
        /// The error code (`backend_unavailable`, `timeout`,
        /// `permission_denied`, `invalid_config`, `provider_unhealthy`);
        /// `None` when it turned healthy.
        code: Option<&'static str>,
        /// Human-readable detail.
        detail: String,
    },
    /// A provider is in backoff until `until`: not eligible, and a stopped
    /// stream is reopened then. Any snapshot or heartbeat ends it earlier.
    BackoffUntil {
        /// The provider.
        id: ProviderId,
        /// When the backoff ends.
        until: Instant,
    },
    /// No provider is eligible: publish `provisioning_unavailable` and keep
    /// the last snapshot, marked unreachable.
    AllDown {
        /// Since when.
        since: Instant,
        /// The provider that was active last, if any ever was.
        last_active: Option<ProviderId>,
    },
    /// The all-down state ended; an [`Activate`](Self::Activate) or a
    /// [`Switch`](Self::Switch) with reason `recovered` follows.
    AllDownEnded {
        /// When the all-down state began.
        since: Instant,
    },
}
