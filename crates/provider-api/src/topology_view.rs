//! [`TopologyView`]: member and block sets rebuilt from events, as a
//! consumer holds them. Applying strictly catches a diff that does not fit.

use alloc::collections::{BTreeMap, BTreeSet};
use core::fmt;

use crate::{ClusterNode, MemberState, NodeId, ProviderSnapshot, RemoteTopologyEvent};

/// An event that does not fit the view it is applied to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyError {
    /// The event that did not fit.
    pub event: RemoteTopologyEvent,
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = self.event.node_id();
        match self.event.kind() {
            crate::TopologyEventKind::Join => write!(f, "join of {id:?}, already a member"),
            crate::TopologyEventKind::Leave => write!(f, "leave of {id:?}, not a member"),
            crate::TopologyEventKind::Serving => {
                write!(f, "serving of {id:?}, not a draining member of that life")
            }
            crate::TopologyEventKind::Draining => {
                write!(f, "draining of {id:?}, not a serving member of that life")
            }
            crate::TopologyEventKind::Blocked => write!(f, "block of {id:?}, already blocked"),
            crate::TopologyEventKind::Unblocked => write!(f, "unblock of {id:?}, not blocked"),
        }
    }
}

impl core::error::Error for ApplyError {}

/// Members and block list as a consumer rebuilds them from
/// [`RemoteTopologyEvent`]s.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopologyView {
    /// Current members by id.
    pub members: BTreeMap<NodeId, ClusterNode>,
    /// Current block list.
    pub blocked: BTreeSet<NodeId>,
}

impl TopologyView {
    /// An empty view.
    pub fn new() -> Self {
        Self::default()
    }

    /// The view a snapshot describes.
    pub fn from_snapshot(snapshot: &ProviderSnapshot) -> Self {
        Self {
            members: snapshot
                .members()
                .iter()
                .map(|m| (m.id.clone(), m.clone()))
                .collect(),
            blocked: snapshot.blocked().iter().cloned().collect(),
        }
    }

    /// Applies one event strictly: a join of a member, a leave of a
    /// non-member, a double block, an unblock of an unblocked id, or a
    /// serving/draining event that is not a state change of the same life of
    /// a member is an error and leaves the view unchanged.
    pub fn apply(&mut self, event: &RemoteTopologyEvent) -> Result<(), ApplyError> {
        let ok = match event {
            RemoteTopologyEvent::Join(node) => {
                if self.members.contains_key(&node.id) {
                    false
                } else {
                    self.members.insert(node.id.clone(), node.clone());
                    true
                }
            }
            RemoteTopologyEvent::Leave(id) => self.members.remove(id).is_some(),
            RemoteTopologyEvent::Serving(node) | RemoteTopologyEvent::Draining(node) => {
                let state = match event {
                    RemoteTopologyEvent::Serving(_) => MemberState::Serving,
                    _ => MemberState::Draining,
                };
                match self.members.get_mut(&node.id) {
                    Some(member)
                        if node.state == state
                            && member.same_life(node)
                            && member.state != state =>
                    {
                        member.state = node.state;
                        true
                    }
                    _ => false,
                }
            }
            RemoteTopologyEvent::Blocked(id) => self.blocked.insert(id.clone()),
            RemoteTopologyEvent::Unblocked(id) => self.blocked.remove(id),
        };
        if ok {
            Ok(())
        } else {
            Err(ApplyError {
                event: event.clone(),
            })
        }
    }

    /// Whether the view holds exactly the snapshot's members and block list.
    pub fn matches(&self, snapshot: &ProviderSnapshot) -> bool {
        self.members.len() == snapshot.len()
            && self.blocked.len() == snapshot.blocked().len()
            && self
                .members
                .values()
                .zip(snapshot.members())
                .all(|(a, b)| a == b)
            && self
                .blocked
                .iter()
                .zip(snapshot.blocked())
                .all(|(a, b)| a == b)
    }
}
