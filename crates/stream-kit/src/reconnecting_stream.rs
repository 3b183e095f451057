//! [`ReconnectingStream`]: one backend step, unfolded into a
//! [`ProviderStream`] that recovers by itself.

use std::future::Future;
use std::pin::Pin;

use provisioning_provider_api::{
    ProviderEvent, ProviderStream, ProviderTermination, StreamOptions,
};
use tokio::time::sleep_until;

use crate::StepContext;

/// A backend's protocol: one step of "open or continue the watch", which
/// reports what it saw on the [`StepContext`] — events, a fault (the kit
/// then holds the next step back by the retry schedule), or the end.
pub trait StreamStep: Send + 'static {
    /// Runs one step. The kit calls it again once the events it queued have
    /// been yielded and the retry delay, if any, has passed; it never calls
    /// it after [`StepContext::terminate`]. A step may be dropped at an
    /// `.await` when the stream is closed.
    fn step(&mut self, ctx: &mut StepContext) -> impl Future<Output = ()> + Send;
}

type CloseSignal = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The loop every provider stream runs: yield what is queued, end when
/// told, wait out the retry delay, run the backend's step (module docs of
/// the crate).
pub struct ReconnectingStream<S> {
    /// `None` once the stream has ended: what the step holds (a session, a
    /// watch open on the server) is released before the end is yielded,
    /// not when a consumer gets round to dropping the stream.
    step: Option<S>,
    ctx: StepContext,
    close: Option<CloseSignal>,
}

impl<S: StreamStep> ReconnectingStream<S> {
    /// A stream of `step` opened with `options`.
    pub fn new(step: S, options: StreamOptions) -> Self {
        Self {
            step: Some(step),
            ctx: StepContext::new(options),
            close: None,
        }
    }

    /// Ends the stream with [`ProviderTermination::Ended`] when `signal`
    /// completes (the provider closed or shut down), even in the middle of
    /// a step or a retry delay.
    pub fn close_on(mut self, signal: impl Future<Output = ()> + Send + 'static) -> Self {
        self.close = Some(Box::pin(signal));
        self
    }

    /// The stream of events.
    pub fn into_stream(self) -> ProviderStream {
        Box::pin(futures_util::stream::unfold(self, |mut st| async move {
            let event = st.next_event().await?;
            Some((event, st))
        }))
    }

