//! [`ResyncPacer`]: when a stream may list again after its watch ended in a
//! resync (etcd's watch cancelled as compacted, say).
//!
//! A resync is not an error, and one relist at once is its cure. But a
//! server that cancels every new watch as compacted (a compaction loop that
//! runs ahead of a slow link, a misbehaving proxy) would get a list and a
//! watch per round trip, for ever. So relists after resyncs are paced, with
//! the Consul backend's query-loop idea:
//! - **backoff**: consecutive resyncs with nothing delivered in between
//!   wait 0, 100 ms, 200 ms, … up to a cap kept below the stream's liveness
//!   tick (every relist yields a snapshot or a heartbeat, so a provider that
//!   can list but not watch stays alive, its view at most one cap old);
//! - **token bucket**: at most [`BURST`] relists at once, then one per
//!   [`REFILL`], which also holds when each watch delivers something before
//!   it is cancelled (and so resets the backoff).

use std::time::Duration;

use tokio::time::Instant;

/// Relists a burst of resyncs may take at once.
const BURST: u32 = 3;
/// One relist token comes back per this long: at most 2 relists (a list and
/// a watch each) per second in the long run.
const REFILL: Duration = Duration::from_millis(500);
/// The backoff of the second consecutive resync; it doubles from there.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest backoff, whatever the liveness tick allows.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Paces relists after resyncs (module docs).
#[derive(Debug)]
pub(crate) struct ResyncPacer {
    /// Consecutive resyncs without a delivery in between.
    streak: u32,
    cap: Duration,
    tokens: u32,
    /// When the bucket last gained a token (or was full).
    refilled: Instant,
}

impl ResyncPacer {
    /// A pacer whose backoff never exceeds `cap` (nor [`MAX_BACKOFF`]).
    pub(crate) fn new(cap: Duration, now: Instant) -> Self {
        Self {
            streak: 0,
            cap: cap.min(MAX_BACKOFF),
            tokens: BURST,
            refilled: now,
        }
    }

    /// The watch ended in a resync at `now`: when the relist may start.
    /// Takes that relist's token.
    pub(crate) fn on_resync(&mut self, now: Instant) -> Instant {
        self.streak = self.streak.saturating_add(1);
        let backoff = match self.streak {
            0 | 1 => Duration::ZERO,
            n => FIRST_BACKOFF
                .saturating_mul(1 << (n - 2).min(16))
                .min(self.cap),
        };
        let mut at = now + backoff;
        self.top_up(at);
        if self.tokens == 0 {
            at = self.refilled + REFILL;
            self.top_up(at);
        }
        self.tokens = self.tokens.saturating_sub(1);
        at
    }

    /// The watch delivered (changes or a progress notification): the next
    /// resync relists at once again, if the bucket allows.
    pub(crate) fn on_delivery(&mut self) {
        self.streak = 0;
    }

    fn top_up(&mut self, now: Instant) {
        while self.tokens < BURST && now >= self.refilled + REFILL {
            self.tokens += 1;
            self.refilled += REFILL;
        }
        if self.tokens == BURST {
            self.refilled = self.refilled.max(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Relist times of resyncs that each come `gap` after the previous
    /// relist started, as a watch cancelled at once does.
    fn relists(pacer: &mut ResyncPacer, start: Instant, gap: Duration, n: usize) -> Vec<u64> {
        let mut now = start;
        (0..n)
            .map(|_| {
                let at = pacer.on_resync(now);
                now = at + gap;
                (at - start).as_millis() as u64
            })
            .collect()
    }

    #[test]
    fn consecutive_resyncs_back_off_up_to_the_cap() {
        let start = Instant::now();
        let mut pacer = ResyncPacer::new(ms(1500), start);
        let at = relists(&mut pacer, start, Duration::ZERO, 8);
        // At once, then 0.1, 0.2, 0.4, 0.8 s later, then the cap.
        assert_eq!(at, [0, 100, 300, 700, 1500, 3000, 4500, 6000]);
        // A delivery ends the streak: the next resync relists at once.
        pacer.on_delivery();
        let now = start + ms(7000);
        assert_eq!(pacer.on_resync(now), now);
    }

    #[test]
    fn the_bucket_holds_when_every_watch_delivers_first() {
        let start = Instant::now();
        let mut pacer = ResyncPacer::new(ms(1500), start);
        let mut now = start;
        let mut count = 0;
        while now < start + Duration::from_secs(10) {
            pacer.on_delivery();
            now = pacer.on_resync(now) + ms(1);
            count += 1;
        }
        // Burst of 3, then one per 500 ms for 10 s.
        assert!((20..=23).contains(&count), "{count} relists in 10 s");
    }

    #[test]
    fn the_cap_never_exceeds_max_backoff() {
        let start = Instant::now();
        let mut pacer = ResyncPacer::new(Duration::from_secs(60), start);
        let at = relists(&mut pacer, start, Duration::ZERO, 12);
        let gaps: Vec<u64> = at.windows(2).map(|w| w[1] - w[0]).collect();
        assert_eq!(gaps.iter().max(), Some(&2000), "{gaps:?}");
    }
}
