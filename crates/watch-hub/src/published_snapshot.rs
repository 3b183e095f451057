//! [`PublishedSnapshot`]: a snapshot as the hub published it, shared by every
//! consumer through one `Arc`.

use std::fmt;
use std::sync::Arc;

use provisioning_provider_api::{
    ClusterNode, MemberState, NodeId, ProviderId, ProviderSnapshot, format_hash,
};
use serde::ser::{SerializeMap, SerializeSeq, SerializeStruct};

use crate::run_id::RunId;

/// The envelope of decision 3 for a snapshot: numbering, provider and the
/// shared snapshot. Bridges receive it by reference and may keep a clone of
/// the `Arc` (one pointer copy, never a copy of the members).
pub type SnapshotEnvelope = Arc<PublishedSnapshot>;

/// A snapshot as the hub published it: the provider's view plus the
/// numbering that orders it (`run_id`, `seq_no`, `epoch`) and its hash.
///
/// One instance exists per publication and every consumer shares it; the
/// `remote_topology` events of the same publication point at it too.
/// Serialising it writes the CONTRACTS §3 `snapshot` object without `type`
/// (the shape of the admin API's `GET /topology`), streaming from the shared
/// members without building a copy.
pub struct PublishedSnapshot {
    run_id: RunId,
    seq_no: u64,
    epoch: u64,
    provider_id: ProviderId,
    hash: u64,
    snapshot: ProviderSnapshot,
}

impl PublishedSnapshot {
    /// Wraps `snapshot` with its numbering; hashes it if not hashed yet.
    pub fn new(
        run_id: RunId,
        seq_no: u64,
        epoch: u64,
        provider_id: ProviderId,
        snapshot: ProviderSnapshot,
    ) -> Self {
        Self {
            run_id,
            seq_no,
            epoch,
            provider_id,
            hash: snapshot.hash(),
            snapshot,
        }
    }

    /// The run this snapshot was published in.
    pub fn run_id(&self) -> RunId {
        self.run_id
    }

    /// The snapshot line's `seq_no`.
    pub fn seq_no(&self) -> u64 {
        self.seq_no
    }

    /// The epoch (+1 on every provider switch).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The provider whose view this is.
    pub fn provider_id(&self) -> &ProviderId {
        &self.provider_id
    }

    /// The content hash of CONTRACTS §6.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// The provider's view.
    pub fn snapshot(&self) -> &ProviderSnapshot {
        &self.snapshot
    }

    /// Members, sorted by id.
    pub fn members(&self) -> &[ClusterNode] {
        self.snapshot.members()
    }

    /// Blocked ids, sorted.
    pub fn blocked(&self) -> &[NodeId] {
        self.snapshot.blocked()
    }

    /// Writes the fields of the `snapshot` line, with or without `type`.
    pub(crate) fn serialize_line<S: serde::Serializer>(
        &self,
        serializer: S,
        with_type: bool,
    ) -> Result<S::Ok, S::Error> {
        let mut line = serializer.serialize_struct("snapshot", 10)?;
        if with_type {
            line.serialize_field("type", "snapshot")?;
        }
        line.serialize_field("run_id", &self.run_id)?;
        line.serialize_field("seq_no", &self.seq_no)?;
        line.serialize_field("epoch", &self.epoch)?;
        line.serialize_field("provider_id", self.provider_id.as_str())?;
        line.serialize_field("hash", &HashField(self.hash))?;
        line.serialize_field("health", self.snapshot.health().as_str())?;
        line.serialize_field("revision", &self.snapshot.revision())?;
        line.serialize_field("members", &Members(self.snapshot.members()))?;
        line.serialize_field("blocked", &Blocked(self.snapshot.blocked()))?;
        line.end()
    }
}

impl serde::Serialize for PublishedSnapshot {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.serialize_line(serializer, false)
    }
}

impl fmt::Debug for PublishedSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Members are left out: a 100k-member debug line helps nobody.
        f.debug_struct("PublishedSnapshot")
            .field("run_id", &self.run_id)
            .field("seq_no", &self.seq_no)
            .field("epoch", &self.epoch)
            .field("provider_id", &self.provider_id)
            .field("hash", &format_hash(self.hash))
            .field("members", &self.snapshot.len())
            .field("blocked", &self.snapshot.blocked().len())
            .finish()
    }
}

/// A hash as the contract's 16 lower-case hex digits.
pub(crate) struct HashField(pub(crate) u64);

impl serde::Serialize for HashField {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&format_hash(self.0))
    }
}

/// One member as `{"id","host","port","labels"}`, `labels` always present,
/// then `incarnation` only when the member has one and `state` only when it
/// is draining, so a v1 member object is unchanged (CONTRACTS §3).
pub(crate) struct Member<'a>(pub(crate) &'a ClusterNode);

impl serde::Serialize for Member<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let node = self.0;
        let mut member = serializer.serialize_struct("member", 6)?;
        member.serialize_field("id", node.id.as_str())?;
        member.serialize_field("host", &node.host)?;
        member.serialize_field("port", &node.port)?;
        member.serialize_field("labels", &Labels(node))?;
        match &node.incarnation {
            Some(incarnation) => member.serialize_field("incarnation", incarnation.as_str())?,
            None => member.skip_field("incarnation")?,
        }
        match node.state {
            MemberState::Serving => member.skip_field("state")?,
            MemberState::Draining => member.serialize_field("state", node.state.as_str())?,
        }
        member.end()
    }
}

struct Labels<'a>(&'a ClusterNode);

impl serde::Serialize for Labels<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.labels.len()))?;
        for (key, value) in &self.0.labels {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

struct Members<'a>(&'a [ClusterNode]);

impl serde::Serialize for Members<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for node in self.0 {
            seq.serialize_element(&Member(node))?;
        }
        seq.end()
    }
}

struct Blocked<'a>(&'a [NodeId]);

impl serde::Serialize for Blocked<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for id in self.0 {
            seq.serialize_element(id.as_str())?;
        }
        seq.end()
    }
}