    async fn next_event(&mut self) -> Option<ProviderEvent> {
        let Self { step, ctx, close } = self;
        loop {
            if let Some(event) = ctx.pop() {
                return Some(event);
            }
            let current = step.as_mut().filter(|_| !ctx.is_done())?;
            let retry_at = ctx.take_retry_at();
            let attempt = async {
                if let Some(at) = retry_at {
                    sleep_until(at).await;
                    tracing::debug!(attempt = ctx.failures() + 1, "stream retrying");
                }
                current.step(ctx).await;
            };
            let closed = match close.as_mut() {
                Some(signal) => tokio::select! {
                    biased;
                    () = signal.as_mut() => true,
                    () = attempt => false,
                },
                None => {
                    attempt.await;
                    false
                }
            };
            if closed {
                *close = None;
                ctx.terminate(ProviderTermination::Ended);
            }
            if ctx.is_done() {
                *step = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::time::Duration;

    use futures_util::StreamExt;
    use provisioning_provider_api::{FaultKind, ProviderFault};
    use tokio::sync::oneshot;
    use tokio::time::Instant;

    use super::*;

    /// What the scripted step does on each call.
    enum Act {
        Beat,
        Fail,
        Two,
        Resync,
        End,
    }

    struct Script(VecDeque<Act>);

    impl StreamStep for Script {
        async fn step(&mut self, ctx: &mut StepContext) {
            match self.0.pop_front() {
                Some(Act::Beat) => {
                    ctx.succeeded();
                    ctx.push_liveness(ProviderEvent::heartbeat());
                }
                Some(Act::Fail) => {
                    ctx.fault(ProviderFault::retryable(
                        FaultKind::BackendUnavailable,
                        "down",
                    ));
                }
                Some(Act::Two) => {
                    ctx.push(ProviderEvent::Fault(ProviderFault::resync("first")));
                    ctx.push_liveness(ProviderEvent::heartbeat());
                }
                Some(Act::Resync) => ctx.resync(ProviderFault::resync("compacted")),
                Some(Act::End) => ctx.terminate(ProviderTermination::Ended),
                None => std::future::pending().await,
            }
        }
    }

    fn options(seed: u64) -> StreamOptions {
        StreamOptions::new(Duration::from_secs(5)).with_jitter_seed(seed)
    }

    /// When each event of a stream of `acts` arrives, relative to the start.
    async fn timeline(seed: u64, acts: Vec<Act>) -> Vec<(Duration, String)> {
        let start = Instant::now();
        let stream = ReconnectingStream::new(Script(acts.into()), options(seed)).into_stream();
        stream
            .map(|e| (start.elapsed(), format!("{e:?}").chars().take(12).collect()))
            .collect()
            .await
    }

    fn failing(n: usize) -> Vec<Act> {
        let mut acts: Vec<Act> = (0..n).map(|_| Act::Fail).collect();
        acts.push(Act::End);
        acts
    }

    #[tokio::test(start_paused = true)]
    async fn faults_retry_fast_then_back_off() {
        let t = timeline(1, failing(5)).await;
        let at: Vec<Duration> = t.iter().map(|(at, _)| *at).collect();
        println!("fault times {at:?}");
        assert_eq!(t.len(), 6);
        // Fault 1 at once; retry 1 at once, retry 2 after 100 ms, then 2 s
        // and 4 s (±20 %).
        assert_eq!(at[0], Duration::ZERO);
        assert_eq!(at[1], Duration::ZERO);
        assert_eq!(at[2], Duration::from_millis(100));
        let gap = |i: usize| (at[i] - at[i - 1]).as_secs_f64();
        assert!((1.6..=2.4).contains(&gap(3)), "{}", gap(3));
        assert!((3.2..=4.8).contains(&gap(4)), "{}", gap(4));
    }

    #[tokio::test(start_paused = true)]
    async fn the_seed_decides_the_retry_times() {
        let a = timeline(42, failing(6)).await;
        let b = timeline(42, failing(6)).await;
        let c = timeline(43, failing(6)).await;
        println!("seed 42 {a:?}\nseed 43 {c:?}");
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[tokio::test(start_paused = true)]
    async fn relists_after_resyncs_are_paced() {
        let mut acts: Vec<Act> = (0..6).map(|_| Act::Resync).collect();
        acts.push(Act::End);
        let t = timeline(1, acts).await;
        let ms: Vec<u128> = t.iter().map(|(at, _)| at.as_millis()).collect();
        println!("resync times (ms) {ms:?}");
        // The first relist at once, then 100, 200, 400, 800, 1600 ms later
        // (the cap is 2 s: half the heartbeat interval, at most 2 s).
        assert_eq!(ms, [0, 0, 100, 300, 700, 1500, 3100]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_restarts_the_schedule() {
        let acts = vec![
            Act::Fail,
            Act::Fail,
            Act::Fail,
            Act::Beat,
            Act::Fail,
            Act::End,
        ];
        let t = timeline(1, acts).await;
        let at: Vec<Duration> = t.iter().map(|(at, _)| *at).collect();
        println!("times {at:?}");
        // The fault after the heartbeat counts as the first again: the
        // step after it comes at once.
        assert_eq!(at[5], at[4]);
    }

    #[tokio::test(start_paused = true)]
    async fn queued_events_come_in_order_and_the_end_is_last() {
        let t = timeline(1, vec![Act::Two, Act::Beat, Act::End]).await;
        let kinds: Vec<&str> = t.iter().map(|(_, e)| e.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "Fault(Provid",
                "Heartbeat(He",
                "Heartbeat(He",
                "Terminated(E"
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn close_ends_a_stream_mid_step_and_mid_delay() {
        for acts in [vec![Act::Beat], failing(4)] {
            let (tx, rx) = oneshot::channel::<()>();
            let mut stream = ReconnectingStream::new(Script(acts.into()), options(1))
                .close_on(async move {
                    let _ = rx.await;
                })
                .into_stream();
            // Drain until the step blocks (for ever, or in a 2 s delay).
            let mut seen = Vec::new();
            while let Ok(Some(e)) =
                tokio::time::timeout(Duration::from_millis(500), stream.next()).await
            {
                seen.push(e);
            }
            let _ = tx.send(());
            // Bounded, so a stream that ignores the close fails the test.
            let last = tokio::time::timeout(Duration::from_secs(60), stream.next())
                .await
                .unwrap_or(None);
            assert!(
                matches!(
                    last,
                    Some(ProviderEvent::Terminated(ProviderTermination::Ended))
                ),
                "{last:?} after {seen:?}"
            );
            assert!(stream.next().await.is_none());
        }
    }

    /// Sets its flag when dropped.
    struct Holder(Script, std::sync::Arc<std::sync::atomic::AtomicBool>);

    impl Drop for Holder {
        fn drop(&mut self) {
            self.1.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    impl StreamStep for Holder {
        async fn step(&mut self, ctx: &mut StepContext) {
            self.0.step(ctx).await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_step_is_released_before_the_end_is_yielded() {
        for (acts, close) in [(vec![Act::Beat], true), (vec![Act::Beat, Act::End], false)] {
            let released = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let (tx, rx) = oneshot::channel::<()>();
            let step = Holder(Script(acts.into()), released.clone());
            let mut stream = ReconnectingStream::new(step, options(1))
                .close_on(async move {
                    let _ = rx.await;
                })
                .into_stream();
            assert!(matches!(
                stream.next().await,
                Some(ProviderEvent::Heartbeat(_))
            ));
            if close {
                let _ = tx.send(());
            }
            let last = tokio::time::timeout(Duration::from_secs(60), stream.next())
                .await
                .unwrap_or(None);
            assert!(
                matches!(last, Some(ProviderEvent::Terminated(_))),
                "{last:?}"
            );
            // The stream is still held: the step's session and watch are not.
            assert!(
                released.load(std::sync::atomic::Ordering::SeqCst),
                "close: {close}"
            );
        }
    }
}
