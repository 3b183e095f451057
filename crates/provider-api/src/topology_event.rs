//! [`RemoteTopologyEvent`]: the Join/Leave/Serving/Draining/Blocked/Unblocked
//! events that turn one published snapshot into the next.

use core::fmt;

use crate::{ClusterNode, NodeId};

/// One membership change (CONTRACTS §3 `remote_topology`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RemoteTopologyEvent {
    /// A member appeared (or reappeared with new host, port, labels or
    /// incarnation: a restart).
    Join(ClusterNode),
    /// A member is gone (or about to reappear changed).
    Leave(NodeId),
    /// A draining member is serving again; carries the member as it now is.
    Serving(ClusterNode),
    /// A member is draining: still reachable, about to go; carries the
    /// member as it now is.
    Draining(ClusterNode),
    /// An id was put on the block list.
    Blocked(NodeId),
    /// An id was taken off the block list.
    Unblocked(NodeId),
}

/// The kind of a [`RemoteTopologyEvent`], with its contract string. Kinds
/// order as the contract emits them: leave, join, serving, draining,
/// unblocked, blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TopologyEventKind {
    /// `leave`.
    Leave,
    /// `join`.
    Join,
    /// `serving`.
    Serving,
    /// `draining`.
    Draining,
    /// `unblocked`.
    Unblocked,
    /// `blocked`.
    Blocked,
}

impl TopologyEventKind {
    /// The contract string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Join => "join",
            Self::Leave => "leave",
            Self::Serving => "serving",
            Self::Draining => "draining",
            Self::Blocked => "blocked",
            Self::Unblocked => "unblocked",
        }
    }
}

impl fmt::Display for TopologyEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl RemoteTopologyEvent {
    /// The member id the event is about.
    pub fn node_id(&self) -> &NodeId {
        match self {
            Self::Join(node) | Self::Serving(node) | Self::Draining(node) => &node.id,
            Self::Leave(id) | Self::Blocked(id) | Self::Unblocked(id) => id,
        }
    }

    /// The event's kind. Kinds order as the contract emits them:
    /// leave, join, serving, draining, unblocked, blocked.
    pub fn kind(&self) -> TopologyEventKind {
        match self {
            Self::Join(_) => TopologyEventKind::Join,
            Self::Leave(_) => TopologyEventKind::Leave,
            Self::Serving(_) => TopologyEventKind::Serving,
            Self::Draining(_) => TopologyEventKind::Draining,
            Self::Blocked(_) => TopologyEventKind::Blocked,
            Self::Unblocked(_) => TopologyEventKind::Unblocked,
        }
    }

    /// The member, for a join, a serving or a draining event.
    pub fn member(&self) -> Option<&ClusterNode> {
        match self {
            Self::Join(node) | Self::Serving(node) | Self::Draining(node) => Some(node),
            _ => None,
        }
    }
}
