//! The driver's provider streams: one task per running provider, tagged
//! with its handle, opened, reopened and closed as the controller decides;
//! and what the driver does with each item they send.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt;
use provisioning_failover::ProviderHandle;
use provisioning_provider_api::{
    ClusterProvider, ProviderEvent, ProviderHealth, ProviderId, ProviderTermination, StreamOptions,
};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{Instrument, Span, debug, info, info_span, trace_span, warn};

use super::Driver;
use crate::liveness_prober::LivenessProber;

/// One event from a provider's stream, tagged with the stream it came from.
pub(super) struct StreamItem {
    pub(super) handle: ProviderHandle,
    pub(super) event: ProviderEvent,
    pub(super) at: Instant,
}

/// A stream task the driver runs for one provider.
pub(super) struct RunningStream {
    pub(super) handle: ProviderHandle,
    /// What the stream was opened with: a policy change reopens it.
    pub(super) options: StreamOptions,
    pub(super) task: JoinHandle<()>,
}

impl Driver {
    pub(super) fn on_item(&mut self, item: StreamItem) {
        let id = item.handle.id().clone();
        let current = self
            .streams
            .get(&id)
            .is_some_and(|s| s.handle == item.handle);
        if !current {
            // A stream closed since this item was sent.
            return;
        }
        // Every heartbeat passes here: below `debug`, so that `info` (and an
        // exporter at `info`) stays quiet on a healthy cluster.
        let _span = trace_span!("provider_event", provider = %id).entered();
        let now = item.at;
        match &item.event {
            ProviderEvent::Snapshot(snapshot) => {
                self.latest.insert(id.clone(), snapshot.clone());
                let suspicious = self.hub.assess_candidate(&id, snapshot);
                // Only fails for an unknown id, and the stream is current.
                let _ = self.controller.set_suspicious(
                    &id,
                    snapshot.hash(),
                    suspicious,
                    now.into_std(),
                );
            }
            ProviderEvent::Fault(fault) => {
                debug!(kind = %fault.kind, permanent = fault.permanent, detail = %fault.detail, "fault");
                self.hub.metrics().record_stream_interruption(&id);
            }
            ProviderEvent::Terminated(termination) => {
                info!(reason = termination.as_str(), "stream terminated");
                self.hub.terminated(id.clone(), termination);
                if let Some(stream) = self.streams.remove(&id) {
                    stream.task.abort();
                }
            }
            ProviderEvent::Heartbeat(_) => {}
        }
        self.controller
            .on_event(&item.handle, &item.event, now.into_std());
        let snapshot = match item.event {
            ProviderEvent::Snapshot(snapshot) => Some((id, snapshot)),
            _ => None,
        };
        self.apply_decisions(now, snapshot);
    }

    pub(super) fn open_stream(&mut self, handle: ProviderHandle) {
        let id = handle.id().clone();
        let Some(provider) = self.providers.get(&id).cloned() else {
            warn!(provider = %id, "stream requested for an unknown provider");
            return;
        };
        if let Some(previous) = self.streams.remove(&id) {
            previous.task.abort();
        }
        self.latest.remove(&id);
        debug!(provider = %id, "stream opened");
        let options = self.policy.stream_options();
        // A stream opened again for a provider that was left unreachable
        // (a fault, its end, silence) is a reconnect; a warm standby opened
        // again, or a provider enabled again, is not.
        let after_failure = self
            .controller
            .status(&id)
            .is_some_and(|s| s.health == Some(ProviderHealth::Unreachable));
        let reconnects = self.count_open(&id, after_failure);
        let task = self.spawn_stream(provider, handle.clone(), options, reconnects);
        self.streams.insert(
            id,
            RunningStream {
                handle,
                options,
                task,
            },
        );
    }

    /// The reconnect count of `id`'s next stream, one more when it is
    /// opened again after a failure.
    fn count_open(&mut self, id: &ProviderId, reconnect: bool) -> Arc<AtomicU64> {
        match self.reconnects.get(id) {
            Some(count) => {
                if reconnect {
                    count.fetch_add(1, Ordering::Relaxed);
                }
                count.clone()
            }
            None => {
                let count = Arc::new(AtomicU64::new(0));
                self.reconnects.insert(id.clone(), count.clone());
                count
            }
        }
    }

