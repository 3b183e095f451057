//! [`PrometheusExporter`]: the process-wide `metrics` recorder behind
//! `GET /metrics`.

use std::time::Duration;

use cluster_provisioning::hub::{LATENCY_BUCKETS, SNAPSHOT_LATENCY_SECONDS};
use cluster_provisioning::registry::ErrorCode;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::cli_error::CliError;

/// How often histograms are drained into their buckets between scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The installed Prometheus recorder.
#[derive(Clone)]
pub(crate) struct PrometheusExporter {
    handle: PrometheusHandle,
}

impl std::fmt::Debug for PrometheusExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrometheusExporter")
    }
}

impl PrometheusExporter {
    /// Installs the global recorder (before the service records anything)
    /// with the latency buckets of CONTRACTS §5, so the latency is exported
    /// as a histogram, and starts its upkeep task.
    pub(crate) fn install() -> Result<Self, CliError> {
        let fail = |e: &dyn std::fmt::Display| {
            CliError::runtime(
                ErrorCode::ProvisioningUnavailable,
                format!("cannot install the Prometheus recorder: {e}"),
            )
        };
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(SNAPSHOT_LATENCY_SECONDS.to_owned()),
                &LATENCY_BUCKETS,
            )
            .map_err(|e| fail(&e))?
            .install_recorder()
            .map_err(|e| fail(&e))?;
        let upkeep = handle.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(UPKEEP_EVERY);
            loop {
                every.tick().await;
                upkeep.run_upkeep();
            }
        });
        Ok(Self { handle })
    }

    /// A recorder that is not installed (for tests: only one can be).
    #[cfg(test)]
    pub(crate) fn detached() -> Self {
        Self {
            handle: PrometheusBuilder::new().build_recorder().handle(),
        }
    }

    /// The Prometheus text exposition of every metric.
    pub(crate) fn render(&self) -> String {
        self.handle.render()
    }
}
