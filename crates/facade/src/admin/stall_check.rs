//! [`StallCheck`]: tells a client that stopped reading an event stream from
//! one that reads slowly.

use std::time::{Duration, Instant};

/// Watches one subscription's overflow count, its queue and the time its
/// consumer last took a line, on a periodic check. The consumer has
/// stalled when its queue overflowed and then lines waited in it for
/// `patience` with nothing taken.
///
/// The checks only see a moment: an overflow is noticed up to a period
/// after it happened, and a consumer that read everything in between must
/// not count as stalled. So waiting is measured from a check that saw the
/// queue non-empty, never from the overflow: a line seen waiting then, and
/// nothing taken since, is still waiting.
#[derive(Debug)]
pub(crate) struct StallCheck {
    patience: Duration,
    overflows: u64,
    /// An overflow the consumer has not caught up on.
    behind: bool,
    /// The check since which lines have waited with nothing taken.
    waiting_since: Option<Instant>,
}

impl StallCheck {
    /// A check that waits `patience`.
    pub(crate) fn new(patience: Duration) -> Self {
        Self {
            patience,
            overflows: 0,
            behind: false,
            waiting_since: None,
        }
    }

    /// Whether the consumer stalled, given the subscription's overflow
    /// count, the publications in its queue and its last take, observed at
    /// `now`.
    pub(crate) fn stalled(
        &mut self,
        overflows: u64,
        queued: usize,
        last_taken: Instant,
        now: Instant,
    ) -> bool {
        let overflowed = overflows > self.overflows;
        self.overflows = self.overflows.max(overflows);
        if queued == 0 {
            // Caught up (or quiet): nothing waits for it.
            self.behind = false;
            self.waiting_since = None;
            return false;
        }
        let took = self.waiting_since.is_none_or(|since| last_taken >= since);
        if took {
            // It reads: the hub's `resync` reaches it. Only an overflow
            // noticed now may have come after its last take.
            self.behind = overflowed;
            self.waiting_since = Some(now);
            return false;
        }
        self.behind |= overflowed;
        self.behind
            && self
                .waiting_since
                .is_some_and(|since| now.duration_since(since) >= self.patience)
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
        assert!(!check.stalled(0, 0, t0, at(250)), "no overflow");
        assert!(
            !check.stalled(0, 3, t0, at(5_000)),
            "waiting but nothing lost"
        );
        assert!(!check.stalled(1, 1, t0, at(5_250)), "overflow seen now");
        assert!(check.stalled(1, 1, t0, at(6_000)), "waited since 5 s");
        let mut check = StallCheck::new(PATIENCE);
        assert!(!check.stalled(1, 1, t0, at(5_250)), "overflow seen now");
        assert!(!check.stalled(1, 1, t0, at(6_000)));
        assert!(check.stalled(1, 1, t0, at(6_250)), "nothing taken for 1 s");
    }

    #[test]
    fn a_slow_reader_is_not_stalled() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut check = StallCheck::new(PATIENCE);
        assert!(!check.stalled(1, 5, t0, at(250)));
        // It took a line after the overflow (its resync): reading.
        assert!(!check.stalled(1, 5, at(400), at(1_500)));
        assert!(!check.stalled(1, 5, at(1_600), at(2_750)));
        assert!(!check.stalled(1, 0, at(2_800), at(60_000)), "caught up");
        // A later overflow starts a new wait.
        assert!(!check.stalled(2, 1, at(2_800), at(60_250)));
        assert!(!check.stalled(2, 1, at(60_300), at(61_500)));
        assert!(!check.stalled(3, 1, at(60_300), at(61_750)));
        assert!(check.stalled(3, 1, at(60_300), at(62_750)));
    }

    #[test]
    fn a_consumer_that_read_the_burst_before_the_check_is_not_stalled() {
        // The burst overflowed the queue at 50 ms; the consumer took the
        // resync and the snapshot by 100 ms; the check notices the
        // overflow at 250 ms; then the hub is quiet.
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut check = StallCheck::new(PATIENCE);
        assert!(!check.stalled(0, 0, t0, at(0)));
        let mut ms = 250;
        while ms <= 10_000 {
            assert!(!check.stalled(1, 0, at(100), at(ms)), "at {ms} ms");
            ms += 250;
        }
        // A line published later is taken at once.
        assert!(!check.stalled(1, 1, at(100), at(10_250)));
        assert!(!check.stalled(1, 0, at(10_260), at(10_500)));
        assert!(!check.stalled(1, 0, at(10_260), at(12_000)));
    }
}
