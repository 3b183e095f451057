//! The payloads of the CONTRACTS §3 lines other than `snapshot`: each is also
//! the envelope a bridge or subscriber receives for that line.

use std::sync::Arc;

use provisioning_provider_api::{
    ProviderHealth, ProviderId, ProviderTermination, RemoteTopologyEvent, SwitchReason,
};
use serde::ser::SerializeStruct;

use crate::published_snapshot::{HashField, Member, PublishedSnapshot};
use crate::run_id::RunId;

/// A `remote_topology` line: one membership change of a publication.
///
/// It points at the snapshot it leads to (the shared `Arc`, not a copy), from
/// which it takes `run_id`, `epoch`, `provider_id` and `snapshot_hash`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TopologyEnvelope {
    /// This line's `seq_no`.
    pub seq_no: u64,
    /// The change.
    pub event: RemoteTopologyEvent,
    /// The snapshot this change leads to.
    pub snapshot: Arc<PublishedSnapshot>,
}

impl TopologyEnvelope {
    /// The epoch of the publication.
    pub fn epoch(&self) -> u64 {
        self.snapshot.epoch()
    }

    /// The provider whose snapshot this change leads to.
    pub fn provider_id(&self) -> &ProviderId {
        self.snapshot.provider_id()
    }

    /// The hash of the snapshot this change leads to.
    pub fn snapshot_hash(&self) -> u64 {
        self.snapshot.hash()
    }

    pub(crate) fn serialize_line<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut line = serializer.serialize_struct("remote_topology", 9)?;
        line.serialize_field("type", "remote_topology")?;
        line.serialize_field("run_id", &self.snapshot.run_id())?;
        line.serialize_field("seq_no", &self.seq_no)?;
        line.serialize_field("epoch", &self.snapshot.epoch())?;
        line.serialize_field("event", self.event.kind().as_str())?;
        line.serialize_field("node_id", self.event.node_id().as_str())?;
        if let Some(member) = self.event.member() {
            line.serialize_field("member", &Member(member))?;
        }
        line.serialize_field("provider_id", self.snapshot.provider_id().as_str())?;
        line.serialize_field("snapshot_hash", &HashField(self.snapshot.hash()))?;
        line.end()
    }
}

/// A `provider_changed` line: the active provider switched.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChangeEnvelope {
    /// The run.
    pub run_id: RunId,
    /// This line's `seq_no`.
    pub seq_no: u64,
    /// The new epoch.
    pub epoch: u64,
    /// The previously active provider (after all-down: the last active one);
    /// `None` only when no provider was ever active.
    pub from_provider_id: Option<ProviderId>,
    /// The provider now active.
    pub to_provider_id: ProviderId,
    /// Why.
    pub reason: SwitchReason,
    /// The hash of the snapshot published right after this line.
    pub snapshot_hash: u64,
}

impl ChangeEnvelope {
    pub(crate) fn serialize_line<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut line = serializer.serialize_struct("provider_changed", 8)?;
        line.serialize_field("type", "provider_changed")?;
        line.serialize_field("run_id", &self.run_id)?;
        line.serialize_field("seq_no", &self.seq_no)?;
        line.serialize_field("epoch", &self.epoch)?;
        line.serialize_field(
            "from_provider_id",
            &self.from_provider_id.as_ref().map(ProviderId::as_str),
        )?;
        line.serialize_field("to_provider_id", self.to_provider_id.as_str())?;
        line.serialize_field("reason", self.reason.as_str())?;
        line.serialize_field("snapshot_hash", &HashField(self.snapshot_hash))?;
        line.end()
    }
}

/// A `provider_health` line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HealthLine {
    /// The run.
    pub run_id: RunId,
    /// This line's `seq_no`.
    pub seq_no: u64,
    /// The epoch.
    pub epoch: u64,
    /// The provider.
    pub provider_id: ProviderId,
    /// Its new health.
    pub health: ProviderHealth,
    /// The error code (ARCHITECTURE "Error kinds"); `None` when healthy.
    pub code: Option<String>,
    /// Free text.
    pub detail: String,
}

