//! The event stream of a Kubernetes provider: kube-runtime's watcher, the
//! resync rules and the liveness request, as one step of the
//! reconnecting-stream kit (which owns the retries and their jitter).

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use futures_util::stream::BoxStream;
use futures_util::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Resource, ResourceExt};
use provisioning_provider_api::{
    FaultKind, MemberState, NodeId, ProviderEvent, ProviderFault, ProviderSnapshot, ProviderStream,
    StreamOptions,
};
use provisioning_stream_kit::{ReconnectingStream, StepContext, StreamStep};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until, timeout};

use crate::config::LIST_PAGE_SIZE;
use crate::decode::{MappedMember, ObjectMembers, pod_members, slice_members};
use crate::error::{Failure, Target, Verdict, classify};
use crate::provider::Inner;
use crate::watch_guard::{QuickClose, WatchGuard};
use crate::{KubeResource, MemberMapping};

/// Objects handled per wake-up before the view is rebuilt, so a burst of
/// events (a relist page, a rollout) yields one snapshot, not hundreds.
const MAX_BATCH: usize = 10_000;

/// Unusable objects logged per sync, so a misconfigured port does not flood
/// the log with one line per pod.
const MAX_UNUSABLE_LOGS: usize = 10;

/// What the watcher said about one object, already mapped to members.
enum SourceEvent {
    Init,
    InitApply(String, Option<String>, ObjectMembers),
    InitDone,
    Apply(String, Option<String>, ObjectMembers),
    Delete(String, Option<String>),
}

type SourceStream = BoxStream<'static, Result<SourceEvent, watcher::Error>>;

fn convert<K: Resource>(event: Event<K>, map: impl Fn(&K) -> ObjectMembers) -> SourceEvent {
    match event {
        Event::Init => SourceEvent::Init,
        Event::InitDone => SourceEvent::InitDone,
        Event::InitApply(obj) => {
            SourceEvent::InitApply(obj.name_any(), obj.resource_version(), map(&obj))
        }
        Event::Apply(obj) => SourceEvent::Apply(obj.name_any(), obj.resource_version(), map(&obj)),
        Event::Delete(obj) => SourceEvent::Delete(obj.name_any(), obj.resource_version()),
    }
}

/// The unmodified kube-runtime watcher over the configured resource.
fn source(client: Client, namespace: &str, inner: &Inner) -> SourceStream {
    let config = watcher::Config::default()
        .labels(&inner.watch.server_selector())
        .timeout(inner.watch.watch_timeout_secs())
        .page_size(LIST_PAGE_SIZE);
    let mapping: MemberMapping = inner.mapping.clone();
    match inner.watch.resource {
        KubeResource::Pods => {
            let api: Api<Pod> = Api::namespaced(client, namespace);
            watcher::watcher(api, config)
                .map(move |r| r.map(|e| convert(e, |p| pod_members(p, &mapping))))
                .boxed()
        }
        KubeResource::Endpointslices => {
            let api: Api<EndpointSlice> = Api::namespaced(client, namespace);
            watcher::watcher(api, config)
                .map(move |r| r.map(|e| convert(e, |s| slice_members(s, &mapping))))
                .boxed()
        }
    }
}

type PingFuture = futures_util::future::BoxFuture<'static, Result<(), Failure>>;

/// One connection: client, watcher, liveness request.
struct Live {
    client: Client,
    guard: WatchGuard,
    source: SourceStream,
    quick: mpsc::UnboundedReceiver<QuickClose>,
    /// `InitDone` seen on this watcher: the view is complete.
    synced: bool,
    ping: Option<PingFuture>,
    next_ping: Instant,
}

enum Step {
    Item(Option<Result<SourceEvent, watcher::Error>>),
    Quick(QuickClose),
    PingDone(Result<(), Failure>),
    PingDue,
}

