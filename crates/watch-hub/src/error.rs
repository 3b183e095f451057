//! [`HubError`]: what can go wrong when configuring, attaching or stopping.

/// An error of the watch hub.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HubError {
    /// A configuration value is out of range.
    #[error("invalid watch hub configuration: {0}")]
    InvalidConfig(String),
    /// `activate` was called after a provider had been active; later
    /// activations are switches.
    #[error("a provider was already active in this run; use switch")]
    AlreadyActivated,
    /// The hub was shut down; nothing can be attached any more.
    #[error("the watch hub is shut down")]
    ShutDown,
    /// A worker thread could not be started.
    #[error("could not start a watch hub worker thread")]
    Spawn {
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// Some consumers were still inside a bridge call when the shutdown
    /// timeout passed; their threads end when the call returns.
    #[error("watch hub consumers still running after the shutdown timeout: {consumers:?}")]
    ShutdownTimedOut {
        /// Names of the consumers still running.
        consumers: Vec<String>,
    },
}

impl HubError {
    /// Whether trying again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Spawn { .. } | Self::ShutdownTimedOut { .. })
    }
}
