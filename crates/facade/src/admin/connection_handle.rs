//! [`ConnectionHandle`]: what a request knows about the connection it came
//! on, as a request extension.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::Notify;

/// The connection a request came on: the local address the client reached
/// (the listener's own address, also behind `0.0.0.0`) and a way to close
/// the connection from a handler. Cloned into every request's extensions by
/// the accept loop.
#[derive(Clone, Debug)]
pub struct ConnectionHandle {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    local: SocketAddr,
    close: Notify,
    request: Notify,
}

impl ConnectionHandle {
    /// A handle for a connection accepted on `local`.
    pub fn new(local: SocketAddr) -> Self {
        Self {
            inner: Arc::new(Inner {
                local,
                close: Notify::new(),
                request: Notify::new(),
            }),
        }
    }

    /// The local address of the connection.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local
    }

    /// Asks the accept loop to drop the connection now, whatever it is
    /// doing (a response blocked on a client that stopped reading
    /// included).
    pub fn close(&self) {
        // `notify_one` keeps the wake-up when nobody waits yet.
        self.inner.close.notify_one();
    }

    /// Resolves once [`close`](Self::close) was called.
    pub async fn closed(&self) {
        self.inner.close.notified().await;
    }

    /// A request's headers have arrived.
    pub fn request_arrived(&self) {
        self.inner.request.notify_one();
    }

    /// Resolves once [`request_arrived`](Self::request_arrived) was called.
    pub async fn first_request(&self) {
        self.inner.request.notified().await;
    }
}
