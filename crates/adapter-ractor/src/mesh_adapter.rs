//! [`RactorMesh`]: keeps a `NodeServer` connected to exactly the published
//! members.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use cluster_provisioning::api::{ClusterNode, NodeId};
use cluster_provisioning::registry::SecretResolver;
use cluster_provisioning::{LocalTopology, TopologyStream, TopologyUpdate};
use futures::{FutureExt, StreamExt};
use ractor::{Actor, ActorRef};
use ractor_cluster::{NodeServer, NodeServerMessage};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::mesh_plan::{MeshAction, MeshPlan, SessionView};
use crate::session_events::SessionEvents;
use crate::{COOKIE_LABEL, MeshConfig, MeshError, MeshStats, RactorPeer};

/// How long a `GetSessions` call to the `NodeServer` may take.
const SESSIONS_TIMEOUT_MS: u64 = 1_000;

/// Starts this node's `NodeServer` as `local` (a member as it registers
/// itself) describes it: name and port from its labels, the cookie resolved
/// from its [`COOKIE_LABEL`] reference through `secrets`. Listens on all
/// interfaces unless `local.host` is an IP address, then on that address.
pub async fn start_node_server(
    local: &ClusterNode,
    secrets: &SecretResolver,
) -> Result<(ActorRef<NodeServerMessage>, JoinHandle<()>), MeshError> {
    let peer = RactorPeer::from_member(local)?;
    let reference = peer
        .cookie
        .as_ref()
        .ok_or_else(|| MeshError::MissingCookie {
            member: local.id.as_str().to_owned(),
            label: COOKIE_LABEL,
        })?;
    let cookie = secrets.resolve(reference).map_err(MeshError::Cookie)?;
    let (node_name, _) = peer.name.split_once('@').unwrap_or((&peer.name, ""));
    let port = peer
        .address
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse::<u16>().ok())
        .unwrap_or(local.port);
    let mut server = NodeServer::new(
        port,
        cookie.expose().to_owned(),
        node_name.to_owned(),
        local.host.clone(),
        None,
        // The adapter decides whom to connect to; transitive mode would
        // connect to peers the provider does not list.
        Some(ractor_cluster::node::NodeConnectionMode::Isolated),
    );
    if let Ok(ip) = local.host.parse() {
        server = server.with_listen_addr(ip);
    }
    let (actor, handle) = Actor::spawn(None, server, ())
        .await
        .map_err(|e| MeshError::NodeServer(e.to_string()))?;
    Ok((actor, handle))
}

/// The adapter: reads [`TopologyStream`] updates and keeps the
/// `NodeServer`'s sessions equal to the published members.
///
/// Join → connect; Leave → the session is closed; Blocked → the session is
/// closed and every reconnect, inbound included, is closed again; Unblocked
/// → connect; a resync → reconcile against the whole snapshot. It never
/// connects to the local node. Each update is turned into a [`MeshPlan`]
/// against the snapshot it leads to, so a member listed with the same
/// address by another provider after a failover changes nothing (no
/// reconnect storm). Peers whose cookie reference differs from the local
/// one are not connected (a warning names them).
pub struct RactorMesh {
    server: ActorRef<NodeServerMessage>,
    local_id: NodeId,
    local: RactorPeer,
    config: MeshConfig,
    stats: Arc<MeshStats>,
}

impl std::fmt::Debug for RactorMesh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RactorMesh")
            .field("local", &self.local.name)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Per-peer connect pacing.
#[derive(Debug, Clone, Copy)]
struct Pacing {
    in_flight_until: Option<Instant>,
    next_allowed: Instant,
    delay: Duration,
}

impl RactorMesh {
    /// An adapter for `server`, the `NodeServer` of the member `local`.
    pub fn new(
        server: ActorRef<NodeServerMessage>,
        local: &ClusterNode,
        config: MeshConfig,
    ) -> Result<Self, MeshError> {
        Ok(Self {
            server,
            local_id: local.id.clone(),
            local: RactorPeer::from_member(local)?,
            config,
            stats: Arc::new(MeshStats::default()),
        })
    }

    /// The adapter's counters (shared; readable while it runs).
    pub fn stats(&self) -> Arc<MeshStats> {
        self.stats.clone()
    }

