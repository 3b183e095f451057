//! [`WatchGuard`]: a tower layer under the kube client that spaces out
//! watches the API server closes at once.
//!
//! kube-runtime's watcher re-opens a cleanly closed watch at once, inside
//! its own state machine, without yielding anything to its consumer: a
//! server (or proxy) that ends every watch immediately would be hammered
//! with requests, and no backoff combinator on the watcher's output can
//! see it. The guard sits on the HTTP path instead. When the body of a watch
//! response ends less than [`QUICK_CLOSE`] after the request was sent, it
//! holds the end of that body back for the next retry delay of the
//! stream's policy (the fast retries, then the backoff), so the watcher's
//! next request waits too. A watch that lived longer resets the streak.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::{Request, Response};
use provisioning_provider_api::StreamOptions;
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep, sleep};
use tower::{Layer, Service};

/// A watch that ends sooner than this after its request counts as closed
/// at once.
pub(crate) const QUICK_CLOSE: Duration = Duration::from_secs(1);

/// A quick close the guard delayed, reported to the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QuickClose {
    /// Consecutive quick closes so far.
    pub(crate) streak: u32,
    /// How long the closed watch lived.
    pub(crate) lived: Duration,
    /// How long the end of the watch is held back.
    pub(crate) delay: Duration,
}

/// The layer; clones share the streak.
#[derive(Clone)]
pub(crate) struct WatchGuard {
    streak: Arc<Mutex<u32>>,
    options: StreamOptions,
    notices: mpsc::UnboundedSender<QuickClose>,
}

impl WatchGuard {
    /// A guard spacing quick closes by `options`' retry schedule, reporting
    /// each delayed close on the returned receiver.
    pub(crate) fn new(options: StreamOptions) -> (Self, mpsc::UnboundedReceiver<QuickClose>) {
        let (notices, rx) = mpsc::unbounded_channel();
        (
            Self {
                streak: Arc::new(Mutex::new(0)),
                options,
                notices,
            },
            rx,
        )
    }

    /// A watch ended after `lived`: how long to hold its end back.
    fn on_watch_end(&self, lived: Duration) -> Duration {
        let mut streak = self.streak.lock().unwrap_or_else(PoisonError::into_inner);
        if lived >= QUICK_CLOSE {
            *streak = 0;
            return Duration::ZERO;
        }
        *streak = streak.saturating_add(1);
        let delay = self
            .options
            .retry_delay_jittered(*streak, rand::random::<f64>());
        let _ = self.notices.send(QuickClose {
            streak: *streak,
            lived,
            delay,
        });
        delay
    }
}

impl<S> Layer<S> for WatchGuard {
    type Service = GuardService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GuardService {
            inner,
            guard: self.clone(),
        }
    }
}

/// The guarded service.
pub(crate) struct GuardService<S> {
    inner: S,
    guard: WatchGuard,
}

fn is_watch<B>(req: &Request<B>) -> bool {
    req.uri()
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"))
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for GuardService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Unpin,
{
    type Response = Response<GuardedBody<ResBody>>;
    type Error = S::Error;
    type Future = GuardFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let watch = is_watch(&req).then(|| (Instant::now(), self.guard.clone()));
        GuardFuture {
            inner: self.inner.call(req),
            watch,
        }
    }
}

/// The response future of [`GuardService`].
pub(crate) struct GuardFuture<F> {
    inner: F,
    watch: Option<(Instant, WatchGuard)>,
}

impl<F, B, E> Future for GuardFuture<F>
where
    F: Future<Output = Result<Response<B>, E>> + Unpin,
{
    type Output = Result<Response<GuardedBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let response = ready!(Pin::new(&mut this.inner).poll(cx))?;
        // Only a watch that started streaming counts: an error answer is
        // the watcher's to report (and our stream's to back off from).
        let watch = this.watch.take().filter(|_| response.status().is_success());
        Poll::Ready(Ok(response.map(|inner| GuardedBody {
            inner,
            watch,
            hold: None,
            done: false,
        })))
    }
}

/// A response body whose end is held back after a quick watch close.
pub(crate) struct GuardedBody<B> {
    inner: B,
    watch: Option<(Instant, WatchGuard)>,
    hold: Option<Pin<Box<Sleep>>>,
    done: bool,
}

impl<B> http_body::Body for GuardedBody<B>
where
    B: http_body::Body + Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        loop {
            if let Some(hold) = this.hold.as_mut() {
                ready!(hold.as_mut().poll(cx));
                this.hold = None;
                this.done = true;
            }
            if this.done {
                return Poll::Ready(None);
            }
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                None => {
                    this.done = true;
                    if let Some((started, guard)) = this.watch.take() {
                        let delay = guard.on_watch_end(started.elapsed());
                        if !delay.is_zero() {
                            this.done = false;
                            this.hold = Some(Box::pin(sleep(delay)));
                            continue;
                        }
                    }
                    return Poll::Ready(None);
                }
                Some(frame) => return Poll::Ready(Some(frame)),
            }
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn quick_closes_follow_the_retry_schedule_and_long_watches_reset() {
        let options = StreamOptions::new(Duration::from_secs(5)).with_backoff(
            Duration::from_secs(2),
            2.0,
            Duration::from_secs(30),
            0.0,
        );
        let (guard, mut rx) = WatchGuard::new(options);
        let delays: Vec<_> = (0..5)
            .map(|_| guard.on_watch_end(Duration::from_millis(5)))
            .collect();
        assert_eq!(
            delays,
            [0, 100, 2000, 4000, 8000].map(Duration::from_millis)
        );
        assert_eq!(rx.recv().await.map(|n| n.streak), Some(1));
        assert_eq!(guard.on_watch_end(Duration::from_secs(30)), Duration::ZERO);
        assert_eq!(guard.on_watch_end(Duration::ZERO), Duration::ZERO);
    }
}
