//! [`ConnectionWatchdog`]: closes an admin connection whose client stopped
//! taking part in a request in progress (CONTRACTS §4a rule 5).
//!
//! hyper times only the wait for a request's headers. Once a request is
//! under way nothing else does: a client that announces a body and never
//! sends it keeps its handler waiting, and one that pipelines requests and
//! never reads the answers blocks hyper's writes, both for ever, each
//! holding one of the listener's connection permits. The socket (through
//! [`WatchedIo`](crate::watched_io::WatchedIo)) and the request body
//! (through [`WatchedBody`](crate::watched_body::WatchedBody)) report here
//! when they wait on the client and when it makes progress; the accept loop
//! asks [`overdue`](ConnectionWatchdog::overdue) on a timer.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A request body that receives nothing for this long ends the connection.
pub(crate) const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A response the client takes nothing of for this long ends the
/// connection. Longer than the body bound: a reader on a slow link drains
/// a full socket buffer in bursts; an `/events` client that reads keeps
/// making progress, one that stopped is cut by its stall check sooner.
pub(crate) const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// What a connection waits on the client for, and since when.
#[derive(Clone, Debug, Default)]
pub(crate) struct ConnectionWatchdog {
    inner: Arc<Mutex<Waits>>,
}

#[derive(Debug, Default)]
struct Waits {
    /// The socket refused a write and has taken nothing since.
    write_blocked_since: Option<Instant>,
    /// A handler wants body bytes that have not arrived.
    body_waiting_since: Option<Instant>,
}

/// Why a connection is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Overdue {
    /// The request body stalled for [`BODY_READ_TIMEOUT`].
    Body,
    /// The client took no response bytes for [`WRITE_TIMEOUT`].
    Write,
}

impl ConnectionWatchdog {
    fn waits(&self) -> std::sync::MutexGuard<'_, Waits> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A write found the socket full.
    pub(crate) fn write_blocked(&self) {
        self.waits()
            .write_blocked_since
            .get_or_insert_with(Instant::now);
    }

    /// The socket took response bytes.
    pub(crate) fn wrote(&self) {
        self.waits().write_blocked_since = None;
    }

    /// A handler asked for body bytes that have not arrived.
    pub(crate) fn body_waiting(&self) {
        self.waits()
            .body_waiting_since
            .get_or_insert_with(Instant::now);
    }

    /// Body bytes arrived, the body ended or the handler let go of it.
    pub(crate) fn body_progressed(&self) {
        self.waits().body_waiting_since = None;
    }

    /// Whether the client has kept the connection waiting too long, at
    /// `now`.
    pub(crate) fn overdue(&self, now: Instant) -> Option<Overdue> {
        let waits = self.waits();
        let longer = |since: Option<Instant>, bound| {
            since.is_some_and(|since| now.saturating_duration_since(since) >= bound)
        };
        if longer(waits.body_waiting_since, BODY_READ_TIMEOUT) {
            Some(Overdue::Body)
        } else if longer(waits.write_blocked_since, WRITE_TIMEOUT) {
            Some(Overdue::Write)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_wait_without_progress_is_overdue() {
        let watchdog = ConnectionWatchdog::default();
        let t0 = Instant::now();
        assert_eq!(watchdog.overdue(t0 + Duration::from_secs(3600)), None);

        watchdog.body_waiting();
        watchdog.body_waiting();
        assert_eq!(watchdog.overdue(t0 + Duration::from_secs(9)), None);
        assert_eq!(
            watchdog.overdue(Instant::now() + BODY_READ_TIMEOUT),
            Some(Overdue::Body)
        );
        watchdog.body_progressed();
        assert_eq!(watchdog.overdue(Instant::now() + BODY_READ_TIMEOUT), None);

        watchdog.write_blocked();
        assert_eq!(watchdog.overdue(Instant::now() + BODY_READ_TIMEOUT), None);
        assert_eq!(
            watchdog.overdue(Instant::now() + WRITE_TIMEOUT),
            Some(Overdue::Write)
        );
        watchdog.wrote();
        assert_eq!(watchdog.overdue(Instant::now() + WRITE_TIMEOUT), None);
    }
}
