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
//!
//! The same layer notes the list's `metadata.resourceVersion` (the watcher
//! does not pass it on), so snapshots can carry the position the list was
//! taken at: the API server writes `kind`, `apiVersion` and `metadata`
//! before `items`, so the first bytes of a list answer hold it. The scan
//! stops after [`SNIFF_LIMIT`] bytes; without a match the provider falls
//! back to the objects' versions.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::{Request, Response};
use provisioning_stream_kit::RetrySchedule;
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep, sleep};
use tower::{Layer, Service};

/// A watch that ends sooner than this after its request counts as closed
/// at once.
pub(crate) const QUICK_CLOSE: Duration = Duration::from_secs(1);

/// How many leading bytes of a list answer are searched for its
/// `resourceVersion`.
pub(crate) const SNIFF_LIMIT: usize = 1024;

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

/// The layer; clones share the streak (the schedule's failure count).
#[derive(Clone)]
pub(crate) struct WatchGuard {
    schedule: Arc<Mutex<RetrySchedule>>,
    list_rv: Arc<Mutex<Option<String>>>,
    notices: mpsc::UnboundedSender<QuickClose>,
}

impl WatchGuard {
    /// A guard spacing quick closes by `schedule` (the stream's, forked, so
    /// its jitter is seeded too), reporting
    /// each delayed close on the returned receiver.
    pub(crate) fn new(schedule: RetrySchedule) -> (Self, mpsc::UnboundedReceiver<QuickClose>) {
        let (notices, rx) = mpsc::unbounded_channel();
        (
            Self {
                schedule: Arc::new(Mutex::new(schedule)),
                list_rv: Arc::new(Mutex::new(None)),
                notices,
            },
            rx,
        )
    }

    /// The `resourceVersion` of the last list answer seen, taken.
    pub(crate) fn take_list_rv(&self) -> Option<String> {
        self.list_rv
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    fn set_list_rv(&self, rv: String) {
        *self.list_rv.lock().unwrap_or_else(PoisonError::into_inner) = Some(rv);
    }

    /// A watch ended after `lived`: how long to hold its end back.
    fn on_watch_end(&self, lived: Duration) -> Duration {
        let mut schedule = self.schedule.lock().unwrap_or_else(PoisonError::into_inner);
        if lived >= QUICK_CLOSE {
            schedule.reset();
            return Duration::ZERO;
        }
        let delay = schedule.on_failure(false);
        let _ = self.notices.send(QuickClose {
            streak: schedule.failures(),
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

/// The list's `resourceVersion` in the first bytes of a list answer:
/// `..."metadata":{..."resourceVersion":"123"...`.
pub(crate) fn list_resource_version(head: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(head)
        .or_else(|e| std::str::from_utf8(&head[..e.valid_up_to()]))
        .ok()?;
    let meta = text.find("\"metadata\":{")?;
    let items = text.find("\"items\"").unwrap_or(text.len());
    let key = "\"resourceVersion\":\"";
    let at = meta + text[meta..].find(key)? + key.len();
    if at > items {
        return None;
    }
    let len = text[at..].find('"')?;
    let rv = &text[at..at + len];
    (!rv.is_empty() && !rv.contains('\\')).then(|| rv.to_string())
}

pub(crate) fn is_watch<B>(req: &Request<B>) -> bool {
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
        let watching = is_watch(&req);
        let watch = watching.then(|| (Instant::now(), self.guard.clone()));
        let list = (!watching && req.method() == http::Method::GET && is_collection(&req))
            .then(|| self.guard.clone());
        GuardFuture {
            inner: self.inner.call(req),
            watch,
            list,
        }
    }
}

/// The response future of [`GuardService`].
pub(crate) struct GuardFuture<F> {
    inner: F,
    watch: Option<(Instant, WatchGuard)>,
    list: Option<WatchGuard>,
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
        let ok = response.status().is_success();
        let watch = this.watch.take().filter(|_| ok);
        let sniff = this.list.take().filter(|_| ok).map(|g| (g, Vec::new()));
        Poll::Ready(Ok(response.map(|inner| GuardedBody {
            inner,
            watch,
            sniff,
            hold: None,
            done: false,
        })))
    }
}

/// A response body whose end is held back after a quick watch close.
pub(crate) struct GuardedBody<B> {
    inner: B,
    watch: Option<(Instant, WatchGuard)>,
    /// A list answer whose first bytes are searched for its version.
    sniff: Option<(WatchGuard, Vec<u8>)>,
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
                Some(Ok(frame)) => {
                    if let (Some((guard, head)), Some(data)) =
                        (this.sniff.as_mut(), frame.data_ref())
                    {
                        let chunk = bytes::Buf::chunk(data);
                        let take = chunk.len().min(SNIFF_LIMIT.saturating_sub(head.len()));
                        head.extend_from_slice(&chunk[..take]);
                        if let Some(rv) = list_resource_version(head) {
                            guard.set_list_rv(rv);
                            this.sniff = None;
                        } else if head.len() >= SNIFF_LIMIT {
                            this.sniff = None;
                        }
                    }
                    return Poll::Ready(Some(Ok(frame)));
                }
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
            }
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A request for a collection (`.../pods`, `.../endpointslices`).
pub(crate) fn is_collection<B>(req: &Request<B>) -> bool {
    let path = req.uri().path();
    path.ends_with("/pods") || path.ends_with("/endpointslices")
}

#[cfg(test)]
mod tests {
    use super::*;
    use provisioning_provider_api::StreamOptions;

    #[test]
    fn the_list_version_is_found_in_the_head_only() {
        let head = br#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"1234","continue":"x"},"items":[{"metadata":{"resourceVersion":"9"}}]}"#;
        assert_eq!(list_resource_version(head).as_deref(), Some("1234"));
        let no_list_rv =
            br#"{"kind":"PodList","metadata":{},"items":[{"metadata":{"resourceVersion":"9"}}]}"#;
        assert_eq!(list_resource_version(no_list_rv), None);
        assert_eq!(
            list_resource_version(br#"{"kind":"PodList","metadata":{"resourceVer"#),
            None
        );
    }

    #[tokio::test(start_paused = true)]
    async fn quick_closes_follow_the_retry_schedule_and_long_watches_reset() {
        let options = StreamOptions::new(Duration::from_secs(5)).with_backoff(
            Duration::from_secs(2),
            2.0,
            Duration::from_secs(30),
            0.0,
        );
        let (guard, mut rx) = WatchGuard::new(RetrySchedule::new(&options));
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
