//! [`MeshPlan`]: the pure reconcile step — the peers a node should be
//! connected to against the sessions its `NodeServer` has, to the actions
//! that close the gap.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use cluster_provisioning::LocalTopology;

use crate::RactorPeer;

/// What the published topology asks of this node's `NodeServer`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MeshPlan {
    /// This node's own ractor name: never connected to.
    pub local_name: String,
    /// Members to be connected to, by ractor name: every member except the
    /// local node, the blocked ones and those whose labels are unusable;
    /// none while the local node is blocked itself.
    pub desired: BTreeMap<String, RactorPeer>,
    /// Ractor names of blocked members: their sessions are closed at once,
    /// inbound ones included.
    pub blocked: BTreeSet<String>,
    /// Ractor names of members that left (and have not come back): their
    /// sessions are closed at once.
    pub departed: BTreeSet<String>,
}

/// One session of the `NodeServer` as the plan sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    /// The `NodeServer`'s session key.
    pub key: u64,
    /// The peer's ractor name, once the handshake told it.
    pub peer: Option<String>,
    /// How long the adapter has known this session.
    pub age: Duration,
}

/// What to do to the `NodeServer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MeshAction {
    /// Open a session to this peer.
    Connect(RactorPeer),
    /// Close this session.
    Disconnect {
        /// The session key.
        key: u64,
        /// The peer's ractor name.
        peer: String,
        /// Why.
        reason: DisconnectReason,
    },
}

/// Why a session is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The peer is blocked.
    Blocked,
    /// The peer left the published members.
    Left,
    /// The peer was never a published member (after the grace period that
    /// lets a newcomer's registration reach this node).
    NotMember,
    /// A session with this node itself.
    Local,
}

