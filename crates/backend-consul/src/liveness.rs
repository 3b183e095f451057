//! The liveness probe of a Consul provider (CONTRACTS §7 `liveness_*`):
//! `GET /v1/status/leader` through the watch's own HTTP client — the same
//! endpoint, TLS, token and connection pool as the blocking queries.
//!
//! Any answer proves the agent alive, a leader or not: the watch reports
//! what a leaderless cluster means for the members.

use std::sync::Arc;

use provisioning_provider_api::LivenessCheck;

use crate::provider::Shared;

/// One probe.
pub(crate) fn check(shared: Arc<Shared>) -> LivenessCheck {
    Box::pin(async move {
        shared
            .client
            .leader()
            .await
            .map(|_| ())
            .map_err(|e| e.to_fault())
    })
}