/// The Kubernetes step: connect, or handle what the live watcher says.
/// Every failed attempt counts on the kit's schedule, faults and resyncs
/// alike: a server that answers 410 forever must not cause a relist loop.
struct K8sStep {
    inner: Arc<Inner>,
    options: StreamOptions,
    target: Target,
    live: Option<Live>,
    attempt_started: Instant,
    /// Members by object name; `building` collects a relist between `Init`
    /// and `InitDone` and then replaces `current` whole.
    current: BTreeMap<String, Vec<MappedMember>>,
    building: Option<BTreeMap<String, Vec<MappedMember>>>,
    building_revision: Option<String>,
    revision: Option<String>,
    unusable_logged: usize,
    last: Option<ProviderSnapshot>,
    dirty: bool,
}

pub(crate) fn open(inner: Arc<Inner>, options: StreamOptions) -> ProviderStream {
    let mut options = options;
    options.heartbeat_interval = options.heartbeat_interval.max(Duration::from_millis(100));
    let step = K8sStep {
        target: Target {
            resource: inner.watch.resource,
            namespace: inner.watch.namespace.clone().unwrap_or_default(),
        },
        inner,
        options,
        live: None,
        attempt_started: Instant::now(),
        current: BTreeMap::new(),
        building: None,
        building_revision: None,
        revision: None,
        unusable_logged: 0,
        last: None,
        dirty: false,
    };
    ReconnectingStream::new(step, options).into_stream()
}

/// Newer of two resource versions. They are opaque strings by contract but
/// integers in every API server; compare numerically when both parse.
fn newer(a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => match (a.parse::<u64>(), b.parse::<u64>()) {
            (Ok(x), Ok(y)) if x >= y => Some(a),
            _ => Some(b),
        },
        (a, b) => b.or(a),
    }
}

impl StreamStep for K8sStep {
    async fn step(&mut self, ctx: &mut StepContext) {
        if self.live.is_some() {
            self.step_live(ctx).await;
        } else {
            self.connect(ctx).await;
        }
    }
}

impl K8sStep {
    fn ping_period(&self) -> Duration {
        self.options.heartbeat_interval * 3 / 4
    }

    /// A liveness request slower than the heartbeat interval is late for
    /// its heartbeat anyway; giving it that long (at least 1 s) keeps a
    /// loaded server from causing timeout faults.
    fn ping_timeout(&self) -> Duration {
        self.options
            .heartbeat_interval
            .clamp(Duration::from_secs(1), Duration::from_secs(10))
    }

    async fn connect(&mut self, ctx: &mut StepContext) {
        self.attempt_started = Instant::now();
        let (guard, quick) = WatchGuard::new(ctx.fork_schedule());
        match self.inner.connector.connect(Some(guard.clone())).await {
            Ok(conn) => {
                self.target.namespace = conn.namespace.clone();
                self.inner
                    .liveness
                    .attach(conn.client.clone(), self.target.clone());
                let source = source(conn.client.clone(), &conn.namespace, &self.inner);
                self.building = None;
                self.live = Some(Live {
                    client: conn.client,
                    guard,
                    source,
                    quick,
                    synced: false,
                    ping: None,
                    next_ping: Instant::now() + self.ping_period(),
                });
            }
            Err(e) => self.fail(ctx, Failure::Connect(e)),
        }
    }