impl MeshPlan {
    /// The plan for `topology`, with `departed` carried over from the
    /// previous plan: a member of `previous` that is gone now departed; a
    /// member that is back is no longer departed.
    pub fn from_topology(
        topology: &LocalTopology,
        local_name: &str,
        previous: Option<&MeshPlan>,
        mut skipped: impl FnMut(&RactorPeer) -> bool,
    ) -> (Self, Vec<crate::LabelError>) {
        let blocked_ids: BTreeSet<_> = topology.snapshot().blocked().iter().collect();
        let mut plan = Self {
            local_name: local_name.to_owned(),
            ..Self::default()
        };
        let mut errors = Vec::new();
        // A blocked node keeps to itself: the others refuse it anyway, and
        // asking again would only churn connects.
        let local_blocked = topology
            .local_id()
            .is_some_and(|id| blocked_ids.contains(id));
        for member in topology.peers() {
            let peer = match RactorPeer::from_member(member) {
                Ok(peer) => peer,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            if peer.name == local_name {
                continue;
            }
            if blocked_ids.contains(&member.id) {
                plan.blocked.insert(peer.name);
            } else if !local_blocked && !skipped(&peer) {
                plan.desired.insert(peer.name.clone(), peer);
            }
        }
        if let Some(previous) = previous {
            let gone = previous
                .desired
                .keys()
                .chain(&previous.departed)
                .filter(|name| !plan.desired.contains_key(*name) && !plan.blocked.contains(*name));
            plan.departed = gone.cloned().collect();
        }
        (plan, errors)
    }

    /// The actions that turn `sessions` into the desired mesh. `connecting`
    /// names peers with a connection attempt under way (not asked again);
    /// a session whose peer is not yet known (handshake) is left alone, and
    /// one from a peer that was never a member is closed only once it is
    /// older than `grace`.
    pub fn actions(
        &self,
        sessions: &[SessionView],
        connecting: &BTreeSet<String>,
        grace: Duration,
    ) -> Vec<MeshAction> {
        let mut actions = Vec::new();
        let mut connected = BTreeSet::new();
        for session in sessions {
            let Some(peer) = &session.peer else { continue };
            let reason = if *peer == self.local_name {
                Some(DisconnectReason::Local)
            } else if self.blocked.contains(peer) {
                Some(DisconnectReason::Blocked)
            } else if self.desired.contains_key(peer) {
                connected.insert(peer.as_str());
                None
            } else if self.departed.contains(peer) {
                Some(DisconnectReason::Left)
            } else if session.age >= grace {
                Some(DisconnectReason::NotMember)
            } else {
                None
            };
            if let Some(reason) = reason {
                actions.push(MeshAction::Disconnect {
                    key: session.key,
                    peer: peer.clone(),
                    reason,
                });
            }
        }
        for (name, peer) in &self.desired {
            if !connected.contains(name.as_str()) && !connecting.contains(name) {
                actions.push(MeshAction::Connect(peer.clone()));
            }
        }
        actions
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use cluster_provisioning::api::{ClusterNode, NodeId, ProviderId, ProviderSnapshot};
    use cluster_provisioning::hub::wire::{PublishedSnapshot, RunId};

    use super::*;

    const GRACE: Duration = Duration::from_secs(2);

    fn topology(members: &[&str], blocked: &[&str], local: &str) -> LocalTopology {
        let members = members
            .iter()
            .enumerate()
            .map(|(i, id)| ClusterNode::new(*id, "127.0.0.1", 4000 + i as u16))
            .collect();
        let blocked = blocked.iter().map(|id| NodeId::from(*id)).collect();
        let snapshot = ProviderSnapshot::new(members, blocked).expect("unique ids");
        let published = PublishedSnapshot::new(
            RunId::from_u64(1),
            1,
            1,
            ProviderId::new("p").expect("id"),
            snapshot,
        );
        LocalTopology::new(Arc::new(published), Some(NodeId::from(local)))
    }

    fn plan(members: &[&str], blocked: &[&str], previous: Option<&MeshPlan>) -> MeshPlan {
        let (plan, errors) = MeshPlan::from_topology(
            &topology(members, blocked, "n1"),
            "n1@127.0.0.1",
            previous,
            |_| false,
        );
        assert!(errors.is_empty(), "{errors:?}");
        plan
    }

    fn session(key: u64, peer: &str, age: Duration) -> SessionView {
        SessionView {
            key,
            peer: Some(format!("{peer}@127.0.0.1")),
            age,
        }
    }

    fn connects(actions: &[MeshAction]) -> Vec<&str> {
        actions
            .iter()
            .filter_map(|a| match a {
                MeshAction::Connect(peer) => Some(peer.id.as_str()),
                MeshAction::Disconnect { .. } => None,
            })
            .collect()
    }

    fn disconnects(actions: &[MeshAction]) -> Vec<(u64, DisconnectReason)> {
        actions
            .iter()
            .filter_map(|a| match a {
                MeshAction::Disconnect { key, reason, .. } => Some((*key, *reason)),
                MeshAction::Connect(_) => None,
            })
            .collect()
    }

    #[test]
    fn joins_are_connected_and_the_local_node_never() {
        let plan = plan(&["n1", "n2", "n3"], &[], None);
        let actions = plan.actions(&[session(7, "n2", GRACE)], &BTreeSet::new(), GRACE);
        assert_eq!(connects(&actions), ["n3"]);
        assert!(disconnects(&actions).is_empty());
        // A session with itself (a misrouted address) is closed.
        let actions = plan.actions(&[session(8, "n1", Duration::ZERO)], &BTreeSet::new(), GRACE);
        assert_eq!(disconnects(&actions), [(8, DisconnectReason::Local)]);
    }

    #[test]
    fn a_leave_closes_the_session_at_once_and_a_return_reconnects() {
        let before = plan(&["n1", "n2", "n3"], &[], None);
        let after = plan(&["n1", "n2"], &[], Some(&before));
        let sessions = [session(2, "n2", GRACE), session(3, "n3", Duration::ZERO)];
        let actions = after.actions(&sessions, &BTreeSet::new(), GRACE);
        assert_eq!(disconnects(&actions), [(3, DisconnectReason::Left)]);
        assert!(connects(&actions).is_empty());
        // Still departed a publication later, so an inbound retry is closed.
        let later = plan(&["n1", "n2"], &[], Some(&after));
        assert!(later.departed.contains("n3@127.0.0.1"));
        let back = plan(&["n1", "n2", "n3"], &[], Some(&later));
        assert!(back.departed.is_empty());
        assert_eq!(
            connects(&back.actions(&sessions[..1], &BTreeSet::new(), GRACE)),
            ["n3"]
        );
    }

    #[test]
    fn blocked_peers_are_disconnected_and_refused_until_unblocked() {
        let blocked = plan(&["n1", "n2", "n3"], &["n3"], None);
        // An inbound session from the blocked peer, however young.
        let sessions = [session(2, "n2", GRACE), session(9, "n3", Duration::ZERO)];
        let actions = blocked.actions(&sessions, &BTreeSet::new(), GRACE);
        assert_eq!(disconnects(&actions), [(9, DisconnectReason::Blocked)]);
        assert!(
            connects(&actions).is_empty(),
            "a blocked peer is not connected"
        );
        // The blocked node itself connects to nobody (and drops nothing:
        // the others close its sessions).
        let (own, _) = MeshPlan::from_topology(
            &topology(&["n1", "n2", "n3"], &["n1"], "n1"),
            "n1@127.0.0.1",
            None,
            |_| false,
        );
        assert!(own.desired.is_empty(), "{own:?}");
        let unblocked = plan(&["n1", "n2", "n3"], &[], Some(&blocked));
        assert_eq!(
            connects(&unblocked.actions(&sessions[..1], &BTreeSet::new(), GRACE)),
            ["n3"]
        );
    }

    #[test]
    fn a_stranger_gets_a_grace_period_and_a_handshake_is_left_alone() {
        let plan = plan(&["n1", "n2"], &[], None);
        let young = [session(4, "n9", GRACE / 2)];
        assert!(
            plan.actions(&young, &BTreeSet::from(["n2@127.0.0.1".to_owned()]), GRACE)
                .is_empty()
        );
        let old = [session(4, "n9", GRACE)];
        assert_eq!(
            disconnects(&plan.actions(&old, &BTreeSet::new(), GRACE)),
            [(4, DisconnectReason::NotMember)]
        );
        let handshake = [SessionView {
            key: 5,
            peer: None,
            age: GRACE * 10,
        }];
        assert_eq!(
            connects(&plan.actions(&handshake, &BTreeSet::new(), GRACE)),
            ["n2"]
        );
    }

    #[test]
    fn the_same_members_from_another_provider_change_nothing() {
        // A failover to a provider listing the same addresses: no action.
        let first = plan(&["n1", "n2", "n3"], &[], None);
        let switched = plan(&["n1", "n2", "n3"], &[], Some(&first));
        let sessions = [session(2, "n2", GRACE), session(3, "n3", GRACE)];
        assert!(
            switched
                .actions(&sessions, &BTreeSet::new(), GRACE)
                .is_empty()
        );
    }
}
