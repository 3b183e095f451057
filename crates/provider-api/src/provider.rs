//! The [`ClusterProvider`] trait and what opening a stream takes.

use alloc::boxed::Box;
use core::future::Future;
use core::pin::Pin;
use core::time::Duration;

use futures_core::Stream;

use crate::{ProviderDescriptor, ProviderEvent, ProviderFault, ProviderId, ProviderSnapshot};

/// The event stream of one provider. Errors travel inside it as
/// [`ProviderEvent::Fault`]; it recovers by itself on the next poll and ends
/// only with [`ProviderEvent::Terminated`]. Dropping it stops the watch.
pub type ProviderStream = Pin<Box<dyn Stream<Item = ProviderEvent> + Send + 'static>>;

/// One liveness probe in flight ([`ClusterProvider::liveness_probe`]):
/// `Ok` when the backend answered, else the fault to report.
pub type LivenessCheck = Pin<Box<dyn Future<Output = Result<(), ProviderFault>> + Send + 'static>>;

/// What [`ClusterProvider::shutdown`] returns: completes once the provider
/// released what it holds at its backend.
pub type ProviderShutdown<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// What the service tells a provider when it opens a stream.
///
/// The retry numbers implement ARCHITECTURE "Failover rules" 2: the first
/// `max_errors − 1` retries after a fault come at once and after 100 ms, then
/// reconnects are spaced by the policy's backoff.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct StreamOptions {
    /// Yield a snapshot or heartbeat at least this often while healthy (a
    /// third of the no-response timeout).
    pub heartbeat_interval: Duration,
    /// Consecutive retryable faults that make a provider `Unreachable`.
    pub max_errors: u32,
    /// First backoff delay after the fast retries.
    pub backoff_initial: Duration,
    /// Backoff growth factor.
    pub backoff_factor: f64,
    /// Backoff cap.
    pub backoff_cap: Duration,
    /// Jitter fraction (±) applied to backoff delays, below 0.5.
    pub jitter: f64,
    /// How often the service probes the provider's backend for liveness
    /// ([`ClusterProvider::liveness_probe`]); zero turns probing off.
    pub liveness_interval: Duration,
    /// A probe answered later than this is a retryable fault.
    pub liveness_timeout: Duration,
    /// Seed of the stream's backoff jitter, so two runs with the same seed
    /// and the same faults retry at the same times. `None`: the stream picks
    /// a random one. The service derives it from its own seed and the
    /// provider's id ([`with_jitter_seed_for`](Self::with_jitter_seed_for)).
    pub jitter_seed: Option<u64>,
}

impl StreamOptions {
    /// Options with the seed's retry defaults (max 3 errors, backoff 2 s ×2
    /// capped at 30 s, ±20 % jitter) and liveness probing off (the failover
    /// policy turns it on, see [`with_liveness`](Self::with_liveness)).
    pub fn new(heartbeat_interval: Duration) -> Self {
        Self {
            heartbeat_interval,
            max_errors: 3,
            backoff_initial: Duration::from_secs(2),
            backoff_factor: 2.0,
            backoff_cap: Duration::from_secs(30),
            jitter: 0.2,
            liveness_interval: Duration::ZERO,
            liveness_timeout: Duration::from_secs(1),
            jitter_seed: None,
        }
    }

    /// Sets the jitter seed.
    pub fn with_jitter_seed(mut self, seed: u64) -> Self {
        self.jitter_seed = Some(seed);
        self
    }

    /// Sets the jitter seed to `seed` mixed with `provider`'s id, so each
    /// provider of one service draws its own reproducible sequence.
    pub fn with_jitter_seed_for(self, seed: u64, provider: &ProviderId) -> Self {
        let mixed = xxhash_rust::xxh3::xxh3_64_with_seed(provider.as_str().as_bytes(), seed);
        self.with_jitter_seed(mixed)
    }

    /// Sets the liveness probe period (zero: off) and timeout.
    pub fn with_liveness(mut self, interval: Duration, timeout: Duration) -> Self {
        self.liveness_interval = interval;
        self.liveness_timeout = timeout;
        self
    }

    /// Sets `max_errors`.
    pub fn with_max_errors(mut self, max_errors: u32) -> Self {
        self.max_errors = max_errors.max(1);
        self
    }

    /// Sets the backoff schedule.
    pub fn with_backoff(
        mut self,
        initial: Duration,
        factor: f64,
        cap: Duration,
        jitter: f64,
    ) -> Self {
        self.backoff_initial = initial;
        self.backoff_factor = factor;
        self.backoff_cap = cap;
        self.jitter = jitter;
        self
    }

