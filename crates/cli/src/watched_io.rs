//! [`WatchedIo`]: an admin connection's socket that tells its
//! [`ConnectionWatchdog`] when a write waits on the client and when the
//! client takes bytes again.

use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::connection_watchdog::ConnectionWatchdog;

/// A socket whose writes are watched.
#[derive(Debug)]
pub(crate) struct WatchedIo<S> {
    inner: S,
    watchdog: ConnectionWatchdog,
}

impl<S> WatchedIo<S> {
    /// `inner`, reporting to `watchdog`.
    pub(crate) fn new(inner: S, watchdog: ConnectionWatchdog) -> Self {
        Self { inner, watchdog }
    }

    fn report(&self, poll: &Poll<std::io::Result<usize>>) {
        match poll {
            Poll::Pending => self.watchdog.write_blocked(),
            Poll::Ready(Ok(n)) if *n > 0 => self.watchdog.wrote(),
            // An error ends the connection anyway.
            Poll::Ready(_) => {}
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WatchedIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WatchedIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.report(&poll);
        poll
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.report(&poll);
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
