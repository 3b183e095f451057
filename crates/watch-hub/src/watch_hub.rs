//! [`ProviderWatchHub`]: numbering, diff, shrink guard and fan-out.

use std::borrow::BorrowMut;
use std::sync::Arc;
use std::time::{Duration, Instant};

use provisioning_provider_api::{
    ProviderHealth, ProviderId, ProviderSnapshot, ProviderTermination, SwitchReason, format_hash,
};

use crate::delivery::Retired;
use crate::delivery::{Fanout, Retain};
use crate::error::HubError;
use crate::event_publisher::ProvisioningEventPublisher;
use crate::hub_config::HubConfig;
use crate::hub_handle::HubHandle;
use crate::provisioning_metrics::ProvisioningMetrics;
use crate::publish_outcome::PublishOutcome;
use crate::published_snapshot::PublishedSnapshot;
use crate::run_id::RunId;
use crate::shrink_guard::{
    HeldShrink, ShrinkGuard, disagreement, removed_in_diff, removed_members,
};
use crate::snapshot_differ::SnapshotDiffer;

/// The one place that publishes topology: numbers every line (`run_id`,
/// `seq_no`, `epoch`), diffs each snapshot against the previously published
/// one, holds suspicious shrinks (decision 5) and hands each publication to
/// every consumer's own bounded queue without waiting for any of them.
///
/// The owner (the facade's single driver task) calls it in the order the
/// failover controller decides; every method is cheap and never blocks on a
/// consumer. Consumers attach through [`handle`](Self::handle).
///
/// Time is injected: `now` is when the provider event arrived (it starts the
/// latency metric and the shrink hold), and [`tick`](Self::tick) with
/// [`next_deadline`](Self::next_deadline) drives the hold.
pub struct ProviderWatchHub {
    publisher: ProvisioningEventPublisher,
    fanout: Arc<Fanout>,
    metrics: ProvisioningMetrics,
    guard: ShrinkGuard,
    active: Option<ProviderId>,
    last_active: Option<ProviderId>,
    unavailable: bool,
    last: Option<Arc<PublishedSnapshot>>,
    /// The diff of each publication, and the standbys' diffs from `last`.
    differ: SnapshotDiffer,
}

impl ProviderWatchHub {
    /// A hub with `config`; starts its notifier and reclaimer threads.
    pub fn new(config: HubConfig) -> Result<Self, HubError> {
        config.validate()?;
        let run_id = config.run_id.unwrap_or_else(RunId::random);
        let metrics = config.metrics.clone().unwrap_or_default();
        let publisher = ProvisioningEventPublisher::new(
            run_id,
            config.history_publications,
            config.history_members,
        );
        let fanout = Arc::new(Fanout::new(
            publisher.history().clone(),
            metrics.clone(),
            config.queue_capacity,
        )?);
        Ok(Self {
            publisher,
            fanout,
            metrics,
            guard: ShrinkGuard::new(config.max_shrink_ratio, config.shrink_confirm),
            active: None,
            last_active: None,
            unavailable: false,
            last: None,
            differ: SnapshotDiffer::default(),
        })
    }

    /// A handle to attach consumers and read state from any thread.
    pub fn handle(&self) -> HubHandle {
        HubHandle {
            fanout: self.fanout.clone(),
            run_id: self.publisher.run_id(),
        }
    }

    /// Runs `work` (one step of the owner: handling a provider event, a
    /// command, a timer) as one delivery transaction: what it publishes
    /// reaches the consumers with one wake-up each, when `work` returns —
    /// a fault's `provider_health`, the `provider_changed` and the new
    /// snapshot in one go, and the first wake-up does not compete with the
    /// rest of the step for the CPU. Before the hub assesses a candidate
    /// ([`assess_candidate`](Self::assess_candidate)), it wakes the
    /// consumers of what the step published so far, so that they are not
    /// held up by the assessment. Transactions nest; only the outermost
    /// one wakes.
    ///
    /// `owner` is whatever holds the hub (the hub itself, or the service
    /// driver), so that `work` can use the rest of the owner too. Keep
    /// `work` bounded: nothing it publishes reaches a consumer before it
    /// returns or assesses.
    pub fn transaction<O, R>(owner: &mut O, work: impl FnOnce(&mut O) -> R) -> R
    where
        O: BorrowMut<ProviderWatchHub>,
    {
        let fanout = owner.borrow_mut().fanout.clone();
        fanout.begin_transaction();
        // Ends even when `work` panics, or every later wake-up is held.
        let _end = TransactionEnd(fanout);
        work(owner)
    }