    async fn step_live(&mut self, ctx: &mut StepContext) {
        let ping_timeout = self.ping_timeout();
        let ping_period = self.ping_period();
        let Some(live) = self.live.as_mut() else {
            return;
        };
        let step = tokio::select! {
            biased;
            item = live.source.next() => Step::Item(item),
            Some(quick) = live.quick.recv() => Step::Quick(quick),
            result = async {
                match live.ping.as_mut() {
                    Some(ping) => ping.await,
                    None => std::future::pending().await,
                }
            } => Step::PingDone(result),
            () = sleep_until(live.next_ping), if live.ping.is_none() => Step::PingDue,
        };
        match step {
            Step::Item(None) => self.fail(ctx, Failure::WatcherEnded),
            Step::Item(Some(item)) => {
                self.on_item(ctx, item);
                for _ in 0..MAX_BATCH {
                    let Some(live) = self.live.as_mut() else {
                        break;
                    };
                    match live.source.next().now_or_never() {
                        Some(Some(item)) => self.on_item(ctx, item),
                        _ => break,
                    }
                }
                self.publish(ctx);
            }
            Step::Quick(quick) => {
                if quick.streak >= 2 {
                    ctx.push(ProviderEvent::Fault(ProviderFault::retryable(
                        FaultKind::BackendUnavailable,
                        format!(
                            "the API server closed {} watches in a row at once (last after {:?}); next watch in {:?}",
                            quick.streak, quick.lived, quick.delay
                        ),
                    )));
                }
            }
            Step::PingDue => {
                let client = live.client.clone();
                live.ping = Some(Box::pin(async move {
                    match timeout(ping_timeout, client.apiserver_version()).await {
                        Ok(Ok(_)) => Ok(()),
                        Ok(Err(e)) => Err(Failure::Ping(e)),
                        Err(_) => Err(Failure::PingTimeout(ping_timeout)),
                    }
                }));
            }
            Step::PingDone(result) => {
                live.ping = None;
                live.next_ping = Instant::now() + ping_period;
                let synced = live.synced;
                match result {
                    Ok(()) if synced => ctx.push_liveness(ProviderEvent::heartbeat()),
                    Ok(()) => {}
                    Err(failure) => self.ping_failed(ctx, failure),
                }
            }
        }
    }

    fn log_unusable(&mut self, members: &ObjectMembers) {
        for why in &members.unusable {
            if self.unusable_logged < MAX_UNUSABLE_LOGS {
                self.unusable_logged += 1;
                tracing::warn!(provider = %self.inner.descriptor_id, "not a member: {why}");
            }
        }
    }

    fn on_item(&mut self, ctx: &mut StepContext, item: Result<SourceEvent, watcher::Error>) {
        match item {
            Err(e) => self.fail(ctx, Failure::Watcher(e)),
            Ok(SourceEvent::Init) => {
                self.building = Some(BTreeMap::new());
                self.building_revision = None;
                self.unusable_logged = 0;
            }
            Ok(SourceEvent::InitApply(name, rv, members)) => {
                self.log_unusable(&members);
                self.building_revision = newer(self.building_revision.take(), rv);
                let building = self.building.get_or_insert_with(BTreeMap::new);
                if members.members.is_empty() {
                    building.remove(&name);
                } else {
                    building.insert(name, members.members);
                }
            }
            Ok(SourceEvent::InitDone) => {
                // Anything not seen between Init and InitDone is gone.
                self.current = self.building.take().unwrap_or_default();
                // The relist is the current state: its position (the list's
                // own version, else its objects' highest) replaces the old
                // one even when it is lower (a restored server).
                let listed = self.live.as_ref().and_then(|l| l.guard.take_list_rv());
                self.revision = listed
                    .or(self.building_revision.take())
                    .or(self.revision.take());
                self.building_revision = None;
                self.dirty = true;
                ctx.owe_liveness();
                if let Some(live) = self.live.as_mut() {
                    live.synced = true;
                }
            }
            Ok(SourceEvent::Apply(name, rv, members)) => {
                self.log_unusable(&members);
                self.revision = newer(self.revision.take(), rv);
                if members.members.is_empty() {
                    self.current.remove(&name);
                } else {
                    self.current.insert(name, members.members);
                }
                self.dirty = true;
            }
            Ok(SourceEvent::Delete(name, rv)) => {
                self.revision = newer(self.revision.take(), rv);
                self.current.remove(&name);
                self.dirty = true;
            }
        }
    }

