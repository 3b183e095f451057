//! [`WatchedBody`]: a request body that tells its connection's
//! [`ConnectionWatchdog`] when its handler waits for bytes the client has
//! not sent.

use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::body::{Body, Frame, SizeHint};

use crate::connection_watchdog::ConnectionWatchdog;

/// A request body whose reads are watched.
#[derive(Debug)]
pub(crate) struct WatchedBody<B> {
    inner: B,
    watchdog: ConnectionWatchdog,
}

impl<B> WatchedBody<B> {
    /// `inner`, reporting to `watchdog`.
    pub(crate) fn new(inner: B, watchdog: ConnectionWatchdog) -> Self {
        Self { inner, watchdog }
    }
}

impl<B: Body + Unpin> Body for WatchedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let poll = Pin::new(&mut self.inner).poll_frame(cx);
        if poll.is_pending() {
            self.watchdog.body_waiting();
        } else {
            self.watchdog.body_progressed();
        }
        poll
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for WatchedBody<B> {
    fn drop(&mut self) {
        // A handler that let go of the body waits for nothing from it.
        self.watchdog.body_progressed();
    }
}