    /// This run's id.
    pub fn run_id(&self) -> RunId {
        self.publisher.run_id()
    }

    /// The current epoch (1 until the first switch).
    pub fn epoch(&self) -> u64 {
        self.publisher.epoch()
    }

    /// The last `seq_no` given out.
    pub fn last_seq_no(&self) -> u64 {
        self.publisher.last_seq_no()
    }

    /// The active provider (none before the first activation and while
    /// unavailable).
    pub fn active_provider(&self) -> Option<&ProviderId> {
        self.active.as_ref()
    }

    /// The last published snapshot.
    pub fn latest(&self) -> Option<&Arc<PublishedSnapshot>> {
        self.last.as_ref()
    }

    /// The snapshot held back as a suspicious shrink, if any.
    pub fn held_shrink(&self) -> Option<&ProviderSnapshot> {
        self.guard.held.as_ref().map(|held| &held.snapshot)
    }

    /// Replaces the shrink guard's numbers (a policy reload): later
    /// snapshots are judged by `max_shrink_ratio`, and a shrink held now is
    /// confirmed `shrink_confirm` after it was first held. Refused (nothing
    /// changes) when the ratio is outside (0, 1].
    pub fn set_shrink_guard(
        &mut self,
        max_shrink_ratio: f64,
        shrink_confirm: Duration,
    ) -> Result<(), HubError> {
        HubConfig::new()
            .with_max_shrink_ratio(max_shrink_ratio)
            .validate()?;
        self.guard.set(max_shrink_ratio, shrink_confirm);
        Ok(())
    }

