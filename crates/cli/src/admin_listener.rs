//! [`AdminListener`]: the admin API's accept loop, with the client bounds
//! of CONTRACTS §4a rule 5.
//!
//! `axum::serve` accepts every connection at once and never times a client
//! out, so idle or half-open sockets can take every file descriptor of the
//! process (and then the store cannot be written, nor a backend reached).
//! Here a connection is accepted only with a permit of a semaphore sized
//! below the file limit; the others wait in the kernel's backlog, where
//! they cost the process no descriptor.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::connection_watchdog::{BODY_READ_TIMEOUT, ConnectionWatchdog, Overdue, WRITE_TIMEOUT};
use crate::watched_body::WatchedBody;
use crate::watched_io::WatchedIo;
use cluster_provisioning::admin::ConnectionHandle;

/// Most connections served at once.
pub(crate) const MAX_CONNECTIONS: usize = 1024;

/// File descriptors kept for everything but admin connections when the
/// process's file limit is low: stdio, the runtime's own descriptors, the
/// listener, the store (file, temporary file, lock, directory for fsync),
/// the token and policy files, and the backends' connections (a few per
/// provider, with room for reconnects overlapping old sockets).
pub(crate) const FD_RESERVE: u64 = 128;

/// Connections the kernel holds, accepted by it but not yet by us, beyond
/// the ones served (capped by `net.core.somaxconn`): tokio's own `bind`
/// asks for 128, which would refuse (drop) clients the limit made wait.
pub(crate) const BACKLOG: u32 = 1024;

/// Fewest connections served at once, whatever the file limit.
const MIN_CONNECTIONS: usize = 4;

/// The first request's headers must arrive within this time of the accept.
pub(crate) const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// A keep-alive connection with no request for this long is closed (the
/// next request's headers must be complete by then).
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How often a connection's [`ConnectionWatchdog`] is asked whether the
/// client kept a request waiting too long.
const WATCHDOG_EVERY: Duration = Duration::from_millis(500);

/// Pause after an accept error that is not the client's (so a persistent
/// one does not spin).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// How many connections to serve at once with a soft file limit of
/// `soft_limit` (`None`: unlimited): [`MAX_CONNECTIONS`], or the limit less
/// [`FD_RESERVE`] when that is lower.
pub(crate) fn connection_limit(soft_limit: Option<u64>) -> usize {
    let Some(soft) = soft_limit else {
        return MAX_CONNECTIONS;
    };
    let room = usize::try_from(soft.saturating_sub(FD_RESERVE)).unwrap_or(usize::MAX);
    room.clamp(MIN_CONNECTIONS, MAX_CONNECTIONS)
}

/// Binds `addr` with a backlog of [`BACKLOG`].
pub(crate) fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // As tokio's and std's `bind` do on Unix: a restart can bind again
    // while old connections linger in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// The process's soft limit on open files (`None`: unlimited).
pub(crate) fn soft_file_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// A bound listener and how many connections it serves at once.
#[derive(Debug)]
pub(crate) struct AdminListener {
    listener: TcpListener,
    limit: usize,
}

impl AdminListener {
    /// Serves at most `limit` connections at once on `listener`.
    pub(crate) fn new(listener: TcpListener, limit: usize) -> Self {
        Self {
            listener,
            limit: limit.max(1),
        }
    }

    /// Serves `app` until `shutdown` resolves, then stops accepting, lets
    /// every connection finish its request in flight and close, and
    /// returns once all are closed (the caller bounds that wait).
    pub(crate) async fn serve(
        self,
        app: Router,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let Self { listener, limit } = self;
        let permits = Arc::new(Semaphore::new(limit));
        let (drain, draining) = watch::channel(false);
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                biased;
                () = &mut shutdown => break,
                permit = permits.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            let accepted = tokio::select! {
                biased;
                () = &mut shutdown => break,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, _peer)) => {
                    tokio::spawn(serve_connection(
                        stream,
                        permit,
                        app.clone(),
                        draining.clone(),
                    ));
                }
                Err(e) if is_client_error(&e) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "admin API: accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            }
        }
        drop(listener);
        let _ = drain.send(true);
        // Every connection holds a permit until it is closed.
        let all = u32::try_from(limit).unwrap_or(u32::MAX);
        let _ = permits.acquire_many(all).await;
        Ok(())
    }
}

