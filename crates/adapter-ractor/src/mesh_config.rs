//! [`MeshConfig`]: the adapter's timings.

use std::time::Duration;

/// How the adapter paces itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MeshConfig {
    /// Reconcile at least this often, besides on every topology item and
    /// session event (catches connects that failed silently).
    pub tick: Duration,
    /// An inbound session from a peer that was never a published member is
    /// kept this long before it is closed: a newcomer may connect before its
    /// registration reached this node.
    pub grace: Duration,
    /// First wait before retrying a failed connect to a peer; doubles per
    /// failure up to `retry_cap`, and resets once a session is up.
    pub retry_initial: Duration,
    /// Longest wait between connects to one peer.
    pub retry_cap: Duration,
    /// A connect attempt that has produced no session after this long is
    /// given up and counts as a failure.
    pub connect_timeout: Duration,
}

impl MeshConfig {
    /// Short waits for loopback tests and demos: reconcile every 200 ms,
    /// retry from 100 ms up to 1 s.
    pub fn tight() -> Self {
        Self {
            tick: Duration::from_millis(200),
            retry_initial: Duration::from_millis(100),
            retry_cap: Duration::from_secs(1),
            ..Self::default()
        }
    }
}

impl Default for MeshConfig {
    fn default() -> Self {
        Self {
            tick: Duration::from_millis(500),
            grace: Duration::from_secs(5),
            retry_initial: Duration::from_millis(200),
            retry_cap: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
        }
    }
}
