//! [`LivenessClient`]: the liveness probe of a Kubernetes provider
//! (CONTRACTS §7 `liveness_*`): the stream's own `GET /version` request, on
//! the client of its current connection — the same API server, TLS and
//! credentials as the watch.
//!
//! The stream keeps its slower `/version` heartbeat: kube-runtime's watcher
//! swallows bookmarks, so that request is the only liveness evidence of a
//! quiet watch, while a probe's success is not (it never resets the
//! no-response timeout).

use std::sync::{Mutex, PoisonError};

use kube::Client;
use provisioning_provider_api::{FaultKind, LivenessCheck, ProviderFault};

use crate::error::{Failure, Target, Verdict, classify};

/// The client the probes use: the latest connection's.
#[derive(Default)]
pub(crate) struct LivenessClient {
    current: Mutex<Option<(Client, Target)>>,
}

impl LivenessClient {
    /// Probes go through `client` from now on (a stream just connected).
    /// A stream that loses its connection keeps the client until it
    /// connects again, so probes meanwhile test the server it will retry.
    pub(crate) fn attach(&self, client: Client, target: Target) {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some((client, target));
    }

    /// One `GET /version`; `None` before any stream connected.
    pub(crate) fn check(&self) -> Option<LivenessCheck> {
        let (client, target) = self
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()?;
        Some(Box::pin(async move {
            let error = match client.apiserver_version().await {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            Err(match classify(&Failure::Ping(error), &target) {
                Verdict::Fault(fault) => fault,
                Verdict::Terminate(t) => ProviderFault::retryable(
                    FaultKind::BackendUnavailable,
                    format!("GET /version: {t:?}"),
                ),
            })
        }))
    }
}
