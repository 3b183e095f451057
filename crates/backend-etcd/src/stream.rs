//! The event stream of an etcd provider: one step of the reconnecting-stream
//! kit (which owns the queue, the retries and their seeded jitter).
//!
//! Cycle: connect → list the prefix → snapshot (or heartbeat when unchanged)
//! → watch from the list's revision + 1. Every interruption (error, closed
//! or cancelled watch, compaction, stalled progress) drops the watch and
//! starts the cycle again with a fresh list; the stream never resumes from a
//! remembered revision (ARCHITECTURE "Backend notes — etcd"). Relists
//! after a compaction are paced (the kit's resync pacing), so a server that cancels
//! every watch as compacted gets a few requests per second, not a loop.
//!
//! Liveness: every `heartbeat_interval / 2` the stream sends a watch
//! progress request and a count-only read of the prefix (needs a leader,
//! read permission and the same cluster). The progress notification is
//! yielded as a heartbeat and never used as a resume point.

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use provisioning_provider_api::{
    ProviderEvent, ProviderFault, ProviderSnapshot, ProviderStream, ProviderTermination,
    StreamOptions,
};
use provisioning_stream_kit::{ReconnectingStream, StepContext, StreamStep};
use tokio::time::{Instant, sleep_until};

use crate::client::{Session, SessionWatch, WatchMessage};
use crate::error::ClientError;
use crate::provider::Inner;
use crate::view::PrefixView;

/// Floor of the liveness tick, whatever interval the service asks for.
const MIN_TICK: Duration = Duration::from_millis(50);
/// Bounds of the deadline of one unary request.
const MIN_OP_TIMEOUT: Duration = Duration::from_millis(500);
const MAX_OP_TIMEOUT: Duration = Duration::from_secs(5);
/// Watch responses already buffered that are folded into one snapshot.
const MAX_COALESCED: usize = 256;

pub(crate) fn open(inner: Arc<Inner>, options: StreamOptions) -> ProviderStream {
    let mut stop = inner.stop.subscribe();
    let step = WatchLoop::new(inner, &options);
    ReconnectingStream::new(step, options)
        .close_on(async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        })
        .into_stream()
}

/// What woke the watching step.
enum Wake {
    Message(Result<WatchMessage, ClientError>),
    Tick,
    ProgressDeadline,
}

struct WatchLoop {
    inner: Arc<Inner>,
    /// Liveness tick: progress request + check.
    tick: Duration,
    /// Deadline of one unary request.
    op_timeout: Duration,
    session: Option<Session>,
    watch: Option<SessionWatch>,
    view: PrefixView,
    /// The cluster this stream has been reading (first list).
    cluster_id: Option<u64>,
    /// The content last yielded on this stream.
    last: Option<ProviderSnapshot>,
    next_tick: Instant,
    /// Set while a progress request is unanswered.
    progress_deadline: Option<Instant>,
    /// Whether the watch delivered anything since the progress request.
    seen_since_request: bool,
    registration_ensured: bool,
}

impl WatchLoop {
    fn new(inner: Arc<Inner>, options: &StreamOptions) -> Self {
        let tick = (options.heartbeat_interval / 2).max(MIN_TICK);
        let op_timeout = options
            .heartbeat_interval
            .clamp(MIN_OP_TIMEOUT, MAX_OP_TIMEOUT);
        let now = Instant::now();
        Self {
            inner,
            tick,
            op_timeout,
            session: None,
            watch: None,
            view: PrefixView::default(),
            cluster_id: None,
            last: None,
            next_tick: now + tick,
            progress_deadline: None,
            seen_since_request: false,
            registration_ensured: false,
        }
    }
}

impl StreamStep for WatchLoop {
    async fn step(&mut self, ctx: &mut StepContext) {
        if !self.registration_ensured {
            // A stream opened outside a runtime starts the registration here.
            crate::provider::ensure_registration(&self.inner);
            self.registration_ensured = true;
        }
        if self.watch.is_some() {
            self.step_watch(ctx).await;
        } else {
            self.resync(ctx).await;
        }
    }
}

