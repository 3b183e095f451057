//! [`AdminState`]: what every admin API handler shares.

use std::sync::{Arc, PoisonError, RwLock};

use cluster_provisioning::ProvisioningHandle;
use cluster_provisioning::registry::SecretRefPolicy;

use crate::bearer_token::BearerToken;
use crate::prometheus_exporter::PrometheusExporter;

/// The running service, the metrics exporter and the token (if any).
/// Cloned per request; the clone shares everything. The service can be
/// replaced (a SIGHUP that changes the policy restarts it).
#[derive(Clone, Debug)]
pub(crate) struct AdminState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    handle: RwLock<ProvisioningHandle>,
    exporter: PrometheusExporter,
    token: Option<BearerToken>,
    secret_refs: SecretRefPolicy,
}

impl AdminState {
    /// The state of one server.
    pub(crate) fn new(
        handle: ProvisioningHandle,
        exporter: PrometheusExporter,
        token: Option<BearerToken>,
        secret_refs: SecretRefPolicy,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                handle: RwLock::new(handle),
                exporter,
                token,
                secret_refs,
            }),
        }
    }

    /// The running service (a cheap clone of its handle).
    pub(crate) fn handle(&self) -> ProvisioningHandle {
        // A handle is replaced in one assignment: a poisoned lock still
        // holds a whole one.
        self.inner
            .handle
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Makes `handle` the running service for every later request.
    pub(crate) fn replace_handle(&self, handle: ProvisioningHandle) {
        *self
            .inner
            .handle
            .write()
            .unwrap_or_else(PoisonError::into_inner) = handle;
    }

    /// The metrics exporter.
    pub(crate) fn exporter(&self) -> &PrometheusExporter {
        &self.inner.exporter
    }

    /// The required token; `None` when auth is off.
    pub(crate) fn token(&self) -> Option<&BearerToken> {
        self.inner.token.as_ref()
    }

    /// What a descriptor sent to `POST /providers` may reference.
    pub(crate) fn secret_refs(&self) -> &SecretRefPolicy {
        &self.inner.secret_refs
    }
}