    /// When [`tick`](Self::tick) should be called next.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.guard.deadline()
    }

    /// The metrics the hub records into.
    pub fn metrics(&self) -> &ProvisioningMetrics {
        &self.metrics
    }

    /// The one question the failover controller asks about a candidate
    /// (decision 5): would `provider`'s view `snapshot`, published now, be a
    /// suspicious shrink of the published view? The controller does not
    /// choose such a candidate while another healthy one exists. The facade
    /// asks it for every running provider whenever the published snapshot,
    /// the active provider or a provider's view changes.
    ///
    /// The same pass finds what a switch to the candidate would publish: for
    /// a provider that is not active, the diff from the published snapshot
    /// is kept (while the published snapshot and that view stay the same,
    /// and if it is not much larger than an eighth of the published view),
    /// so that a switch to a warm standby publishes without diffing; and
    /// the provider's `provisioning_provider_disagreement_members` gauge
    /// (0 for the active provider) is set from it, so the gauge follows
    /// every publication and every switch (CONTRACTS §5).
    ///
    /// Inside a [`transaction`](Self::transaction), the consumers of what
    /// was published so far are woken first.
    pub fn assess_candidate(&mut self, provider: &ProviderId, snapshot: &ProviderSnapshot) -> bool {
        // Consumers of what this step published are not held up by the
        // assessment (see `transaction`).
        self.fanout.flush();
        let Some(last) = &self.last else {
            return false;
        };
        let published = last.members().len();
        if self.active.as_ref() == Some(provider) || snapshot.hash() == last.hash() {
            self.metrics.set_disagreement(provider, 0);
            return self.shrinks_published(snapshot);
        }
        if published == 0 || snapshot.is_empty() {
            // One side is empty: they disagree on every member of the other.
            self.metrics
                .set_disagreement(provider, published + snapshot.len());
            return self.shrinks_published(snapshot);
        }
        let (removed, disagreeing) = self.differ.prepare(provider, last, snapshot);
        self.metrics.set_disagreement(provider, disagreeing);
        self.guard.is_suspicious(published, removed, snapshot.len())
    }

    /// Whether `snapshot` would be a suspicious shrink of the published
    /// view, without keeping a diff (the active provider's view, or one
    /// side empty).
    fn shrinks_published(&self, snapshot: &ProviderSnapshot) -> bool {
        let Some(last) = &self.last else {
            return false;
        };
        let published = last.members().len();
        // Cheap answers first; the merge is a pass over both member lists.
        if published == 0 {
            return false;
        }
        let at_least_removed = published.saturating_sub(snapshot.len());
        if snapshot.is_empty()
            || self
                .guard
                .is_suspicious(published, at_least_removed, snapshot.len())
        {
            return true;
        }
        if snapshot.is_hashed() && snapshot.hash() == last.hash() {
            return false;
        }
        let removed = removed_members(last.members(), snapshot.members());
        self.guard.is_suspicious(published, removed, snapshot.len())
    }

    /// The first activation of the run: publishes `snapshot` (and a `join`
    /// per member, a `blocked` per blocked id) without `provider_changed`.
    /// Later activations are [`switch`](Self::switch)es.
    pub fn activate(
        &mut self,
        provider: ProviderId,
        snapshot: ProviderSnapshot,
        now: Instant,
    ) -> Result<PublishOutcome, HubError> {
        if self.last_active.is_some() {
            return Err(HubError::AlreadyActivated);
        }
        self.make_active(&provider, snapshot.len());
        self.differ.fill(self.last.as_deref(), &provider, &snapshot);
        Ok(self.publish_diffed(provider, snapshot, now))
    }

    /// A snapshot from the active provider. An unchanged hash publishes
    /// nothing; a suspicious shrink is held; otherwise the snapshot and its
    /// diff are published (and any held shrink is dropped).
    pub fn publish_active(
        &mut self,
        provider: ProviderId,
        snapshot: ProviderSnapshot,
        now: Instant,
    ) -> PublishOutcome {
        self.metrics.set_members(&provider, snapshot.len());
        if self.active.as_ref() != Some(&provider) {
            return PublishOutcome::NotActive;
        }
        let (hash, diffed) = self.differ.hash_and_diff(self.last.as_deref(), &snapshot);
        if let (Some(held), Some(until)) = (&self.guard.held, self.guard.deadline())
            && held.snapshot.hash() == hash
        {
            self.differ.clear();
            return PublishOutcome::HeldShrink { until };
        }
        let Some(last) = &self.last else {
            self.differ.fill(self.last.as_deref(), &provider, &snapshot);
            return self.publish_diffed(provider, snapshot, now);
        };
        if last.hash() == hash {
            // Back to the published view: the shrink did not stand.
            self.differ.clear();
            self.drop_held();
            return PublishOutcome::Unchanged;
        }
        let published = last.members().len();
        if !diffed {
            self.differ.diff_from(last, &snapshot);
        }
        let removed = removed_in_diff(self.differ.diff());
        if self.guard.is_suspicious(published, removed, snapshot.len()) {
            self.differ.clear();
            self.metrics.record_suppressed_shrink(&provider);
            tracing::info!(
                provider = %provider,
                published,
                removed,
                members = snapshot.len(),
                "watch hub holds a suspicious shrink"
            );
            let since = self.guard.held.as_ref().map_or(now, |held| held.since);
            let replaced = self.guard.held.replace(HeldShrink {
                snapshot,
                since,
                arrival: now,
            });
            if let Some(replaced) = replaced {
                self.fanout
                    .retire(vec![Retired::View(Box::new(replaced.snapshot))]);
            }
            let until = self.guard.deadline().unwrap_or(now);
            return PublishOutcome::HeldShrink { until };
        }
        self.drop_held();
        self.publish_diffed(provider, snapshot, now)
    }

    /// A snapshot from a running provider that is not active: updates its
    /// `members` and `disagreement` gauges, and confirms a held shrink at
    /// once when it holds exactly the held view (a standby never vetoes one).
    pub fn observe_standby(
        &mut self,
        provider: &ProviderId,
        snapshot: &ProviderSnapshot,
        now: Instant,
    ) -> PublishOutcome {
        // The hold runs on the active provider's clock; a standby only
        // confirms. `now` stays for symmetry with the other calls.
        let _ = now;
        self.metrics.set_members(provider, snapshot.len());
        if self.active.as_ref() == Some(provider) {
            return PublishOutcome::Unchanged;
        }
        let hash = snapshot.hash();
        let outcome = if self
            .guard
            .held
            .as_ref()
            .is_some_and(|held| held.snapshot.hash() == hash)
        {
            self.release_held()
        } else {
            PublishOutcome::Unchanged
        };
        let disagreeing = match &self.last {
            Some(last) if last.hash() == hash => 0,
            Some(last) => disagreement(last.members(), snapshot.members()),
            None => snapshot.len(),
        };
        self.metrics.set_disagreement(provider, disagreeing);
        outcome
    }

    /// A switch decided by the failover controller: `provider_changed`
    /// (epoch + 1, `snapshot_hash` of `snapshot`), then `snapshot`, then its
    /// diff from the previously published snapshot, whichever provider that
    /// came from. Never held by the shrink guard; drops a held shrink.
    /// `from` defaults to the last active provider (after all-down too).
    pub fn switch(
        &mut self,
        from: Option<ProviderId>,
        to: ProviderId,
        reason: SwitchReason,
        snapshot: ProviderSnapshot,
        now: Instant,
    ) -> PublishOutcome {
        self.drop_held();
        let from = from.or_else(|| self.last_active.clone());
        tracing::info!(
            from = ?from.as_ref().map(ProviderId::as_str),
            to = %to,
            %reason,
            epoch = self.publisher.epoch() + 1,
            "watch hub switches provider"
        );
        self.metrics.record_failover(from.as_ref(), &to, reason);
        let change = self
            .publisher
            .provider_changed(from, to.clone(), reason, snapshot.hash());
        self.fanout.publish(change, Retain::Nothing, Vec::new());
        self.make_active(&to, snapshot.len());
        self.differ.fill(self.last.as_deref(), &to, &snapshot);
        self.publish_diffed(to, snapshot, now)
    }

    /// Publishes the held shrink if its `shrink_confirm` has passed.
    pub fn tick(&mut self, now: Instant) -> PublishOutcome {
        match self.guard.deadline() {
            Some(deadline) if deadline <= now => self.release_held(),
            Some(until) => PublishOutcome::HeldShrink { until },
            None => PublishOutcome::Unchanged,
        }
    }

    /// A `provider_health` line (`code` is dropped when healthy); returns
    /// its `seq_no`. A healthy provider's retained termination is forgotten.
    pub fn provider_health(
        &mut self,
        provider: ProviderId,
        health: ProviderHealth,
        code: Option<&str>,
        detail: &str,
    ) -> u64 {
        self.metrics.set_provider_health(&provider, health);
        let retain = match health {
            ProviderHealth::Healthy => Retain::Recovered(provider.clone()),
            _ => Retain::Nothing,
        };
        let publication = self
            .publisher
            .provider_health(provider, health, code, detail);
        self.fanout.publish(publication, retain, Vec::new());
        self.publisher.last_seq_no()
    }

    /// No provider is usable: a `provisioning_unavailable` line (retained for
    /// late subscribers until the next snapshot); the last snapshot stays the
    /// latest. Returns its `seq_no`.
    pub fn unavailable(&mut self, since_ms: u64) -> u64 {
        self.drop_held();
        self.active = None;
        self.unavailable = true;
        self.metrics.set_unavailable(true);
        self.metrics.set_active_provider(None);
        let publication = self.publisher.unavailable(since_ms);
        self.fanout
            .publish(publication, Retain::Unavailable, Vec::new());
        self.publisher.last_seq_no()
    }

    /// A provider's stream ended: a `terminated` line, retained for late
    /// subscribers, and one stream interruption. Returns its `seq_no`.
    pub fn terminated(&mut self, provider: ProviderId, termination: &ProviderTermination) -> u64 {
        self.metrics.record_stream_interruption(&provider);
        let publication = self
            .publisher
            .terminated(provider.clone(), termination.clone());
        self.fanout
            .publish(publication, Retain::Terminated(provider), Vec::new());
        self.publisher.last_seq_no()
    }

    /// Stops every consumer and waits up to `timeout` for their threads;
    /// event subscriptions end and the topology channel closes. Idempotent.
    pub fn shutdown(&mut self, timeout: Duration) -> Result<(), HubError> {
        self.fanout.shutdown(timeout)
    }

    fn make_active(&mut self, provider: &ProviderId, members: usize) {
        self.active = Some(provider.clone());
        self.last_active = Some(provider.clone());
        self.metrics.set_members(provider, members);
        self.metrics.set_active_provider(Some(provider));
        if self.unavailable {
            self.unavailable = false;
            self.metrics.set_unavailable(false);
        }
    }

    fn drop_held(&mut self) {
        if let Some(held) = self.guard.held.take() {
            self.fanout
                .retire(vec![Retired::View(Box::new(held.snapshot))]);
        }
    }

    fn release_held(&mut self) -> PublishOutcome {
        let Some(held) = self.guard.held.take() else {
            return PublishOutcome::Unchanged;
        };
        let Some(provider) = self.active.clone() else {
            return PublishOutcome::NotActive;
        };
        tracing::info!(
            provider = %provider,
            members = held.snapshot.len(),
            "watch hub publishes the held shrink"
        );
        self.differ
            .fill(self.last.as_deref(), &provider, &held.snapshot);
        self.publish_diffed(provider, held.snapshot, held.arrival)
    }

    /// Publishes `snapshot` with the diff already in `self.differ`.
    fn publish_diffed(
        &mut self,
        provider: ProviderId,
        snapshot: ProviderSnapshot,
        arrival: Instant,
    ) -> PublishOutcome {
        // The numbers are known once the snapshot is numbered; a disabled
        // span records nothing and formats nothing.
        let span = tracing::debug_span!(
            "publication",
            run_id = %self.publisher.run_id(),
            provider = %provider,
            seq_no = tracing::field::Empty,
            epoch = tracing::field::Empty,
            members = tracing::field::Empty,
            hash = tracing::field::Empty,
        );
        let _entered = span.enter();
        let (published, publication) = self.publisher.snapshot(
            provider,
            snapshot,
            self.differ.diff_mut(),
            arrival,
            &self.metrics,
        );
        let seq_no = published.seq_no();
        if !span.is_disabled() {
            span.record("seq_no", seq_no);
            span.record("epoch", published.epoch());
            span.record("members", published.members().len());
            span.record(
                "hash",
                tracing::field::display(format_hash(published.hash())),
            );
        }
        self.differ.published();
        let retired = self
            .last
            .replace(published)
            .map(Retired::Snapshot)
            .into_iter()
            .collect();
        self.fanout.publish(publication, Retain::Snapshot, retired);
        PublishOutcome::Published { seq_no }
    }
}

/// Ends a [`ProviderWatchHub::transaction`].
struct TransactionEnd(Arc<Fanout>);

impl Drop for TransactionEnd {
    fn drop(&mut self) {
        self.0.end_transaction();
    }
}

impl Drop for ProviderWatchHub {
    fn drop(&mut self) {
        self.fanout.close();
    }
}

impl std::fmt::Debug for ProviderWatchHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderWatchHub")
            .field("run_id", &self.publisher.run_id())
            .field("seq_no", &self.publisher.last_seq_no())
            .field("epoch", &self.publisher.epoch())
            .field("active", &self.active)
            .field("latest", &self.last)
            .field("holding_shrink", &self.guard.held.is_some())
            .finish()
    }
}
