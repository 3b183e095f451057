//! [`InMemoryProvider`].

use std::sync::Arc;

use provisioning_provider_api::{
    ClusterProvider, MemberSpec, ProviderDescriptor, ProviderId, ProviderKind, ProviderSnapshot,
    ProviderStream, StreamOptions, WatchValue,
};

use crate::state::Shared;
use crate::{InMemoryError, InMemoryHandle};

/// A provider whose members come from its descriptor (`watch.members`) or
/// are changed at run time through an [`InMemoryHandle`].
///
/// It behaves like a real backend towards the service: the first stream item
/// is a snapshot, changes arrive as snapshots, an unchanged view heartbeats
/// at the interval it is given, and scripted failures (refused, hung,
/// terminated) look like a real backend's, so the service detects them the
/// same way.
#[derive(Debug)]
pub struct InMemoryProvider {
    pub(crate) descriptor: ProviderDescriptor,
    pub(crate) shared: Arc<Shared>,
}

impl InMemoryProvider {
    /// Builds the provider from an `in_memory` descriptor; `watch.members`
    /// follows the member schema of CONTRACTS §1 and is the only `watch` key.
    pub fn from_descriptor(descriptor: ProviderDescriptor) -> Result<Self, InMemoryError> {
        let id = descriptor.id.to_string();
        if descriptor.kind != ProviderKind::InMemory {
            return Err(InMemoryError::WrongKind {
                id,
                kind: descriptor.kind.to_string(),
            });
        }
        if let Some(key) = descriptor.watch.keys().find(|k| k.as_str() != "members") {
            return Err(InMemoryError::UnknownWatchKey {
                id,
                key: key.clone(),
            });
        }
        let specs = match descriptor.watch.get("members") {
            None => Vec::new(),
            Some(value) => parse_members(value).map_err(|message| InMemoryError::BadMembers {
                id: id.clone(),
                message,
            })?,
        };
        if let Err(e) = ProviderSnapshot::from_specs(specs.clone()) {
            return Err(InMemoryError::BadMembers {
                id,
                message: e.to_string(),
            });
        }
        Ok(Self {
            shared: Shared::new(specs),
            descriptor,
        })
    }

    /// A provider with no members yet, for programmatic use.
    pub fn new(id: ProviderId, priority: u32) -> Self {
        Self {
            descriptor: ProviderDescriptor::new(id, ProviderKind::InMemory, priority),
            shared: Shared::new(Vec::new()),
        }
    }

    /// A handle to change members and script failures.
    pub fn handle(&self) -> InMemoryHandle {
        InMemoryHandle {
            shared: self.shared.clone(),
        }
    }
}

fn parse_members(value: &WatchValue) -> Result<Vec<MemberSpec>, String> {
    let json = serde_json::to_value(value).map_err(|e| e.to_string())?;
    serde_json::from_value(json).map_err(|e| e.to_string())
}

impl ClusterProvider for InMemoryProvider {
    fn descriptor(&self) -> &ProviderDescriptor {
        &self.descriptor
    }

    fn initial_snapshot(&self) -> Option<ProviderSnapshot> {
        self.shared.lock().last_seen.clone()
    }

    fn stream(&self, options: StreamOptions) -> ProviderStream {
        crate::stream::open(self.shared.clone(), options)
    }
}
