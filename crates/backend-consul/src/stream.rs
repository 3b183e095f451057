//! The blocking-query step behind a provider stream, run by the
//! reconnecting-stream kit (which owns the retries and their jitter).
//!
//! Index rules (Consul's "blocking queries" implementation notes):
//! - an index lower than the previous one is a rollback (snapshot restore,
//!   new cluster): a resync notice, not an error; the answer that reveals
//!   it is a full listing and serves as the relist;
//! - an index below 1 is used as 1, so a query never blocks on 0;
//! - a new index does not mean new content: unchanged content is a
//!   heartbeat;
//! - the loop is rate-limited by a token bucket, so a server that keeps
//!   answering at once cannot make it spin;
//! - after a fault the kit's schedule spaces the retries (at once, after
//!   100 ms, then the policy's backoff with seeded jitter); the first query
//!   after a fault does not block, so recovery is seen at once.

use std::sync::Arc;
use std::time::Duration;

use provisioning_provider_api::{
    FaultKind, Heartbeat, ProviderEvent, ProviderFault, ProviderSnapshot, ProviderStream,
    StreamOptions,
};
use provisioning_stream_kit::{ReconnectingStream, StepContext, StreamStep};
use tokio::time::{Instant, sleep_until};

use crate::decode::HealthAnswer;
use crate::provider::Shared;

/// Token bucket: at most `BURST` queries at once, refilled one per
/// `REFILL`. An idle watch uses one token per `wait`.
const BURST: u32 = 5;
const REFILL: Duration = Duration::from_millis(200);

/// A token bucket on tokio's clock.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    tokens: u32,
    capacity: u32,
    refill: Duration,
    last: Instant,
}

impl TokenBucket {
    pub(crate) fn new(capacity: u32, refill: Duration) -> Self {
        Self {
            tokens: capacity,
            capacity,
            refill,
            last: Instant::now(),
        }
    }

    fn top_up(&mut self, now: Instant) {
        if self.refill.is_zero() {
            self.tokens = self.capacity;
            return;
        }
        while self.tokens < self.capacity && now >= self.last + self.refill {
            self.tokens += 1;
            self.last += self.refill;
        }
        if self.tokens == self.capacity {
            self.last = now;
        }
    }

    /// When the next token is available.
    pub(crate) fn ready_at(&mut self, now: Instant) -> Instant {
        self.top_up(now);
        if self.tokens > 0 {
            now
        } else {
            self.last + self.refill
        }
    }

    /// Takes a token (call at or after [`ready_at`](Self::ready_at)).
    pub(crate) fn take(&mut self, now: Instant) {
        self.top_up(now);
        self.tokens = self.tokens.saturating_sub(1);
    }
}

/// The `wait` a stream uses: the configured one, lowered when needed so
/// the quiet period (`wait × 17/16`) stays within 90 % of the heartbeat
/// interval — a healthy idle watch then always heartbeats in time.
pub(crate) fn effective_wait(configured: Duration, heartbeat_interval: Duration) -> Duration {
    let budget = heartbeat_interval.saturating_sub(heartbeat_interval / 10);
    let cap = (budget * 16 / 17).max(Duration::from_millis(10));
    configured.min(cap)
}

/// Consul's step: one blocking query.
struct ConsulStep {
    shared: Arc<Shared>,
    wait: Duration,
    /// Last index seen; 0 before the first answer.
    index: u64,
    /// Whether the next query blocks on `index`.
    blocking: bool,
    /// Content last emitted on this stream.
    last: Option<ProviderSnapshot>,
    bucket: TokenBucket,
}

pub(crate) fn open(shared: Arc<Shared>, options: StreamOptions) -> ProviderStream {
    let mut close = shared.close.subscribe();
    close.borrow_and_update();
    let wait = effective_wait(
        shared.client.config().watch.wait,
        options.heartbeat_interval,
    );
    if wait < shared.client.config().watch.wait {
        tracing::debug!(
            provider = %shared.client.config().provider,
            ?wait,
            "wait lowered below the heartbeat interval"
        );
    }
    let step = ConsulStep {
        shared,
        wait,
        index: 0,
        blocking: false,
        last: None,
        bucket: TokenBucket::new(BURST, REFILL),
    };
    ReconnectingStream::new(step, options)
        .close_on(async move {
            let _ = close.changed().await;
        })
        .into_stream()
}

