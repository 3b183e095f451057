//! [`LivenessProber`]: the liveness probes of CONTRACTS §7 (`liveness_*`)
//! for one open stream, run inside that stream's task.
//!
//! A backend that accepts connections and then answers nothing leaves a
//! watch silent, and silence is only judged by the no-response timeout
//! (15 s by default). The probes judge it sooner: each one is a cheap
//! request the provider makes over its watch's transport
//! ([`ClusterProvider::liveness_probe`]); a late or failed answer is a
//! retryable fault of the stream, so `max_errors` of them in a row make the
//! provider `unreachable` through the same count as the watch's own faults
//! (ARCHITECTURE "Failover rules" 1). A probe that succeeds is reported to
//! nobody but the metrics: it is not a heartbeat, so a live server whose
//! watch stalls is still caught by the no-response timeout.
//!
//! Living in the stream's task keeps one mechanism for every backend and
//! keeps every wait off the driver task; the fault travels to the driver on
//! the stream's own channel, tagged with the stream's handle.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use provisioning_provider_api::{
    ClusterProvider, FaultKind, LivenessCheck, ProviderFault, ProviderId, StreamOptions,
    format_duration,
};
use provisioning_watch_hub::metrics::ProvisioningMetrics;
use tokio::time::{Instant, Timeout, sleep_until, timeout};

/// A probe in flight: when it started, and its answer bounded by the
/// liveness timeout.
struct InFlight {
    started: Instant,
    check: Pin<Box<Timeout<LivenessCheck>>>,
}

/// Probes one provider on the schedule of its stream's options.
pub(crate) struct LivenessProber {
    provider: Arc<dyn ClusterProvider>,
    id: ProviderId,
    options: StreamOptions,
    metrics: ProvisioningMetrics,
    next_at: Instant,
    in_flight: Option<InFlight>,
    /// Probes failed in a row.
    failures: u32,
}

impl LivenessProber {
    /// A prober whose first probe comes one `liveness_interval` after now.
    pub(crate) fn new(
        provider: Arc<dyn ClusterProvider>,
        options: StreamOptions,
        metrics: ProvisioningMetrics,
    ) -> Self {
        let id = provider.descriptor().id.clone();
        Self {
            provider,
            id,
            options,
            metrics,
            next_at: Instant::now() + options.liveness_interval,
            in_flight: None,
            failures: 0,
        }
    }

    /// Probes until one fails and returns its fault; never returns when
    /// probing is off. Cancel-safe: a probe in flight is kept for the next
    /// call, so events of the stream arriving meanwhile do not restart it.
    pub(crate) async fn next_fault(&mut self) -> ProviderFault {
        let interval = self.options.liveness_interval;
        if interval.is_zero() {
            return std::future::pending().await;
        }
        loop {
            if self.in_flight.is_none() {
                sleep_until(self.next_at).await;
                let started = Instant::now();
                match self.provider.liveness_probe() {
                    Some(check) => {
                        self.in_flight = Some(InFlight {
                            started,
                            check: Box::pin(timeout(self.options.liveness_timeout, check)),
                        });
                    }
                    // Nothing to probe now (no connection open): the
                    // stream reports its own connection faults.
                    None => {
                        self.next_at = started + interval;
                        continue;
                    }
                }
            }
            let Some(in_flight) = self.in_flight.as_mut() else {
                continue;
            };
            let answer = in_flight.check.as_mut().await;
            let started = in_flight.started;
            self.in_flight = None;
            let now = Instant::now();
            self.metrics
                .record_liveness_probe(&self.id, now.saturating_duration_since(started));
            let fault = match answer {
                Ok(Ok(())) => {
                    self.failures = 0;
                    self.next_at = (started + interval).max(now);
                    continue;
                }
                Ok(Err(fault)) => ProviderFault::retryable(
                    fault.kind,
                    format!("liveness probe failed: {}", fault.detail),
                ),
                Err(_) => ProviderFault::retryable(
                    FaultKind::Timeout,
                    format!(
                        "liveness probe unanswered after {}",
                        format_duration(self.options.liveness_timeout)
                    ),
                ),
            };
            self.metrics.record_liveness_failure(&self.id);
            self.failures = self.failures.saturating_add(1);
            self.next_at = now + self.delay_after_failure();
            return fault;
        }
    }

    /// The stream proved the backend alive (a snapshot or heartbeat): as
    /// the controller's error count, the probes' count starts again, and a
    /// probe spaced by the backoff of an earlier streak comes within one
    /// interval again.
    pub(crate) fn on_stream_liveness(&mut self) {
        if self.failures == 0 {
            return;
        }
        self.failures = 0;
        if self.in_flight.is_none() {
            let soon = Instant::now() + self.options.liveness_interval;
            self.next_at = self.next_at.min(soon);
        }
    }

