//! [`StallCheck`]: tells a client that stopped reading an event stream from
//! one that reads slowly.

use std::time::{Duration, Instant};

/// Watches one subscription's overflow count and the time its consumer last
/// took a line. The consumer has stalled when its queue overflowed and it
/// took nothing for `patience` since the overflow was seen.
#[derive(Debug)]
pub(crate) struct StallCheck {
    patience: Duration,
    overflows: u64,
    full_since: Option<Instant>,
}

impl StallCheck {
    /// A check that waits `patience` after an overflow.
    pub(crate) fn new(patience: Duration) -> Self {
        Self {
            patience,
            overflows: 0,
            full_since: None,
        }
    }

    /// Whether the consumer stalled, given the subscription's overflow
    /// count and its last take, observed at `now`.
    pub(crate) fn stalled(&mut self, overflows: u64, last_taken: Instant, now: Instant) -> bool {
        if overflows > self.overflows {
            self.overflows = overflows;
            self.full_since.get_or_insert(now);
        }
        let Some(since) = self.full_since else {
            return false;
        };
        if last_taken >= since {
            // It reads: the hub's `resync` reaches it.
            self.full_since = None;
            return false;
        }
        now.duration_since(since) >= self.patience
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATIENCE: Duration = Duration::from_secs(1);

    #[test]
    fn a_consumer_that_takes_nothing_after_an_overflow_has_stalled() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut check = StallCheck::new(PATIENCE);
        assert!(!check.stalled(0, t0, at(250)), "no overflow");
        assert!(!check.stalled(0, t0, at(5_000)), "idle but nothing lost");
        assert!(!check.stalled(1, t0, at(5_250)), "overflow seen now");
        assert!(!check.stalled(1, t0, at(6_000)));
        assert!(check.stalled(1, t0, at(6_250)), "nothing taken for 1 s");
    }

    #[test]
    fn a_slow_reader_is_not_stalled() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut check = StallCheck::new(PATIENCE);
        assert!(!check.stalled(1, t0, at(250)));
        // It took a line after the overflow (its resync): reading.
        assert!(!check.stalled(1, at(400), at(1_500)));
        assert!(
            !check.stalled(1, at(400), at(60_000)),
            "idle after catching up"
        );
        // A later overflow starts a new wait.
        assert!(!check.stalled(2, at(400), at(60_250)));
        assert!(!check.stalled(2, at(60_300), at(61_500)));
        assert!(!check.stalled(3, at(60_300), at(61_750)));
        assert!(check.stalled(3, at(60_300), at(62_750)));
    }
}
