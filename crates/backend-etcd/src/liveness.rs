//! [`LivenessChannel`]: the liveness probe of an etcd provider (CONTRACTS
//! §7 `liveness_*`), a `Status` call on the channel of the stream's current
//! session — the same endpoint, TLS and credentials as the watch.
//!
//! A `SIGSTOP`ped etcd keeps its socket open: the kernel accepts the call
//! and nothing answers. The gRPC keep-alive would notice after its
//! interval plus timeout (15 s here, bounded below by etcd's
//! `--grpc-keepalive-min-time`); the service's per-probe deadline
//! (`liveness_timeout`) notices within a second.

use std::sync::{Mutex, PoisonError};

use etcd_client::MaintenanceClient;
use provisioning_provider_api::LivenessCheck;

use crate::error::ClientError;

/// The channel the probes use: the latest session's, shared with it.
#[derive(Default)]
pub(crate) struct LivenessChannel {
    current: Mutex<Option<(String, MaintenanceClient)>>,
}

impl LivenessChannel {
    /// Probes go to `endpoint` through `client` from now on (a stream just
    /// connected there). A stream that loses its session keeps the channel
    /// until it connects again, so probes meanwhile test the endpoint it
    /// will retry.
    pub(crate) fn attach(&self, endpoint: &str, client: MaintenanceClient) {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((endpoint.to_owned(), client));
    }

    /// One `Status` call; `None` before any stream connected.
    pub(crate) fn check(&self) -> Option<LivenessCheck> {
        let (endpoint, mut client) = self
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()?;
        Some(Box::pin(async move {
            match client.status().await {
                Ok(_) => Ok(()),
                // The member answered: it is alive, only cut off from its
                // leader. Leaving it is the stream's job (its watch needs a
                // leader and moves to another endpoint); counting the answer
                // as a liveness fault would declare the whole provider
                // unreachable while the majority serves.
                Err(source) if answered_without_leader(&source) => Ok(()),
                Err(source) => Err(ClientError::Request {
                    op: "status",
                    endpoint,
                    source,
                }
                .to_fault()),
            }
        }))
    }
}

/// etcd's "no leader" answer (gRPC `Unavailable`, sent by a member that is
/// up but has lost its leader).
fn answered_without_leader(error: &etcd_client::Error) -> bool {
    matches!(error, etcd_client::Error::GRpcStatus(status)
        if status.code() == tonic::Code::Unavailable && status.message().contains("no leader"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_no_leader_answer_is_an_answer() {
        let status = |code, message: &str| {
            etcd_client::Error::GRpcStatus(tonic::Status::new(code, message.to_owned()))
        };
        assert!(answered_without_leader(&status(
            tonic::Code::Unavailable,
            "etcdserver: no leader"
        )));
        assert!(!answered_without_leader(&status(
            tonic::Code::Unavailable,
            "tcp connect error"
        )));
        assert!(!answered_without_leader(&status(
            tonic::Code::DeadlineExceeded,
            "etcdserver: no leader"
        )));
    }
}
