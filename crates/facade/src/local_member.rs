//! [`LocalMember`]: which member is this node, and what that hides from the
//! node's own consumers.

use std::sync::Arc;

use provisioning_provider_api::{ClusterNode, NodeId, RemoteTopologyEvent, TopologyEventKind};
use provisioning_watch_hub::RemotingBridge;
use provisioning_watch_hub::wire::{PublishedSnapshot, SnapshotEnvelope, TopologyEnvelope};

/// The node this service runs in, set with
/// [`with_local_member`](crate::ClusterProvisioningService::with_local_member).
///
/// The published snapshot and its hash stay what every node publishes
/// (CONTRACTS §6 hashes no notion of "self"); the mark lives in the
/// facade's view ([`LocalTopology`]) and in what the facade leaves out: no
/// `join` or `leave` for the local node reaches
/// [`topology_changes`](crate::ProvisioningHandle::topology_changes) or a
/// remoting bridge attached through the service builder. Its other events
/// (`blocked`, `draining`, ...) still arrive: a node wants to know that it
/// was blocked or is being drained.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LocalMember(Option<NodeId>);

impl LocalMember {
    pub(crate) fn new(id: Option<NodeId>) -> Self {
        Self(id)
    }

    pub(crate) fn id(&self) -> Option<&NodeId> {
        self.0.as_ref()
    }

    /// Whether `event` is a `join` or `leave` of the local node, which its
    /// own consumers never see.
    pub(crate) fn hides(&self, event: &RemoteTopologyEvent) -> bool {
        self.0.as_ref().is_some_and(|local| {
            event.node_id() == local
                && matches!(
                    event.kind(),
                    TopologyEventKind::Join | TopologyEventKind::Leave
                )
        })
    }

    pub(crate) fn mark(&self, snapshot: Arc<PublishedSnapshot>) -> LocalTopology {
        LocalTopology {
            snapshot,
            local: self.0.clone(),
        }
    }
}

/// A published snapshot seen from this node: the snapshot as every node has
/// it (same members, same hash) plus which member is the local one.
#[derive(Debug, Clone)]
pub struct LocalTopology {
    snapshot: Arc<PublishedSnapshot>,
    local: Option<NodeId>,
}

impl LocalTopology {
    /// `snapshot` seen from the node `local` (tests, or a consumer that
    /// got the snapshot elsewhere).
    pub fn new(snapshot: Arc<PublishedSnapshot>, local: Option<NodeId>) -> Self {
        Self { snapshot, local }
    }

    /// The snapshot, unchanged.
    pub fn snapshot(&self) -> &Arc<PublishedSnapshot> {
        &self.snapshot
    }

    /// The local node's id, when the service was given one.
    pub fn local_id(&self) -> Option<&NodeId> {
        self.local.as_ref()
    }

    /// Whether `id` is the local node.
    pub fn is_local(&self, id: &NodeId) -> bool {
        self.local.as_ref() == Some(id)
    }

    /// The local node's entry, when it is a member of this snapshot.
    pub fn local(&self) -> Option<&ClusterNode> {
        let local = self.local.as_ref()?;
        self.snapshot.members().iter().find(|m| &m.id == local)
    }

    /// Every member except the local node, sorted by id: the nodes to
    /// connect to.
    pub fn peers(&self) -> impl Iterator<Item = &ClusterNode> + '_ {
        self.snapshot
            .members()
            .iter()
            .filter(move |m| !self.is_local(&m.id))
    }
}

/// A remoting bridge that never hears of the local node joining or leaving.
pub(crate) struct LocalRemoting {
    pub(crate) inner: Arc<dyn RemotingBridge>,
    pub(crate) local: LocalMember,
}

impl RemotingBridge for LocalRemoting {
    fn publish_remote_topology(&self, envelope: &TopologyEnvelope) {
        if !self.local.hides(&envelope.event) {
            self.inner.publish_remote_topology(envelope);
        }
    }

    fn resync(&self, envelope: &SnapshotEnvelope) {
        self.inner.resync(envelope);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use provisioning_provider_api::{ProviderId, ProviderSnapshot};
    use provisioning_watch_hub::wire::RunId;

    fn snapshot() -> Arc<PublishedSnapshot> {
        let members = vec![
            ClusterNode::new("n1", "127.0.0.1", 4001),
            ClusterNode::new("n2", "127.0.0.1", 4002),
        ];
        let snapshot = ProviderSnapshot::new(members, Vec::new()).expect("unique ids");
        Arc::new(PublishedSnapshot::new(
            RunId::from_u64(1),
            1,
            1,
            ProviderId::new("p").expect("valid id"),
            snapshot,
        ))
    }

    #[test]
    fn hides_only_the_local_join_and_leave() {
        let local = LocalMember::new(Some(NodeId::from("n1")));
        let n1 = ClusterNode::new("n1", "127.0.0.1", 4001);
        assert!(local.hides(&RemoteTopologyEvent::Join(n1.clone())));
        assert!(local.hides(&RemoteTopologyEvent::Leave(NodeId::from("n1"))));
        assert!(!local.hides(&RemoteTopologyEvent::Blocked(NodeId::from("n1"))));
        assert!(!local.hides(&RemoteTopologyEvent::Draining(n1)));
        assert!(!local.hides(&RemoteTopologyEvent::Leave(NodeId::from("n2"))));
        assert!(!LocalMember::default().hides(&RemoteTopologyEvent::Leave(NodeId::from("n1"))));
    }

    #[test]
    fn marks_the_local_member_without_changing_the_snapshot() {
        let published = snapshot();
        let hash = published.hash();
        let view = LocalMember::new(Some(NodeId::from("n2"))).mark(published);
        assert_eq!(view.snapshot().hash(), hash);
        assert_eq!(view.local().map(|m| m.port), Some(4002));
        let peers: Vec<_> = view.peers().map(|m| m.id.as_str().to_owned()).collect();
        assert_eq!(peers, ["n1"]);
    }
}
