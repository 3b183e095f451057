//! [`AdminState`]: what every admin API handler shares.

use std::sync::Arc;

use cluster_provisioning::ProvisioningHandle;

use crate::bearer_token::BearerToken;
use crate::prometheus_exporter::PrometheusExporter;

/// The running service, the metrics exporter and the token (if any).
/// Cloned per request; the clone shares everything. The service runs for
/// the server's whole life (a SIGHUP changes its set and policy in place).
#[derive(Clone, Debug)]
pub(crate) struct AdminState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    handle: ProvisioningHandle,
    exporter: PrometheusExporter,
    token: Option<BearerToken>,
}

impl AdminState {
    /// The state of one server.
    pub(crate) fn new(
        handle: ProvisioningHandle,
        exporter: PrometheusExporter,
        token: Option<BearerToken>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                handle,
                exporter,
                token,
            }),
        }
    }

    /// The running service (a cheap clone of its handle).
    pub(crate) fn handle(&self) -> ProvisioningHandle {
        self.inner.handle.clone()
    }

    /// The metrics exporter.
    pub(crate) fn exporter(&self) -> &PrometheusExporter {
        &self.inner.exporter
    }

    /// The required token; `None` when auth is off.
    pub(crate) fn token(&self) -> Option<&BearerToken> {
        self.inner.token.as_ref()
    }
}
