//! [`ShutdownSignals`]: SIGINT and SIGTERM, registered before the service
//! starts so an early signal is not lost.

use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::cli_error::CliError;
use cluster_provisioning::registry::ErrorCode;

/// SIGINT and SIGTERM handlers of the process.
#[derive(Debug)]
pub(crate) struct ShutdownSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl ShutdownSignals {
    /// Registers both handlers (needs the tokio runtime).
    pub(crate) fn register() -> Result<Self, CliError> {
        let install = |kind: SignalKind, name: &str| {
            signal(kind).map_err(|e| {
                CliError::runtime(
                    ErrorCode::ProvisioningUnavailable,
                    format!("cannot install the {name} handler: {e}"),
                )
            })
        };
        Ok(Self {
            interrupt: install(SignalKind::interrupt(), "SIGINT")?,
            terminate: install(SignalKind::terminate(), "SIGTERM")?,
        })
    }

    /// Waits for the next SIGINT or SIGTERM; returns its name.
    pub(crate) async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}
