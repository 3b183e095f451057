//! Cluster members: [`ClusterNode`] and the stored member schema
//! [`MemberSpec`].

use alloc::collections::BTreeMap;
use alloc::string::String;

use crate::{Incarnation, MemberState, NodeId};

/// Labels of a member, ordered by key (byte order, as the hash needs).
pub type Labels = BTreeMap<String, String>;

/// One member of the cluster as a provider sees it.
///
/// Whether a member is blocked is not part of the node: a snapshot carries a
/// separate block list, which may name ids that are not members.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct ClusterNode {
    /// Member id; unique within a snapshot.
    pub id: NodeId,
    /// Host name or address to reach the member at.
    pub host: String,
    /// Port to reach the member at.
    pub port: u16,
    /// Free-form labels (zone, version, role, ...).
    #[cfg_attr(feature = "serde", serde(default))]
    pub labels: Labels,
    /// Which life of the member this is; `None` when the backend has no
    /// such notion (never invented). A change is a restart: `leave`, `join`.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub incarnation: Option<Incarnation>,
    /// Serving or draining; written only when draining, so a v1 member
    /// object is unchanged.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "MemberState::is_serving")
    )]
    pub state: MemberState,
}

impl ClusterNode {
    /// A member without labels.
    pub fn new(id: impl Into<NodeId>, host: impl Into<String>, port: u16) -> Self {
        Self {
            id: id.into(),
            host: host.into(),
            port,
            labels: Labels::new(),
            incarnation: None,
            state: MemberState::Serving,
        }
    }

    /// Adds or replaces a label.
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Sets the incarnation.
    pub fn with_incarnation(mut self, incarnation: Incarnation) -> Self {
        self.incarnation = Some(incarnation);
        self
    }

    /// Sets the state.
    pub fn with_state(mut self, state: MemberState) -> Self {
        self.state = state;
        self
    }

    /// Whether `self` and `other` are the same life of a member at the same
    /// place: equal but for `state`. When they are not, the change is a
    /// `leave` then a `join` (CONTRACTS §3).
    pub fn same_life(&self, other: &Self) -> bool {
        self.id == other.id
            && self.host == other.host
            && self.port == other.port
            && self.labels == other.labels
            && self.incarnation == other.incarnation
    }

    /// Whether the hash encodes the v2 fields for this member (CONTRACTS §6):
    /// it has an incarnation or is draining.
    pub fn has_lifecycle(&self) -> bool {
        self.incarnation.is_some() || self.state != MemberState::Serving
    }
}

/// The stored member schema of CONTRACTS §1: the `in_memory` provider's
/// `watch.members` entries and the JSON value of every etcd key.
///
/// `{"id": STRING, "host": STRING, "port": 0..65535, "labels": {..}, "blocked": BOOL,
/// "incarnation": STRING, "state": "serving" | "draining"}`
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct MemberSpec {
    /// Member id.
    pub id: NodeId,
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Labels, empty when absent.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "BTreeMap::is_empty")
    )]
    pub labels: Labels,
    /// Whether the member is on the block list.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "is_false"))]
    pub blocked: bool,
    /// Which life of the member this is, when the JSON says.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub incarnation: Option<Incarnation>,
    /// Serving (default) or draining.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "MemberState::is_serving")
    )]
    pub state: MemberState,
}

#[cfg(feature = "serde")]
fn is_false(value: &bool) -> bool {
    !*value
}

impl MemberSpec {
    /// Splits the spec into the node and its blocked flag.
    pub fn into_node(self) -> (ClusterNode, bool) {
        (
            ClusterNode {
                id: self.id,
                host: self.host,
                port: self.port,
                labels: self.labels,
                incarnation: self.incarnation,
                state: self.state,
            },
            self.blocked,
        )
    }
}

impl From<ClusterNode> for MemberSpec {
    fn from(node: ClusterNode) -> Self {
        Self {
            id: node.id,
            host: node.host,
            port: node.port,
            labels: node.labels,
            blocked: false,
            incarnation: node.incarnation,
            state: node.state,
        }
    }
}