    /// Runs one stream of `provider`, tagging its items with `tag`, with
    /// the provider's liveness probes beside it: their faults travel as
    /// the stream's own.
    ///
    /// The task runs inside a `provider_stream` span (what the backend
    /// logs while it retries appears under it). Its `reconnects` field
    /// starts from `reconnects`, the count kept for the provider across
    /// its streams, and follows each recovery after a fault.
    pub(super) fn spawn_stream(
        &self,
        provider: Arc<dyn ClusterProvider>,
        tag: ProviderHandle,
        options: StreamOptions,
        reconnects: Arc<AtomicU64>,
    ) -> JoinHandle<()> {
        // A root span that follows from what opened it: a child of the
        // failover decision would keep that decision open (and unexported)
        // for as long as the stream runs.
        let span = info_span!(
            parent: None,
            "provider_stream",
            provider = %tag.id(),
            kind = %provider.descriptor().kind,
            generation = tag.generation(),
            reconnects = reconnects.load(Ordering::Relaxed),
        );
        span.follows_from(Span::current());
        // Opened inside the span, so that what the backend starts there
        // can carry it too.
        // Same service seed, same provider: the same retry times.
        let seeded = options.with_jitter_seed_for(self.rng_seed, tag.id());
        let mut stream = span.in_scope(|| provider.stream(seeded));
        let mut prober = LivenessProber::new(provider, options, self.hub.metrics().clone());
        let tx = self.items_tx.clone();
        let recorder = span.clone();
        let task = async move {
            let mut terminated = false;
            // A fault since the last snapshot or heartbeat: the next one is
            // a recovery.
            let mut faulted = false;
            loop {
                let event = tokio::select! {
                    event = stream.next() => match event {
                        Some(event) => {
                            if event.is_liveness() {
                                prober.on_stream_liveness();
                            }
                            event
                        }
                        None => break,
                    },
                    fault = prober.next_fault() => ProviderEvent::Fault(fault),
                };
                if matches!(event, ProviderEvent::Fault(_)) {
                    faulted = true;
                } else if faulted && event.is_liveness() {
                    faulted = false;
                    let count = reconnects.fetch_add(1, Ordering::Relaxed) + 1;
                    recorder.record("reconnects", count);
                    debug!(reconnects = count, "stream recovered after a fault");
                }
                terminated = matches!(event, ProviderEvent::Terminated(_));
                let item = StreamItem {
                    handle: tag.clone(),
                    event,
                    at: Instant::now(),
                };
                if tx.send(item).await.is_err() || terminated {
                    return;
                }
            }
            if !terminated {
                // A stream that ends without saying why ended normally.
                let item = StreamItem {
                    handle: tag,
                    event: ProviderEvent::Terminated(ProviderTermination::Ended),
                    at: Instant::now(),
                };
                let _ = tx.send(item).await;
            }
        };
        tokio::spawn(task.instrument(span))
    }

    /// Reopens every running stream opened with other options than the
    /// policy's (the heartbeat interval a provider keeps, its fast retries
    /// and backoff are fixed when its stream opens). The controller keeps
    /// its view of the provider: the reopened stream carries the same
    /// handle, its first snapshot is published only if it differs, and the
    /// last snapshot stays at hand for a switch meanwhile.
    pub(super) fn reopen_streams(&mut self) {
        let options = self.policy.stream_options();
        let stale: Vec<ProviderId> = self
            .streams
            .iter()
            .filter(|(_, s)| s.options != options)
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            let Some(provider) = self.providers.get(&id).cloned() else {
                continue;
            };
            let Some(stream) = self.streams.get(&id) else {
                continue;
            };
            let handle = stream.handle.clone();
            let reconnects = self.count_open(&id, false);
            let task = self.spawn_stream(provider, handle, options, reconnects);
            if let Some(stream) = self.streams.get_mut(&id) {
                stream.task.abort();
                stream.task = task;
                stream.options = options;
            }
            debug!(provider = %id, "stream reopened with the new policy's options");
        }
    }

    pub(super) fn close_stream(&mut self, handle: &ProviderHandle) {
        let id = handle.id();
        if self.streams.get(id).is_some_and(|s| &s.handle == handle) {
            if let Some(stream) = self.streams.remove(id) {
                stream.task.abort();
            }
            self.latest.remove(id);
            debug!(provider = %id, "stream closed");
        }
    }
}