impl HealthLine {
    pub(crate) fn serialize_line<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut line = serializer.serialize_struct("provider_health", 8)?;
        line.serialize_field("type", "provider_health")?;
        line.serialize_field("run_id", &self.run_id)?;
        line.serialize_field("seq_no", &self.seq_no)?;
        line.serialize_field("epoch", &self.epoch)?;
        line.serialize_field("provider_id", self.provider_id.as_str())?;
        line.serialize_field("health", self.health.as_str())?;
        line.serialize_field("code", &self.code)?;
        line.serialize_field("detail", &self.detail)?;
        line.end()
    }
}

/// A `provisioning_unavailable` line: no provider is usable.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnavailableLine {
    /// The run.
    pub run_id: RunId,
    /// This line's `seq_no`.
    pub seq_no: u64,
    /// The epoch.
    pub epoch: u64,
    /// Since when, in milliseconds since the Unix epoch.
    pub since_ms: u64,
}

impl UnavailableLine {
    pub(crate) fn serialize_line<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut line = serializer.serialize_struct("provisioning_unavailable", 5)?;
        line.serialize_field("type", "provisioning_unavailable")?;
        line.serialize_field("run_id", &self.run_id)?;
        line.serialize_field("seq_no", &self.seq_no)?;
        line.serialize_field("epoch", &self.epoch)?;
        line.serialize_field("since_ms", &self.since_ms)?;
        line.end()
    }
}

/// A `terminated` line: a provider's stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TerminatedLine {
    /// The run.
    pub run_id: RunId,
    /// This line's `seq_no`.
    pub seq_no: u64,
    /// The epoch.
    pub epoch: u64,
    /// The provider.
    pub provider_id: ProviderId,
    /// Why the stream ended; `reason` on the line is `ended` or `errored`,
    /// and an error's text goes to `detail` (empty for `ended`).
    pub termination: ProviderTermination,
}

impl TerminatedLine {
    /// The line's `detail`.
    pub fn detail(&self) -> &str {
        match &self.termination {
            ProviderTermination::Ended => "",
            ProviderTermination::Errored { reason, .. } => reason,
        }
    }

    pub(crate) fn serialize_line<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut line = serializer.serialize_struct("terminated", 7)?;
        line.serialize_field("type", "terminated")?;
        line.serialize_field("run_id", &self.run_id)?;
        line.serialize_field("seq_no", &self.seq_no)?;
        line.serialize_field("epoch", &self.epoch)?;
        line.serialize_field("provider_id", self.provider_id.as_str())?;
        line.serialize_field("reason", self.termination.as_str())?;
        line.serialize_field("detail", self.detail())?;
        line.end()
    }
}

/// A `resync` line: for one consumer only. It has no `seq_no` of its own and
/// its JSON carries no `seq_no` key (CONTRACTS §3): a consumer that drops
/// lines at or below its high-water mark must never drop the snapshot that
/// follows. `as_of_seq_no` is the re-sent snapshot's `seq_no`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResyncLine {
    /// The run.
    pub run_id: RunId,
    /// The re-sent snapshot's epoch.
    pub epoch: u64,
    /// The re-sent snapshot's `seq_no`: the consumer's new high-water mark.
    pub as_of_seq_no: u64,
}

impl ResyncLine {
    /// The resync announcing `snapshot`.
    pub fn for_snapshot(snapshot: &PublishedSnapshot) -> Self {
        Self {
            run_id: snapshot.run_id(),
            epoch: snapshot.epoch(),
            as_of_seq_no: snapshot.seq_no(),
        }
    }

    pub(crate) fn serialize_line<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut line = serializer.serialize_struct("resync", 4)?;
        line.serialize_field("type", "resync")?;
        line.serialize_field("run_id", &self.run_id)?;
        line.serialize_field("epoch", &self.epoch)?;
        line.serialize_field("as_of_seq_no", &self.as_of_seq_no)?;
        line.end()
    }
}
