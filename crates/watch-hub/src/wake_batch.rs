//! [`WakeBatch`]: publish several lines, wake the consumers once.

use std::sync::Arc;

use crate::fanout::Fanout;

/// While a `WakeBatch` is alive, the hub queues its publications without
/// waking any consumer; dropping the last open batch wakes every consumer
/// that got something, once. Taken from
/// [`ProviderWatchHub::batch_wakes`](crate::ProviderWatchHub::batch_wakes)
/// around work that publishes several lines in a row — the service does it
/// for each provider event, whose health line, `provider_changed` and new
/// snapshot then reach the bridges in one wake-up instead of three, and
/// without the first wake-up competing with the rest of the work for the
/// CPU.
///
/// Hold it only for a bounded piece of work: nothing reaches a consumer
/// while it is alive.
#[must_use = "dropping the batch at once releases it"]
pub struct WakeBatch {
    fanout: Arc<Fanout>,
}

impl WakeBatch {
    pub(crate) fn open(fanout: Arc<Fanout>) -> Self {
        fanout.hold_wakes();
        Self { fanout }
    }
}

impl Drop for WakeBatch {
    fn drop(&mut self) {
        self.fanout.release_wakes();
    }
}

impl std::fmt::Debug for WakeBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WakeBatch").finish_non_exhaustive()
    }
}