impl StreamStep for ConsulStep {
    async fn step(&mut self, ctx: &mut StepContext) {
        sleep_until(self.bucket.ready_at(Instant::now())).await;
        self.bucket.take(Instant::now());
        let index = if self.blocking { self.index } else { 0 };
        match self.shared.client.health(index, self.wait).await {
            Ok(answer) => self.on_answer(ctx, answer),
            Err(e) => self.fault(ctx, e.to_fault()),
        }
    }
}

impl ConsulStep {
    fn fault(&mut self, ctx: &mut StepContext, fault: ProviderFault) {
        tracing::debug!(provider = %self.shared.client.config().provider, %fault, "consul query failed");
        ctx.fault(fault);
        // The first answer after a fault must prove liveness at once.
        self.blocking = false;
    }

    fn on_answer(&mut self, ctx: &mut StepContext, answer: HealthAnswer) {
        let meta = answer.meta;
        let provider = &self.shared.client.config().provider;
        if meta.known_leader == Some(false) {
            tracing::debug!(%provider, "consul reports no known leader");
        }
        let index = meta.index.max(1);
        if self.index > 0 && index < self.index {
            ctx.push(ProviderEvent::Fault(ProviderFault::resync(format!(
                "X-Consul-Index went back from {} to {}; relisting",
                self.index, meta.index
            ))));
        }
        self.index = index;
        self.blocking = true;
        if meta.filtered_by_acls {
            let service = &self.shared.client.config().watch.service;
            return self.fault(
                ctx,
                ProviderFault::permanent(
                    FaultKind::PermissionDenied,
                    format!(
                        "consul filtered the results by ACLs: the token may not read service {service:?} or its nodes"
                    ),
                ),
            );
        }
        let snapshot = match self.shared.mapping.snapshot(&answer.entries) {
            Ok(s) => s,
            Err(e) => {
                // Blocking on this index waits for the data to change; the
                // fault repeats once per `wait` until it does.
                self.fault(
                    ctx,
                    ProviderFault::retryable(FaultKind::MalformedResponse, e.to_string()),
                );
                self.blocking = true;
                ctx.retry_now();
                return;
            }
        };
        ctx.succeeded();
        let mut snapshot = snapshot.with_revision(meta.index.to_string());
        if let Some(last_contact) = meta.last_contact {
            snapshot = snapshot.with_last_contact(last_contact);
        }
        let changed = self
            .last
            .as_ref()
            .is_none_or(|last| !last.same_content(&snapshot));
        if changed {
            self.shared.remember(&snapshot);
            self.last = Some(snapshot.clone());
            ctx.push_liveness(ProviderEvent::Snapshot(snapshot));
        } else {
            ctx.push_liveness(ProviderEvent::Heartbeat(Heartbeat {
                last_contact: meta.last_contact,
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_stays_inside_the_heartbeat_interval() {
        let s = Duration::from_secs;
        assert_eq!(effective_wait(s(4), s(5)), s(4));
        let w = effective_wait(s(4), s(3));
        assert!(w * 17 / 16 < s(3), "{w:?}");
        assert_eq!(
            effective_wait(s(4), Duration::ZERO),
            Duration::from_millis(10)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn bucket_limits_the_rate() {
        let mut b = TokenBucket::new(BURST, REFILL);
        let start = Instant::now();
        let mut taken = 0;
        while Instant::now() < start + Duration::from_secs(2) {
            let at = b.ready_at(Instant::now());
            tokio::time::sleep_until(at).await;
            b.take(Instant::now());
            taken += 1;
        }
        // Burst of 5, then one per 200 ms for 2 s.
        assert!((14..=16).contains(&taken), "{taken}");
    }
}
