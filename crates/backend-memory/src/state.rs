//! Shared state between an [`InMemoryProvider`](crate::InMemoryProvider), its
//! [`InMemoryHandle`](crate::InMemoryHandle)s and its open streams.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use provisioning_provider_api::{
    ClusterNode, MemberSpec, NodeId, ProviderFault, ProviderSnapshot, ProviderTermination,
};
use tokio::sync::{mpsc, watch};

/// What the backend is doing, as the handle scripts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Answering normally.
    Normal,
    /// Silent: no snapshot, no heartbeat, no fault (a hung connection).
    Hung,
    /// Every attempt fails with this fault, on the retry schedule.
    Failing(ProviderFault),
}

/// One-shot messages to every open stream.
#[derive(Debug, Clone)]
pub(crate) enum Control {
    Fault(ProviderFault),
    Terminate(ProviderTermination),
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) members: BTreeMap<NodeId, ClusterNode>,
    pub(crate) blocked: BTreeSet<NodeId>,
    pub(crate) mode: Mode,
    /// The last snapshot any stream of this provider emitted.
    pub(crate) last_seen: Option<ProviderSnapshot>,
    /// Bumped by every change; `view` is valid while it matches.
    version: u64,
    /// The current view built once per version (clones are cheap).
    view: Option<(u64, ProviderSnapshot)>,
    streams: Vec<mpsc::UnboundedSender<Control>>,
}

/// Shared core. Every change bumps `version`, which wakes open streams.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
    version: watch::Sender<u64>,
}

impl Shared {
    pub(crate) fn new(specs: Vec<MemberSpec>) -> Arc<Self> {
        let mut members = BTreeMap::new();
        let mut blocked = BTreeSet::new();
        for spec in specs {
            let (node, is_blocked) = spec.into_node();
            if is_blocked {
                blocked.insert(node.id.clone());
            }
            members.insert(node.id.clone(), node);
        }
        Arc::new(Self {
            state: Mutex::new(State {
                members,
                blocked,
                mode: Mode::Normal,
                last_seen: None,
                version: 0,
                view: None,
                streams: Vec::new(),
            }),
            version: watch::channel(0).0,
        })
    }

    /// Locks the state. A panic while holding the lock cannot leave the
    /// member maps half-updated (every update is a single map operation), so
    /// a poisoned lock is recovered.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Applies `change` and wakes the streams.
    pub(crate) fn update(&self, change: impl FnOnce(&mut State)) {
        {
            let mut state = self.lock();
            change(&mut state);
            state.version = state.version.wrapping_add(1);
        }
        self.version.send_modify(|v| *v = v.wrapping_add(1));
    }

    pub(crate) fn subscribe(&self) -> (watch::Receiver<u64>, mpsc::UnboundedReceiver<Control>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut state = self.lock();
        state.streams.retain(|s| !s.is_closed());
        state.streams.push(tx);
        (self.version.subscribe(), rx)
    }

    /// Sends `control` to every open stream; returns how many got it.
    pub(crate) fn broadcast(&self, control: Control) -> usize {
        let mut state = self.lock();
        state.streams.retain(|s| s.send(control.clone()).is_ok());
        state.streams.len()
    }

    /// The current view as a snapshot, built once per change.
    pub(crate) fn snapshot(&self) -> ProviderSnapshot {
        let mut state = self.lock();
        if let Some((version, view)) = &state.view
            && *version == state.version
        {
            return view.clone();
        }
        let members = state.members.values().cloned().collect();
        let blocked = state.blocked.iter().cloned().collect();
        // Keys of a map are unique and non-empty ids are enforced on insert,
        // so this cannot fail; fall back to an empty view rather than panic.
        let view =
            ProviderSnapshot::new(members, blocked).unwrap_or_else(|_| ProviderSnapshot::empty());
        state.view = Some((state.version, view.clone()));
        view
    }
}
