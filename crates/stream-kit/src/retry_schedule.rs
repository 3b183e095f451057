//! [`RetrySchedule`]: when a stream retries after a fault.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use provisioning_provider_api::{JitterRng, ProviderFault, StreamOptions};

/// Counts consecutive faults and spaces the retries as ARCHITECTURE
/// "Failover rules" 2 says: the first `max_errors − 1` retries at once and
/// after 100 ms, then the policy's backoff with jitter. A permanent fault
/// skips the fast retries: only an operator (or a rotated credential, re-read
/// on the next attempt) can cure it.
///
/// The jitter comes from a [`JitterRng`] seeded by
/// [`StreamOptions::jitter_seed`] (a random seed when it is `None`), so the
/// same seed and the same faults give the same delays.
#[derive(Debug, Clone)]
pub struct RetrySchedule {
    options: StreamOptions,
    rng: JitterRng,
    failures: u32,
}

impl RetrySchedule {
    /// A schedule with no fault counted yet.
    pub fn new(options: &StreamOptions) -> Self {
        let seed = options.jitter_seed.unwrap_or_else(random_seed);
        Self {
            options: *options,
            rng: JitterRng::new(seed),
            failures: 0,
        }
    }

    /// Counts `fault` and returns how long to wait before the next attempt.
    pub fn on_fault(&mut self, fault: &ProviderFault) -> Duration {
        self.on_failure(fault.permanent)
    }

    /// Counts a failure that is no [`ProviderFault`] (yet) and returns how
    /// long to wait before the next attempt.
    pub fn on_failure(&mut self, permanent: bool) -> Duration {
        self.failures = self.failures.saturating_add(1);
        if permanent {
            self.failures = self.failures.max(self.options.max_errors);
        }
        let delay = self
            .options
            .retry_delay_jittered(self.failures, self.rng.next_unit());
        tracing::debug!(
            attempt = self.failures,
            delay_ms = delay.as_millis() as u64,
            permanent,
            "retry scheduled"
        );
        delay
    }

    /// An attempt succeeded: the next fault starts the schedule again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Consecutive faults counted since the last [`reset`](Self::reset).
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// A fresh schedule with the same options, seeded from this one's
    /// generator: for a second, independent retry loop of the same stream
    /// (one per connection, say) that stays reproducible.
    pub fn fork(&mut self) -> Self {
        Self {
            options: self.options,
            rng: JitterRng::new(self.rng.next_u64()),
            failures: 0,
        }
    }
}

/// A seed for a stream opened without one: differs per call and per process.
fn random_seed() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(0x5eed);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use provisioning_provider_api::FaultKind;

    fn retryable() -> ProviderFault {
        ProviderFault::retryable(FaultKind::BackendUnavailable, "down")
    }

    fn options(seed: Option<u64>) -> StreamOptions {
        let o = StreamOptions::new(Duration::from_secs(5));
        match seed {
            Some(seed) => o.with_jitter_seed(seed),
            None => o,
        }
    }

    fn delays(schedule: &mut RetrySchedule, n: usize) -> Vec<Duration> {
        (0..n).map(|_| schedule.on_fault(&retryable())).collect()
    }

    #[test]
    fn fast_retries_then_a_growing_capped_backoff() {
        let mut s = RetrySchedule::new(&options(Some(1)));
        let d = delays(&mut s, 9);
        println!("delays {d:?}");
        // max_errors 3: two fast retries, never jittered.
        assert_eq!(d[0], Duration::ZERO);
        assert_eq!(d[1], Duration::from_millis(100));
        // Then 2 s × 2^k within ±20 %, capped at 30 s (+20 %).
        for (i, base) in [2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0].iter().enumerate() {
            let got = d[i + 2].as_secs_f64();
            assert!(
                (base * 0.8..=base * 1.2).contains(&got),
                "retry {}: {got} s, base {base} s",
                i + 3
            );
        }
        assert_eq!(s.failures(), 9);
        s.reset();
        assert_eq!(s.on_fault(&retryable()), Duration::ZERO);
    }

    #[test]
    fn a_permanent_fault_skips_the_fast_retries() {
        let mut s = RetrySchedule::new(&options(Some(1)));
        let permanent = ProviderFault::permanent(FaultKind::PermissionDenied, "403");
        let d = s.on_fault(&permanent);
        assert!(d >= Duration::from_millis(1600), "{d:?}");
        assert_eq!(s.failures(), 3);
    }

    #[test]
    fn same_seed_same_delays_other_seed_other_delays() {
        let a = delays(&mut RetrySchedule::new(&options(Some(42))), 8);
        let b = delays(&mut RetrySchedule::new(&options(Some(42))), 8);
        let c = delays(&mut RetrySchedule::new(&options(Some(43))), 8);
        println!("seed 42 {a:?}\nseed 43 {c:?}");
        assert_eq!(a, b);
        assert_ne!(a, c);
        // Without a seed each stream draws its own.
        let x = delays(&mut RetrySchedule::new(&options(None)), 8);
        let y = delays(&mut RetrySchedule::new(&options(None)), 8);
        assert_ne!(x, y);
    }

    #[test]
    fn a_fork_is_reproducible_and_independent() {
        let mut parent = RetrySchedule::new(&options(Some(5)));
        let mut twin = RetrySchedule::new(&options(Some(5)));
        let a = delays(&mut parent.fork(), 6);
        assert_eq!(a, delays(&mut twin.fork(), 6));
        assert_ne!(a, delays(&mut RetrySchedule::new(&options(Some(5))), 6));
    }
}