impl WatchLoop {
    /// Connect if needed, list, yield the view, watch from the list's
    /// revision + 1.
    async fn resync(&mut self, ctx: &mut StepContext) {
        if self.session.is_none() {
            let endpoint = self.inner.current_endpoint();
            match Session::connect(
                &self.inner.config,
                &self.inner.secrets,
                &endpoint,
                self.op_timeout,
            )
            .await
            {
                Ok(session) => {
                    self.inner
                        .liveness
                        .attach(session.endpoint(), session.maintenance());
                    self.session = Some(session);
                }
                Err(e) => return self.fail(ctx, e),
            }
        }
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let listing = match session.list().await {
            Ok(listing) => listing,
            Err(e) => return self.fail(ctx, e),
        };
        if !self.same_cluster(ctx, listing.cluster_id) {
            return;
        }
        if listing.revision < self.view.revision() {
            ctx.push(ProviderEvent::Fault(ProviderFault::resync(format!(
                "etcd revision went back from {} to {} (restored from a backup?)",
                self.view.revision(),
                listing.revision
            ))));
        }
        let revision = listing.revision;
        self.view.replace(listing.entries, revision);
        self.emit_view(ctx, true);
        let Some(session) = self.session.as_mut() else {
            return;
        };
        match session.watch(revision + 1).await {
            Ok(watch) => {
                // The failures are reset only once the watch delivers (see
                // `on_message`): a watch the server cancels right after
                // creating it must not make the retries hot.
                self.watch = Some(watch);
                self.next_tick = Instant::now() + self.tick;
                self.progress_deadline = None;
            }
            Err(e) => self.fail(ctx, e),
        }
    }

