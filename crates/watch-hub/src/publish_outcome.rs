//! [`PublishOutcome`]: what a hub call that may publish a snapshot did.

use std::time::Instant;

/// What a call that may publish a snapshot did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublishOutcome {
    /// A snapshot line (and its diff) was published with this `seq_no`.
    Published {
        /// The snapshot line's `seq_no`.
        seq_no: u64,
    },
    /// Same content as the published (or held) snapshot: nothing published.
    Unchanged,
    /// A suspicious shrink is held back until `until` (decision 5).
    HeldShrink {
        /// When it is published if it still stands ([`ProviderWatchHub::tick`](crate::ProviderWatchHub::tick)).
        until: Instant,
    },
    /// The snapshot did not come from the active provider: not published.
    NotActive,
}
