//! [`BridgeWorker`]: the thread that feeds one bridge from its queue.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;

use crate::consumer_cursor::{ConsumerCursor, Delivery, Next};
use crate::{PartitionManagerBridge, PlacementSupervisorBridge, ProvisioningEvent, RemotingBridge};

/// The bridge a worker feeds.
pub(crate) enum BridgeTarget {
    Placement(Arc<dyn PlacementSupervisorBridge>),
    Partition(Arc<dyn PartitionManagerBridge>),
    Remoting(Arc<dyn RemotingBridge>),
}

impl BridgeTarget {
    /// Calls the bridge for `delivery`; false when the bridge takes no such
    /// line.
    fn deliver(&self, delivery: &Delivery) -> bool {
        match (self, delivery) {
            (Self::Placement(bridge), Delivery::Resync(line)) => match line.as_snapshot() {
                Some(snapshot) => bridge.resync(snapshot),
                None => return false,
            },
            (Self::Partition(bridge), Delivery::Resync(line)) => match line.as_snapshot() {
                Some(snapshot) => bridge.resync(snapshot),
                None => return false,
            },
            (Self::Remoting(bridge), Delivery::Resync(line)) => match line.as_snapshot() {
                Some(snapshot) => bridge.resync(snapshot),
                None => return false,
            },
            (Self::Placement(bridge), Delivery::Line(line)) => match &**line {
                ProvisioningEvent::Snapshot(snapshot) => bridge.apply_snapshot(snapshot),
                ProvisioningEvent::ProviderChanged(change) => bridge.provider_changed(change),
                _ => return false,
            },
            (Self::Partition(bridge), Delivery::Line(line)) => match &**line {
                ProvisioningEvent::Snapshot(snapshot) => bridge.apply_snapshot(snapshot),
                ProvisioningEvent::ProviderChanged(change) => bridge.provider_changed(change),
                _ => return false,
            },
            (Self::Remoting(bridge), Delivery::Line(line)) => match &**line {
                ProvisioningEvent::RemoteTopology(event) => bridge.publish_remote_topology(event),
                _ => return false,
            },
        }
        true
    }
}

/// Feeds one bridge on its own thread: no hub lock is held during a bridge
/// call, a blocking bridge only delays itself, and a panic is caught,
/// counted, logged and followed by a resync.
pub(crate) struct BridgeWorker;

impl BridgeWorker {
    pub(crate) fn spawn(
        target: BridgeTarget,
        cursor: ConsumerCursor,
    ) -> std::io::Result<JoinHandle<()>> {
        let name = format!("watch-hub-{}", cursor.slot.name());
        std::thread::Builder::new()
            .name(name)
            .spawn(move || Self::run(&target, cursor))
    }

    fn run(target: &BridgeTarget, mut cursor: ConsumerCursor) {
        cursor.slot.set_thread(std::thread::current());
        loop {
            match cursor.next() {
                Next::Item(delivery) => {
                    let is_resync = matches!(delivery, Delivery::Resync(_));
                    match catch_unwind(AssertUnwindSafe(|| target.deliver(&delivery))) {
                        Ok(true) => {
                            cursor.slot.delivered.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(false) => {}
                        Err(panic) => {
                            cursor.slot.panics.fetch_add(1, Ordering::Relaxed);
                            let seq_no = match &delivery {
                                Delivery::Line(line) | Delivery::Resync(line) => line.seq_no(),
                            };
                            tracing::error!(
                                consumer = cursor.slot.name(),
                                seq_no,
                                panic = panic_text(&*panic),
                                "watch hub bridge panicked; it gets a resync"
                            );
                            // A resync that panics is not retried, or a bridge
                            // that always panics would spin.
                            if !is_resync {
                                cursor.force_resync();
                            }
                        }
                    }
                }
                Next::Empty => std::thread::park(),
                Next::Closed => break,
            }
        }
    }
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-text panic payload")
}
