//! [`BridgeTarget`]: a bridge of one of the three kinds, and which lines
//! it takes.

use std::sync::Arc;

use super::consumer_cursor::Delivery;
use crate::bridges::{PartitionManagerBridge, PlacementSupervisorBridge, RemotingBridge};
use crate::provisioning_event::ProvisioningEvent;

/// The bridge a worker feeds.
pub(crate) enum BridgeTarget {
    Placement(Arc<dyn PlacementSupervisorBridge>),
    Partition(Arc<dyn PartitionManagerBridge>),
    Remoting(Arc<dyn RemotingBridge>),
}

impl BridgeTarget {
    /// Calls the bridge for `delivery`; false when the bridge takes no such
    /// line.
    pub(crate) fn deliver(&self, delivery: &Delivery) -> bool {
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

/// The text of a caught panic.
pub(crate) fn panic_text(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-text panic payload")
}