    /// Until `max_errors` probes failed in a row the next one follows at
    /// once (the verdict comes in about `max_errors × liveness_timeout`);
    /// after the verdict they are spaced like reconnects, by the policy's
    /// backoff (ARCHITECTURE "Failover rules" 2), never closer than the
    /// interval.
    fn delay_after_failure(&self) -> Duration {
        if self.failures < self.options.max_errors {
            Duration::ZERO
        } else {
            self.options
                .retry_delay(self.failures)
                .max(self.options.liveness_interval)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use provisioning_provider_api::{
        ProviderDescriptor, ProviderKind, ProviderSnapshot, ProviderStream,
    };

    use super::*;

    #[derive(Clone, Copy)]
    enum Answer {
        Never,
        Ok,
        Forbidden,
    }

    struct Probed {
        descriptor: ProviderDescriptor,
        answer: Answer,
        probes: AtomicU32,
    }

    impl Probed {
        fn new(answer: Answer) -> Arc<Self> {
            let id = ProviderId::new("probed").expect("valid id");
            Arc::new(Self {
                descriptor: ProviderDescriptor::new(id, ProviderKind::Consul, 1),
                answer,
                probes: AtomicU32::new(0),
            })
        }
    }

    impl ClusterProvider for Probed {
        fn descriptor(&self) -> &ProviderDescriptor {
            &self.descriptor
        }

        fn initial_snapshot(&self) -> Option<ProviderSnapshot> {
            None
        }

        fn stream(&self, _: StreamOptions) -> ProviderStream {
            Box::pin(futures::stream::pending())
        }

        fn liveness_probe(&self) -> Option<LivenessCheck> {
            self.probes.fetch_add(1, Ordering::Relaxed);
            Some(match self.answer {
                Answer::Never => Box::pin(std::future::pending()),
                Answer::Ok => Box::pin(std::future::ready(Ok(()))),
                Answer::Forbidden => Box::pin(std::future::ready(Err(ProviderFault::permanent(
                    FaultKind::PermissionDenied,
                    "403",
                )))),
            })
        }
    }

    fn options() -> StreamOptions {
        provisioning_failover::FailoverPolicy::default().stream_options()
    }

    #[tokio::test(start_paused = true)]
    async fn unanswered_probes_follow_each_other_at_once_until_the_verdict() {
        let provider = Probed::new(Answer::Never);
        let metrics = ProvisioningMetrics::new();
        let mut prober = LivenessProber::new(provider.clone(), options(), metrics.clone());
        let t0 = Instant::now();
        let mut at = Vec::new();
        for _ in 0..4 {
            let fault = prober.next_fault().await;
            assert_eq!(fault.kind, FaultKind::Timeout);
            assert!(!fault.permanent);
            assert!(fault.detail.contains("unanswered after 1s"), "{fault}");
            at.push(t0.elapsed());
        }
        // One interval, then three timeouts back to back: the verdict at
        // 4 s; after it, the backoff (2 s) spaces the probes.
        let secs = |s| Duration::from_secs(s);
        assert_eq!(at, [secs(2), secs(3), secs(4), secs(7)]);
        let id = ProviderId::new("probed").expect("valid id");
        let view = metrics.view();
        assert_eq!(view.providers[&id].liveness_failures, 4);
        assert_eq!(view.providers[&id].liveness_probe.count, 4);
    }

    #[tokio::test(start_paused = true)]
    async fn stream_liveness_ends_the_backoff_of_an_earlier_streak() {
        let provider = Probed::new(Answer::Never);
        let mut prober =
            LivenessProber::new(provider.clone(), options(), ProvisioningMetrics::new());
        for _ in 0..3 {
            let _ = prober.next_fault().await;
        }
        // The verdict came at 4 s; the stream then heartbeats: the next
        // probe comes one interval later, not after the 2 s backoff, and
        // counts from one again.
        let t = Instant::now();
        prober.on_stream_liveness();
        let _ = prober.next_fault().await;
        assert_eq!(t.elapsed(), Duration::from_secs(2));
        assert_eq!(prober.failures, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn answered_probes_report_nothing_and_keep_the_interval() {
        let provider = Probed::new(Answer::Ok);
        let metrics = ProvisioningMetrics::new();
        let mut prober = LivenessProber::new(provider.clone(), options(), metrics.clone());
        let waited = timeout(Duration::from_millis(10_500), prober.next_fault()).await;
        assert!(waited.is_err(), "a successful probe is no event at all");
        assert_eq!(provider.probes.load(Ordering::Relaxed), 10);
        let id = ProviderId::new("probed").expect("valid id");
        assert_eq!(metrics.view().providers[&id].liveness_failures, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_is_a_retryable_fault_naming_the_probe() {
        let provider = Probed::new(Answer::Forbidden);
        let mut prober =
            LivenessProber::new(provider.clone(), options(), ProvisioningMetrics::new());
        let fault = prober.next_fault().await;
        assert_eq!(fault.kind, FaultKind::PermissionDenied);
        assert!(!fault.permanent, "the watch decides what is permanent");
        assert_eq!(fault.detail, "liveness probe failed: 403");
    }

    #[tokio::test(start_paused = true)]
    async fn interval_zero_never_probes() {
        let provider = Probed::new(Answer::Never);
        let off = options().with_liveness(Duration::ZERO, Duration::from_secs(1));
        let mut prober = LivenessProber::new(provider.clone(), off, ProvisioningMetrics::new());
        let waited = timeout(Duration::from_secs(60), prober.next_fault()).await;
        assert!(waited.is_err());
        assert_eq!(provider.probes.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_in_flight_survives_a_cancelled_wait() {
        let provider = Probed::new(Answer::Never);
        let mut prober =
            LivenessProber::new(provider.clone(), options(), ProvisioningMetrics::new());
        let t0 = Instant::now();
        // Stream events keep interrupting the wait, every 300 ms.
        let mut fault = None;
        for _ in 0..100 {
            if let Ok(f) = timeout(Duration::from_millis(300), prober.next_fault()).await {
                fault = Some(f);
                break;
            }
        }
        assert_eq!(fault.map(|f| f.kind), Some(FaultKind::Timeout));
        assert_eq!(provider.probes.load(Ordering::Relaxed), 1);
        assert_eq!(t0.elapsed(), Duration::from_secs(2));
    }
}