    /// Runs until `updates` ends (the service shut down).
    pub async fn run(self, mut updates: TopologyStream) {
        let (nudge_tx, mut nudges) = mpsc::unbounded_channel();
        let _ = self.server.cast(NodeServerMessage::SubscribeToEvents {
            id: "provisioning-ractor".into(),
            subscription: Box::new(SessionEvents(nudge_tx)),
        });
        let mut state = RunState {
            plan: None,
            first_seen: BTreeMap::new(),
            pacing: BTreeMap::new(),
        };
        let mut tick = tokio::time::interval(self.config.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                update = updates.next() => {
                    let Some(update) = update else { break };
                    self.apply(&mut state, update);
                    // A publication's changes come together: plan once.
                    while let Some(Some(update)) = updates.next().now_or_never() {
                        self.apply(&mut state, update);
                    }
                }
                nudge = nudges.recv() => if nudge.is_none() { break },
                _ = tick.tick() => {}
            }
            self.reconcile(&mut state).await;
        }
        let _ = self.server.cast(NodeServerMessage::UnsubscribeToEvents(
            "provisioning-ractor".into(),
        ));
    }

    fn apply(&self, state: &mut RunState, update: TopologyUpdate) {
        let topology = match update {
            TopologyUpdate::Change(change) => {
                if state
                    .plan
                    .as_ref()
                    .is_some_and(|(seq_no, _)| *seq_no == change.snapshot.seq_no())
                {
                    return;
                }
                LocalTopology::new(change.snapshot.clone(), Some(self.local_id.clone()))
            }
            TopologyUpdate::Resync(view) => {
                LocalTopology::new(view.snapshot().clone(), Some(self.local_id.clone()))
            }
            _ => return,
        };
        let previous = state.plan.as_ref().map(|(_, plan)| plan);
        let local_cookie = self.local.cookie.clone();
        let (plan, errors) = MeshPlan::from_topology(
            &topology,
            &self.local.name,
            previous,
            |peer| {
                let differs = peer.cookie.is_some() && peer.cookie != local_cookie;
                if differs {
                    warn!(member = %peer.id, "ractor cookie reference differs from this node's: not connected");
                }
                differs
            },
        );
        for error in errors {
            warn!(%error, "member not usable for the ractor mesh");
        }
        debug!(
            seq_no = topology.snapshot().seq_no(),
            desired = plan.desired.len(),
            "mesh plan"
        );
        state.plan = Some((topology.snapshot().seq_no(), plan));
    }

    async fn reconcile(&self, state: &mut RunState) {
        let Some((_, plan)) = &state.plan else { return };
        let sessions = match ractor::call_t!(
            self.server,
            NodeServerMessage::GetSessions,
            SESSIONS_TIMEOUT_MS
        ) {
            Ok(sessions) => sessions,
            Err(e) => {
                warn!(error = %e, "ractor NodeServer did not list its sessions");
                return;
            }
        };
        self.stats.reconciled();
        let now = Instant::now();
        state.first_seen.retain(|key, _| sessions.contains_key(key));
        let mut views = Vec::with_capacity(sessions.len());
        for (key, info) in &sessions {
            let first = *state.first_seen.entry(*key).or_insert(now);
            let peer = info.peer_name.as_ref().map(|name| name.name.clone());
            if let Some(pacing) = peer.as_ref().and_then(|p| state.pacing.get_mut(p)) {
                pacing.in_flight_until = None;
                pacing.delay = self.config.retry_initial;
            }
            views.push(SessionView {
                key: *key,
                peer,
                age: now.saturating_duration_since(first),
            });
        }
        let mut connecting = BTreeSet::new();
        for (name, pacing) in &mut state.pacing {
            match pacing.in_flight_until {
                Some(until) if until > now => {
                    connecting.insert(name.clone());
                }
                Some(_) => pacing.in_flight_until = None,
                None if pacing.next_allowed > now => {
                    connecting.insert(name.clone());
                }
                None => {}
            }
        }
        for action in plan.actions(&views, &connecting, self.config.grace) {
            match action {
                MeshAction::Connect(peer) => {
                    let pacing = state.pacing.entry(peer.name.clone()).or_insert(Pacing {
                        in_flight_until: None,
                        next_allowed: now,
                        delay: self.config.retry_initial,
                    });
                    pacing.in_flight_until = Some(now + self.config.connect_timeout);
                    pacing.next_allowed = now + pacing.delay;
                    pacing.delay = (pacing.delay * 2).min(self.config.retry_cap);
                    self.stats.connected();
                    info!(member = %peer.id, address = %peer.address, "ractor connect");
                    let server = self.server.clone();
                    tokio::spawn(async move {
                        if let Err(e) =
                            ractor_cluster::client_connect(&server, peer.address.as_str()).await
                        {
                            debug!(member = %peer.id, error = %e, "ractor connect failed");
                        }
                    });
                }
                MeshAction::Disconnect { key, peer, reason } => {
                    if let Some(info) = sessions.get(&key) {
                        info!(%peer, ?reason, "ractor disconnect");
                        self.stats.disconnected();
                        info.actor.stop(Some(format!("provisioning: {reason:?}")));
                    }
                }
            }
        }
        // Peers no longer wanted need no pacing.
        state
            .pacing
            .retain(|name, _| plan.desired.contains_key(name));
    }
}

struct RunState {
    /// The plan and the `seq_no` of the snapshot it was made from.
    plan: Option<(u64, MeshPlan)>,
    first_seen: BTreeMap<u64, Instant>,
    pacing: BTreeMap<String, Pacing>,
}