    async fn step_watch(&mut self, ctx: &mut StepContext) {
        let Some(watch) = self.watch.as_mut() else {
            return;
        };
        let deadline = self.progress_deadline;
        let wake = tokio::select! {
            biased;
            // Before the deadline: a progress answer already buffered when
            // the deadline fires must count.
            message = watch.next() => Wake::Message(message),
            () = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                Wake::ProgressDeadline
            }
            () = sleep_until(self.next_tick) => Wake::Tick,
        };
        match wake {
            Wake::Message(Ok(message)) => self.on_message(ctx, message),
            Wake::Message(Err(e)) => self.fail(ctx, e),
            Wake::Tick => self.on_tick(ctx).await,
            Wake::ProgressDeadline => {
                self.progress_deadline = None;
                if self.seen_since_request {
                    // Events arrived (the server answers progress requests
                    // only when every watcher is synced): alive.
                    ctx.push_liveness(ProviderEvent::heartbeat());
                } else {
                    let endpoint = self
                        .session
                        .as_ref()
                        .map(|s| s.endpoint().to_owned())
                        .unwrap_or_default();
                    self.fail(
                        ctx,
                        ClientError::WatchStalled {
                            endpoint,
                            timeout_ms: self.tick.as_millis(),
                        },
                    );
                }
            }
        }
    }

    fn on_message(&mut self, ctx: &mut StepContext, message: WatchMessage) {
        self.seen_since_request = true;
        if !matches!(message, WatchMessage::Created) {
            ctx.succeeded();
        }
        match message {
            WatchMessage::Created => {}
            WatchMessage::Progress => {
                self.progress_deadline = None;
                ctx.push_liveness(ProviderEvent::heartbeat());
            }
            WatchMessage::Changes { changes, revision } => {
                let mut faults = self.view.apply(changes, revision);
                // A burst: apply what is already buffered, then yield one
                // snapshot of the latest revision (bounded work per event).
                let mut next = None;
                for _ in 0..MAX_COALESCED {
                    let Some(watch) = self.watch.as_mut() else {
                        break;
                    };
                    match watch.next().now_or_never() {
                        Some(Ok(WatchMessage::Changes { changes, revision })) => {
                            faults.extend(self.view.apply(changes, revision));
                        }
                        Some(other) => {
                            next = Some(other);
                            break;
                        }
                        None => break,
                    }
                }
                self.emit_view(ctx, false);
                faults
                    .into_iter()
                    .for_each(|f| ctx.push(ProviderEvent::Fault(f)));
                match next {
                    Some(Ok(message)) => self.on_message(ctx, message),
                    Some(Err(e)) => self.fail(ctx, e),
                    None => {}
                }
            }
        }
    }

    async fn on_tick(&mut self, ctx: &mut StepContext) {
        self.next_tick = Instant::now() + self.tick;
        if let Some(watch) = self.watch.as_mut() {
            if let Err(e) = watch.request_progress().await {
                return self.fail(ctx, e);
            }
            if self.progress_deadline.is_none() {
                self.progress_deadline = Some(Instant::now() + self.tick);
                self.seen_since_request = false;
            }
        }
        let Some(session) = self.session.as_mut() else {
            return;
        };
        match session.check().await {
            Ok((cluster_id, _)) => {
                self.same_cluster(ctx, cluster_id);
            }
            Err(e) => self.fail(ctx, e),
        }
    }

    /// Yields the view: a snapshot when its content changed, else a
    /// heartbeat if asked; then a fault per newly seen bad key.
    fn emit_view(&mut self, ctx: &mut StepContext, heartbeat_if_unchanged: bool) {
        let (snapshot, faults) = self.view.snapshot();
        if let Some(snapshot) = snapshot {
            let changed = self
                .last
                .as_ref()
                .is_none_or(|last| !last.same_content(&snapshot));
            if changed {
                self.inner.remember(&snapshot);
                self.last = Some(snapshot.clone());
                ctx.push_liveness(ProviderEvent::Snapshot(snapshot));
            } else if heartbeat_if_unchanged {
                ctx.push_liveness(ProviderEvent::heartbeat());
            }
        }
        faults
            .into_iter()
            .for_each(|f| ctx.push(ProviderEvent::Fault(f)));
    }

    /// Whether `cluster_id` is the cluster this stream reads; if not, the
    /// endpoints now serve another cluster whose revisions are not
    /// comparable with what this stream published, and the stream ends.
    fn same_cluster(&mut self, ctx: &mut StepContext, cluster_id: u64) -> bool {
        match self.cluster_id {
            None => {
                self.cluster_id = Some(cluster_id);
                true
            }
            Some(known) if known == cluster_id => true,
            Some(known) => {
                self.finish(
                    ctx,
                    ProviderTermination::Errored {
                        reason: format!(
                            "the endpoints now serve another etcd cluster (id {known:016x}, now \
                         {cluster_id:016x}); revisions are not comparable"
                        ),
                        permanent: false,
                    },
                );
                false
            }
        }
    }

    /// Reports `error` and has the kit schedule the next attempt (its retry
    /// schedule: at once, after 100 ms, then the policy backoff; a permanent
    /// fault goes straight to the backoff). A compaction relists, paced by
    /// the kit.
    fn fail(&mut self, ctx: &mut StepContext, error: ClientError) {
        let fault = error.to_fault();
        self.watch = None;
        self.progress_deadline = None;
        if fault.is_resync() {
            // Not an error: relist, at once the first time.
            ctx.resync(fault);
            return;
        }
        tracing::debug!(provider = %self.inner.config.id, %fault, "etcd stream fault");
        if error.is_connection_level() {
            self.inner.rotate_endpoint();
        }
        // A reconnect re-reads secrets and may pick another endpoint.
        self.session = None;
        ctx.fault(fault);
    }

    fn finish(&mut self, ctx: &mut StepContext, termination: ProviderTermination) {
        self.watch = None;
        self.session = None;
        ctx.terminate(termination);
    }
}
