//! [`ResponseLimitLayer`]: a tower layer under the kube client that fails a
//! response body at [`MAX_RESPONSE_BYTES`](crate::MAX_RESPONSE_BYTES) —
//! per answer for lists and error answers, per line for watches — with a
//! [`ResponseTooLarge`] naming the request (see [`ResponseLimit`]).
//!
//! It sits under every client the provider builds (the watch's and the
//! probe's), so no answer is read without a bound.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use tower::{Layer, Service};

use crate::response_limit::{ResponseFraming, ResponseLimit, ResponseTooLarge};
use crate::watch_guard::{is_collection, is_watch};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The layer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResponseLimitLayer {
    limit: usize,
}

impl ResponseLimitLayer {
    /// Fails bodies (or watch lines) over `limit` bytes.
    pub(crate) fn new(limit: usize) -> Self {
        Self { limit }
    }
}

impl<S> Layer<S> for ResponseLimitLayer {
    type Service = LimitService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        LimitService {
            inner,
            limit: self.limit,
        }
    }
}

/// The limited service.
pub(crate) struct LimitService<S> {
    inner: S,
    limit: usize,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for LimitService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Unpin,
    ResBody: http_body::Body,
{
    type Response = Response<LimitedBody<ResBody>>;
    type Error = S::Error;
    type Future = LimitFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let watch = is_watch(&req);
        let what = if watch {
            "watch"
        } else if req.method() == http::Method::GET && is_collection(&req) {
            "list"
        } else {
            "request"
        };
        // The path names the resource and namespace; the query (selector,
        // versions) says nothing about where the bytes came from.
        let request = format!("{what} {} {}", req.method(), req.uri().path());
        LimitFuture {
            inner: self.inner.call(req),
            request: Some(request),
            watch,
            limit: self.limit,
        }
    }
}

/// The response future of [`LimitService`].
pub(crate) struct LimitFuture<F> {
    inner: F,
    request: Option<String>,
    watch: bool,
    limit: usize,
}

impl<F, B, E> Future for LimitFuture<F>
where
    F: Future<Output = Result<Response<B>, E>> + Unpin,
    B: http_body::Body,
{
    type Output = Result<Response<LimitedBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let response = ready!(Pin::new(&mut this.inner).poll(cx))?;
        // A watch streams lines only when it succeeds; an error answer is
        // read whole, like a list.
        let framing = if this.watch && response.status().is_success() {
            ResponseFraming::Lines
        } else {
            ResponseFraming::Whole
        };
        let request = this.request.take().unwrap_or_default();
        let mut limit = ResponseLimit::new(request, framing, this.limit);
        let early = http_body::Body::size_hint(response.body())
            .exact()
            .and_then(|len| limit.announce(len).err());
        Poll::Ready(Ok(response.map(|inner| LimitedBody {
            inner,
            limit,
            failed: early,
            done: false,
        })))
    }
}

/// A response body counted against its limit.
pub(crate) struct LimitedBody<B> {
    inner: B,
    limit: ResponseLimit,
    /// The error to report at the next poll (an announced length too large).
    failed: Option<ResponseTooLarge>,
    done: bool,
}

impl<B> http_body::Body for LimitedBody<B>
where
    B: http_body::Body<Data = bytes::Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if let Some(error) = this.failed.take() {
            this.done = true;
            return Poll::Ready(Some(Err(Box::new(error))));
        }
        match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            None => {
                this.done = true;
                Poll::Ready(None)
            }
            Some(Err(e)) => Poll::Ready(Some(Err(e.into()))),
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref()
                    && let Err(error) = this.limit.feed(data)
                {
                    // Stop here: nothing more of this body is read.
                    this.done = true;
                    return Poll::Ready(Some(Err(Box::new(error))));
                }
                Poll::Ready(Some(Ok(frame)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || (self.failed.is_none() && self.inner.is_end_stream())
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
