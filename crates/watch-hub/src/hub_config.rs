//! [`HubConfig`]: the watch hub's settings.

use std::time::Duration;

use crate::error::HubError;
use crate::provisioning_metrics::ProvisioningMetrics;
use crate::run_id::RunId;

/// Settings of a [`ProviderWatchHub`](crate::ProviderWatchHub).
///
/// `max_shrink_ratio` and `shrink_confirm` come from the failover policy
/// (CONTRACTS §7); the rest bound memory.
#[derive(Debug, Clone)]
pub struct HubConfig {
    pub(crate) max_shrink_ratio: f64,
    pub(crate) shrink_confirm: Duration,
    pub(crate) queue_capacity: usize,
    pub(crate) history_publications: usize,
    pub(crate) history_members: usize,
    pub(crate) run_id: Option<RunId>,
    pub(crate) metrics: Option<ProvisioningMetrics>,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            max_shrink_ratio: 0.5,
            shrink_confirm: Duration::from_secs(5),
            queue_capacity: 64,
            history_publications: 1024,
            history_members: 262_144,
            run_id: None,
            metrics: None,
        }
    }
}

impl HubConfig {
    /// The defaults: ratio 0.5, confirm 5 s, 64 publications per consumer
    /// queue, history of 1024 publications holding at most 262,144 members.
    pub fn new() -> Self {
        Self::default()
    }

    /// A shrink removing more than this share of the published members is
    /// held (0 < ratio ≤ 1).
    pub fn with_max_shrink_ratio(mut self, ratio: f64) -> Self {
        self.max_shrink_ratio = ratio;
        self
    }

    /// How long a suspicious shrink is held before it is published.
    pub fn with_shrink_confirm(mut self, confirm: Duration) -> Self {
        self.shrink_confirm = confirm;
        self
    }

    /// Publications each consumer queue holds before the consumer is resynced.
    pub fn with_queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity;
        self
    }

    /// Bounds of the `since` history: publications, and members held by its
    /// snapshot lines (the newest publication is always kept).
    pub fn with_history(mut self, publications: usize, members: usize) -> Self {
        self.history_publications = publications;
        self.history_members = members;
        self
    }

    /// A fixed run id (default: random).
    pub fn with_run_id(mut self, run_id: RunId) -> Self {
        self.run_id = Some(run_id);
        self
    }

    /// Metrics to record into (default: new ones).
    pub fn with_metrics(mut self, metrics: ProvisioningMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    pub(crate) fn validate(&self) -> Result<(), HubError> {
        if !(self.max_shrink_ratio > 0.0 && self.max_shrink_ratio <= 1.0) {
            return Err(HubError::InvalidConfig(format!(
                "max_shrink_ratio must be in (0, 1], got {}",
                self.max_shrink_ratio
            )));
        }
        if self.queue_capacity == 0 {
            return Err(HubError::InvalidConfig(
                "queue capacity must be at least 1".into(),
            ));
        }
        if self.history_publications == 0 {
            return Err(HubError::InvalidConfig(
                "history must hold at least 1 publication".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_rejects_out_of_range_values() {
        assert!(HubConfig::new().validate().is_ok());
        assert!(
            HubConfig::new()
                .with_max_shrink_ratio(1.0)
                .validate()
                .is_ok()
        );
        for ratio in [0.0, -0.1, 1.5, f64::NAN] {
            let error = HubConfig::new()
                .with_max_shrink_ratio(ratio)
                .validate()
                .unwrap_err();
            assert!(matches!(error, HubError::InvalidConfig(_)), "{ratio}");
        }
        assert!(HubConfig::new().with_queue_capacity(0).validate().is_err());
        assert!(HubConfig::new().with_history(0, 10).validate().is_err());
    }
}