    /// Emits the view when it changed, or the liveness owed after a
    /// (re)sync.
    fn publish(&mut self, ctx: &mut StepContext) {
        if !self.live.as_ref().is_some_and(|l| l.synced) {
            return;
        }
        if self.dirty {
            self.dirty = false;
            match self.view() {
                Ok(view) => {
                    let changed = self.last.as_ref().is_none_or(|l| !l.same_content(&view));
                    if changed {
                        *self
                            .inner
                            .last_seen
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner) = Some(view.clone());
                        self.last = Some(view.clone());
                        ctx.push_liveness(ProviderEvent::Snapshot(view));
                    }
                }
                Err(fault) => ctx.push(ProviderEvent::Fault(fault)),
            }
        }
        // Events that leave the view unchanged still prove the API server
        // alive; they also keep a busy watcher from starving the ping.
        let quiet = ctx.last_liveness().elapsed() >= self.ping_period();
        if ctx.owes_liveness() || quiet {
            ctx.push_liveness(ProviderEvent::heartbeat());
        }
    }

    /// The union of every object's members. The same id from two objects
    /// (an endpoint moving between slices) counts once: the first object
    /// by name that shows it serving wins (else the first), and it is
    /// blocked if any object blocks it.
    fn view(&self) -> Result<ProviderSnapshot, ProviderFault> {
        let mut all: Vec<&MappedMember> = self.current.values().flatten().collect();
        all.sort_by(|a, b| a.node.id.cmp(&b.node.id));
        let mut members = Vec::with_capacity(all.len());
        let mut blocked: Vec<NodeId> = Vec::new();
        let mut i = 0;
        while i < all.len() {
            let mut first = all[i];
            let mut is_blocked = first.blocked;
            let mut j = i + 1;
            while j < all.len() && all[j].node.id == first.node.id {
                is_blocked |= all[j].blocked;
                if first.node.state != MemberState::Serving
                    && all[j].node.state == MemberState::Serving
                {
                    first = all[j];
                }
                j += 1;
            }
            if is_blocked {
                blocked.push(first.node.id.clone());
            }
            members.push(first.node.clone());
            i = j;
        }
        let snapshot = ProviderSnapshot::new(members, blocked)
            .map_err(|e| ProviderFault::retryable(FaultKind::MalformedResponse, e.to_string()))?;
        Ok(match &self.revision {
            Some(rv) => snapshot.with_revision(rv.clone()),
            None => snapshot,
        })
    }

    /// A failed liveness request is reported, but the watch is left alone:
    /// the watcher reports its own failures, and a stuck watch is replaced
    /// by its idle timeout. Tearing a healthy watch down over one slow
    /// request would cost a full relist.
    fn ping_failed(&mut self, ctx: &mut StepContext, failure: Failure) {
        let fault = match classify(&failure, &self.target) {
            Verdict::Fault(fault) => fault,
            Verdict::Terminate(t) => ProviderFault::retryable(
                FaultKind::BackendUnavailable,
                format!("GET /version: {t:?}"),
            ),
        };
        tracing::debug!(provider = %self.inner.descriptor_id, ?failure, "liveness request failed");
        ctx.owe_liveness();
        ctx.push(ProviderEvent::Fault(fault));
    }

    /// Drops the connection and decides what follows: a fault and a
    /// reconnect after the kit's retry delay, or the end of the stream.
    fn fail(&mut self, ctx: &mut StepContext, failure: Failure) {
        let verdict = classify(&failure, &self.target);
        tracing::debug!(provider = %self.inner.descriptor_id, ?failure, ?verdict, "watch failed");
        self.live = None;
        self.building = None;
        ctx.owe_liveness();
        match verdict {
            Verdict::Terminate(termination) => ctx.terminate(termination),
            Verdict::Fault(fault) => {
                // An attempt that stayed up a whole heartbeat interval was a
                // success: the next failure starts the schedule again.
                if self.attempt_started.elapsed() >= self.options.heartbeat_interval {
                    ctx.succeeded();
                }
                ctx.fault(fault);
            }
        }
    }
}
