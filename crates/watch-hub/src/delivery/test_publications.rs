//! Publications built by hand for the delivery engine's own tests: the
//! hub's publisher sits above the engine, so the engine's tests do not use
//! it.

use std::sync::Arc;

use provisioning_provider_api::{ProviderId, ProviderSnapshot, ProviderTermination};

use super::publication::Publication;
use crate::line_payloads::{TerminatedLine, UnavailableLine};
use crate::provisioning_event::ProvisioningEvent;
use crate::published_snapshot::PublishedSnapshot;
use crate::run_id::RunId;

const RUN: RunId = RunId::from_u64(1);

pub(super) fn pid(id: &str) -> ProviderId {
    ProviderId::new(id).unwrap()
}

/// A `provisioning_unavailable` line numbered `seq_no`.
pub(super) fn unavailable(seq_no: u64, since_ms: u64) -> Publication {
    Publication::new(vec![Arc::new(ProvisioningEvent::ProvisioningUnavailable(
        UnavailableLine {
            run_id: RUN,
            seq_no,
            epoch: 0,
            since_ms,
        },
    ))])
}

/// A `terminated` line (the provider ended) numbered `seq_no`.
pub(super) fn terminated(seq_no: u64, provider: &str) -> Publication {
    Publication::new(vec![Arc::new(ProvisioningEvent::Terminated(
        TerminatedLine {
            run_id: RUN,
            seq_no,
            epoch: 0,
            provider_id: pid(provider),
            termination: ProviderTermination::Ended,
        },
    ))])
}

/// An empty snapshot of `provider` numbered `seq_no`, without diff lines.
pub(super) fn snapshot(seq_no: u64, provider: &str) -> Publication {
    let published =
        PublishedSnapshot::new(RUN, seq_no, 1, pid(provider), ProviderSnapshot::empty());
    Publication::new(vec![Arc::new(ProvisioningEvent::Snapshot(Arc::new(
        published,
    )))])
}
