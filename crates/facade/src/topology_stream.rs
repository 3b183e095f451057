//! [`TopologyStream`]: the `remote_topology` changes as a `futures` stream,
//! with resyncs as items.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use provisioning_registry::ProvisioningError;
use provisioning_watch_hub::EventSubscription;
use provisioning_watch_hub::wire::{ProvisioningEvent, TopologyEnvelope};

use crate::ProvisioningHandle;
use crate::local_member::{LocalMember, LocalTopology};

/// One item of [`TopologyStream`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TopologyUpdate {
    /// One change (Join, Leave, Serving, Draining, Unblocked, Blocked) from
    /// the previous snapshot to the one it carries, in CONTRACTS §3 order.
    Change(TopologyEnvelope),
    /// Start again from this snapshot: the changes since the last item were
    /// lost (the stream fell behind), or the stream just started while a
    /// snapshot was published. Rebuild the member and block sets from it;
    /// its `seq_no` is the new high-water mark and no change of its own
    /// publication follows.
    Resync(LocalTopology),
}

/// The `remote_topology` changes, in the order and with the resync rules
/// of a [`RemotingBridge`](crate::RemotingBridge), as a stream polled by
/// any executor.
///
/// It starts with [`TopologyUpdate::Resync`] when a snapshot was already
/// published (else with the first publication's joins), then follows live.
/// Its queue is bounded like every consumer's (the hub's queue capacity, in
/// publications): a reader that falls further behind delays only itself and
/// then gets a `Resync` with the current snapshot. With a local member set,
/// its own `join` and `leave` never appear. The stream ends when the
/// service shuts down; dropping it detaches it.
pub struct TopologyStream {
    lines: EventSubscription,
    local: LocalMember,
    resyncing: bool,
}

impl TopologyStream {
    pub(crate) fn new(lines: EventSubscription, local: LocalMember) -> Self {
        Self {
            lines,
            local,
            resyncing: false,
        }
    }
}

impl Stream for TopologyStream {
    type Item = TopologyUpdate;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            let Some(line) = futures::ready!(Pin::new(&mut this.lines).poll_next(cx)) else {
                return Poll::Ready(None);
            };
            match &*line {
                ProvisioningEvent::Resync(_) => this.resyncing = true,
                ProvisioningEvent::Snapshot(snapshot) if this.resyncing => {
                    this.resyncing = false;
                    return Poll::Ready(Some(TopologyUpdate::Resync(
                        this.local.mark(snapshot.clone()),
                    )));
                }
                ProvisioningEvent::RemoteTopology(change) if !this.local.hides(&change.event) => {
                    return Poll::Ready(Some(TopologyUpdate::Change(change.clone())));
                }
                // Snapshots, health, switches and the local node's own
                // join/leave: not topology changes for this node.
                _ => {}
            }
        }
    }
}

impl std::fmt::Debug for TopologyStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopologyStream")
            .field("local", &self.local.id())
            .field("lines", &self.lines)
            .finish()
    }
}

impl ProvisioningHandle {
    /// The `remote_topology` changes as a stream (see [`TopologyStream`]):
    /// the async counterpart of a [`RemotingBridge`](crate::RemotingBridge),
    /// with the same isolation (its own bounded queue; a slow reader delays
    /// only itself). Fails only when the service has stopped.
    pub fn topology_changes(&self) -> Result<TopologyStream, ProvisioningError> {
        let lines = self
            .hub()
            .subscribe_events_from_snapshot("topology-changes")
            .map_err(crate::service::hub_error)?;
        Ok(TopologyStream::new(lines, self.local_member_filter()))
    }

    /// The latest snapshot seen from this node (which member is local).
    pub fn local_topology(&self) -> Option<LocalTopology> {
        self.topology()
            .map(|snapshot| self.local_member_filter().mark(snapshot))
    }
}