    /// The delay before retry number `attempt` (1 = the first retry after a
    /// fault), without jitter: the fast retries come at once and after
    /// 100 ms; from retry `max_errors` on, `backoff_initial × factor^k`
    /// capped at `backoff_cap`.
    pub fn retry_delay(&self, attempt: u32) -> Duration {
        let fast = self.max_errors.saturating_sub(1);
        if attempt <= fast {
            return if attempt <= 1 {
                Duration::ZERO
            } else {
                Duration::from_millis(100)
            };
        }
        let k = attempt - fast - 1;
        let mut delay = self.backoff_initial.as_secs_f64();
        let cap = self.backoff_cap.as_secs_f64();
        for _ in 0..k.min(64) {
            delay *= self.backoff_factor;
            if delay >= cap {
                break;
            }
        }
        Duration::from_secs_f64(delay.min(cap).max(0.0))
    }

    /// [`retry_delay`](Self::retry_delay) with jitter applied, given a
    /// uniform random number in `[0, 1)` from the caller's generator.
    pub fn retry_delay_jittered(&self, attempt: u32, unit_random: f64) -> Duration {
        let base = self.retry_delay(attempt);
        if base.is_zero() || base <= Duration::from_millis(100) {
            return base;
        }
        let factor = 1.0 + self.jitter * (2.0 * unit_random.clamp(0.0, 1.0) - 1.0);
        Duration::from_secs_f64(base.as_secs_f64() * factor.max(0.0))
    }
}

/// A source of cluster membership: a static list, Consul, Kubernetes, etcd,
/// or a custom backend.
///
/// Object-safe; the service holds providers as `Arc<dyn ClusterProvider>`.
pub trait ClusterProvider: Send + Sync {
    /// The descriptor this provider was built from.
    fn descriptor(&self) -> &ProviderDescriptor;

    /// The last snapshot this provider has seen, if any.
    fn initial_snapshot(&self) -> Option<ProviderSnapshot>;

    /// Opens a watch. The first item is a snapshot, or a fault if none could
    /// be obtained; then snapshots on change and heartbeats at least every
    /// `options.heartbeat_interval` while healthy.
    fn stream(&self, options: StreamOptions) -> ProviderStream;

    /// Starts one liveness probe of the backend (CONTRACTS §7
    /// `liveness_*`): a cheap request over the same transport, TLS and
    /// credentials as the watch, such as Consul's `GET /v1/status/leader`.
    /// The service runs one every `liveness_interval` beside each open
    /// stream, bounds it by `liveness_timeout`, and reports a late or
    /// failed answer as a retryable fault of that stream. A successful
    /// probe is not a heartbeat: only the stream itself proves the watch
    /// alive. `None`: nothing to probe (an in-memory provider, or a
    /// provider with no connection open at the moment). The default.
    fn liveness_probe(&self) -> Option<LivenessCheck> {
        None
    }

    /// Releases what the provider holds at its backend — a
    /// self-registration, a lease — when the service stops or removes it;
    /// open streams end. Called at most once; the provider is not used
    /// afterwards. The default has nothing to release.
    fn shutdown(&self) -> ProviderShutdown<'_> {
        Box::pin(core::future::ready(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_schedule_follows_rule_2() {
        let o = StreamOptions::new(Duration::from_secs(5));
        assert_eq!(o.retry_delay(1), Duration::ZERO);
        assert_eq!(o.retry_delay(2), Duration::from_millis(100));
        assert_eq!(o.retry_delay(3), Duration::from_secs(2));
        assert_eq!(o.retry_delay(4), Duration::from_secs(4));
        assert_eq!(o.retry_delay(7), Duration::from_secs(30));
        assert_eq!(o.retry_delay(1000), Duration::from_secs(30));
        let j = o.retry_delay_jittered(3, 0.0);
        assert_eq!(j, Duration::from_secs_f64(1.6));
    }

    #[test]
    fn jitter_seed_mixes_the_provider_id() {
        let o = StreamOptions::new(Duration::from_secs(5));
        assert_eq!(o.jitter_seed, None);
        let a = ProviderId::new("a").unwrap();
        let b = ProviderId::new("b").unwrap();
        let seed = |o: StreamOptions| o.jitter_seed.unwrap();
        assert_eq!(
            seed(o.with_jitter_seed_for(7, &a)),
            seed(o.with_jitter_seed_for(7, &a))
        );
        assert_ne!(
            seed(o.with_jitter_seed_for(7, &a)),
            seed(o.with_jitter_seed_for(7, &b))
        );
        assert_ne!(
            seed(o.with_jitter_seed_for(7, &a)),
            seed(o.with_jitter_seed_for(8, &a))
        );
    }
}
