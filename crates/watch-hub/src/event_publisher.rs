//! [`ProvisioningEventPublisher`]: numbers the event lines of CONTRACTS §3 and
//! keeps their bounded history.

use std::sync::Arc;
use std::time::Instant;

use provisioning_provider_api::{
    ProviderHealth, ProviderId, ProviderSnapshot, ProviderTermination, RemoteTopologyEvent,
    SwitchReason,
};

use crate::delivery::EventHistory;
use crate::delivery::Publication;
use crate::line_payloads::{
    ChangeEnvelope, HealthLine, TerminatedLine, TopologyEnvelope, UnavailableLine,
};
use crate::provisioning_event::ProvisioningEvent;
use crate::provisioning_metrics::ProvisioningMetrics;
use crate::published_snapshot::PublishedSnapshot;
use crate::run_id::RunId;

/// Numbers the event lines of CONTRACTS §3 — `run_id` fixed per run,
/// `seq_no` strictly increasing across all line types, `epoch` from 1 and +1
/// on every switch — builds them, and keeps the bounded [`EventHistory`].
///
/// The hub owns one and is its only writer; readers use the history.
pub(crate) struct ProvisioningEventPublisher {
    run_id: RunId,
    seq_no: u64,
    epoch: u64,
    history: EventHistory,
}

impl ProvisioningEventPublisher {
    /// A publisher for run `run_id` with a history bounded to
    /// `max_publications` publications and `max_members` members held by
    /// snapshot lines.
    pub(crate) fn new(run_id: RunId, max_publications: usize, max_members: usize) -> Self {
        Self {
            run_id,
            seq_no: 0,
            epoch: 1,
            history: EventHistory::new(max_publications, max_members),
        }
    }

    /// The run id.
    pub(crate) fn run_id(&self) -> RunId {
        self.run_id
    }

    /// The last `seq_no` given out (0 before the first line).
    pub(crate) fn last_seq_no(&self) -> u64 {
        self.seq_no
    }

    /// The current epoch.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The history (shared).
    pub(crate) fn history(&self) -> &EventHistory {
        &self.history
    }

    fn next_seq(&mut self) -> u64 {
        self.seq_no += 1;
        self.seq_no
    }

    /// A snapshot line followed by `diff` (drained) as its `remote_topology`
    /// lines.
    pub(crate) fn snapshot(
        &mut self,
        provider: ProviderId,
        snapshot: ProviderSnapshot,
        diff: &mut Vec<RemoteTopologyEvent>,
        arrival: Instant,
        metrics: &ProvisioningMetrics,
    ) -> (Arc<PublishedSnapshot>, Publication) {
        let seq_no = self.next_seq();
        let recorder = metrics.latency_recorder(&provider);
        let published = Arc::new(PublishedSnapshot::new(
            self.run_id,
            seq_no,
            self.epoch,
            provider,
            snapshot,
        ));
        let mut lines = Vec::with_capacity(diff.len() + 1);
        lines.push(Arc::new(ProvisioningEvent::Snapshot(published.clone())));
        for event in diff.drain(..) {
            let seq_no = self.next_seq();
            lines.push(Arc::new(ProvisioningEvent::RemoteTopology(
                TopologyEnvelope {
                    seq_no,
                    event,
                    snapshot: published.clone(),
                },
            )));
        }
        (
            published,
            Publication::with_latency(lines, arrival, recorder),
        )
    }

    /// A `provider_changed` line opening a new epoch.
    pub(crate) fn provider_changed(
        &mut self,
        from_provider_id: Option<ProviderId>,
        to_provider_id: ProviderId,
        reason: SwitchReason,
        snapshot_hash: u64,
    ) -> Publication {
        self.epoch += 1;
        let line = ChangeEnvelope {
            run_id: self.run_id,
            seq_no: self.next_seq(),
            epoch: self.epoch,
            from_provider_id,
            to_provider_id,
            reason,
            snapshot_hash,
        };
        Publication::new(vec![Arc::new(ProvisioningEvent::ProviderChanged(line))])
    }

    /// A `provider_health` line; the code is dropped when healthy.
    pub(crate) fn provider_health(
        &mut self,
        provider_id: ProviderId,
        health: ProviderHealth,
        code: Option<&str>,
        detail: &str,
    ) -> Publication {
        let code = match health {
            ProviderHealth::Healthy => None,
            _ => code.map(str::to_owned),
        };
        let line = HealthLine {
            run_id: self.run_id,
            seq_no: self.next_seq(),
            epoch: self.epoch,
            provider_id,
            health,
            code,
            detail: detail.to_owned(),
        };
        Publication::new(vec![Arc::new(ProvisioningEvent::ProviderHealth(line))])
    }

    /// A `provisioning_unavailable` line.
    pub(crate) fn unavailable(&mut self, since_ms: u64) -> Publication {
        let line = UnavailableLine {
            run_id: self.run_id,
            seq_no: self.next_seq(),
            epoch: self.epoch,
            since_ms,
        };
        Publication::new(vec![Arc::new(ProvisioningEvent::ProvisioningUnavailable(
            line,
        ))])
    }

    /// A `terminated` line.
    pub(crate) fn terminated(
        &mut self,
        provider_id: ProviderId,
        termination: ProviderTermination,
    ) -> Publication {
        let line = TerminatedLine {
            run_id: self.run_id,
            seq_no: self.next_seq(),
            epoch: self.epoch,
            provider_id,
            termination,
        };
        Publication::new(vec![Arc::new(ProvisioningEvent::Terminated(line))])
    }
}
