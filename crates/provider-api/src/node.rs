//! Cluster members: [`ClusterNode`] and the stored member schema
//! [`MemberSpec`].

use alloc::collections::BTreeMap;
use alloc::string::String;

use crate::NodeId;

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
}

impl ClusterNode {
    /// A member without labels.
    pub fn new(id: impl Into<NodeId>, host: impl Into<String>, port: u16) -> Self {
        Self {
            id: id.into(),
            host: host.into(),
            port,
            labels: Labels::new(),
        }
    }

    /// Adds or replaces a label.
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }
}

/// The stored member schema of CONTRACTS §1: the `in_memory` provider's
/// `watch.members` entries and the JSON value of every etcd key.
///
/// `{"id": STRING, "host": STRING, "port": 0..65535, "labels": {..}, "blocked": BOOL}`
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
        }
    }
}