/// An accept error caused by one client (the next accept is fine).
fn is_client_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        e.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    )
}

/// Serves one connection over HTTP/1.1 until it ends, times out (headers,
/// idle, or a request body or response the client stopped taking part in:
/// [`ConnectionWatchdog`]), is asked to close (by a handler, through its
/// [`ConnectionHandle`]) or, after shutdown began, finishes its request in
/// flight. The permit is released
/// when the socket is closed.
async fn serve_connection(
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
    app: Router,
    mut draining: watch::Receiver<bool>,
) {
    let local = match stream.local_addr() {
        Ok(local) => local,
        Err(e) => {
            tracing::debug!(error = %e, "admin API: connection without a local address");
            return;
        }
    };
    let handle = ConnectionHandle::new(local);
    let watchdog = ConnectionWatchdog::default();
    let requests = handle.clone();
    let bodies = watchdog.clone();
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        requests.request_arrived();
        let mut request = request.map(|body| WatchedBody::new(body, bodies.clone()));
        request.extensions_mut().insert(requests.clone());
        tower::ServiceExt::oneshot(app.clone(), request)
    });
    // hyper's header timer runs whenever the connection waits for a
    // request's headers: between requests it is the keep-alive idle limit.
    // The first request gets the shorter HEADER_TIMEOUT below.
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(IDLE_TIMEOUT)
        .serve_connection(
            TokioIo::new(WatchedIo::new(stream, watchdog.clone())),
            service,
        );
    let mut connection = std::pin::pin!(connection);
    let header_deadline = tokio::time::sleep(HEADER_TIMEOUT);
    let mut header_deadline = std::pin::pin!(header_deadline);
    let mut watchdog_every = tokio::time::interval(WATCHDOG_EVERY);
    watchdog_every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut first_request = false;
    let mut shutting_down = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "admin API: connection ended");
                }
                break;
            }
            () = handle.first_request(), if !first_request => first_request = true,
            () = &mut header_deadline, if !first_request => {
                tracing::debug!("admin API: no request headers within {HEADER_TIMEOUT:?}, closed");
                break;
            }
            () = handle.closed() => break,
            _ = watchdog_every.tick() => match watchdog.overdue(std::time::Instant::now()) {
                Some(Overdue::Body) => {
                    tracing::debug!(
                        "admin API: no request body bytes for {BODY_READ_TIMEOUT:?}, closed"
                    );
                    break;
                }
                Some(Overdue::Write) => {
                    tracing::debug!(
                        "admin API: no response bytes taken for {WRITE_TIMEOUT:?}, closed"
                    );
                    break;
                }
                None => {}
            },
            _ = draining.changed(), if !shutting_down => {
                shutting_down = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
    // Returning drops the connection (closing the socket) and then the
    // permit: locals are dropped before parameters.
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_keeps_room_below_the_file_limit() {
        assert_eq!(connection_limit(None), MAX_CONNECTIONS);
        assert_eq!(connection_limit(Some(1 << 20)), MAX_CONNECTIONS);
        assert_eq!(connection_limit(Some(1024 + 128)), MAX_CONNECTIONS);
        assert_eq!(connection_limit(Some(1024)), 1024 - 128);
        assert_eq!(connection_limit(Some(256)), 128);
        assert_eq!(connection_limit(Some(64)), MIN_CONNECTIONS);
        assert_eq!(connection_limit(Some(0)), MIN_CONNECTIONS);
    }
}
