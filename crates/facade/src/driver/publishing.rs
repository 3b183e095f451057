//! The driver's publishing: the controller's decisions carried out on the
//! watch hub (activations, switches, health, unavailability), arrived
//! snapshots published or observed, suspicion assessed again after each
//! publication, and the gauges refreshed.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use provisioning_failover::Decision;
use provisioning_provider_api::{ProviderId, ProviderSnapshot, SwitchReason};
use provisioning_watch_hub::PublishOutcome;
use tokio::time::Instant;
use tracing::field::Empty;
use tracing::{Level, Span, debug, info, span, warn};

use super::Driver;

impl Driver {
    /// Decision 5 compares each candidate's view with the published one:
    /// after every publication of a snapshot (a switch included, even to an
    /// identical view), every running provider's flag and disagreement gauge
    /// are computed again (a provider whose view is unchanged only
    /// heartbeats). The hub keeps each standby's diff from that assessment,
    /// so that a switch to it publishes without diffing.
    pub(super) fn refresh_suspicion(&mut self, now: Instant) {
        let basis = self.hub.latest().map(|l| l.seq_no());
        if basis == self.suspicion_basis {
            return;
        }
        self.suspicion_basis = basis;
        for (id, snapshot) in &self.latest {
            let suspicious = self.hub.assess_candidate(id, snapshot);
            // Only fails for an unknown id; `latest` holds running ones.
            let _ = self
                .controller
                .set_suspicious(id, snapshot.hash(), suspicious, now.into_std());
        }
        self.apply_decisions(now, None);
    }

    /// Applies the controller's decisions; then publishes `arrived` (a
    /// snapshot that just came in) if no activation or switch did.
    pub(super) fn apply_decisions(
        &mut self,
        now: Instant,
        arrived: Option<(ProviderId, ProviderSnapshot)>,
    ) {
        let mut consumed = false;
        let decisions = self.controller.drain();
        let span = self.decision_span(&decisions);
        let _entered = span.enter();
        for decision in decisions {
            match decision {
                Decision::OpenStream { handle } => self.open_stream(handle),
                Decision::CloseStream { handle } => self.close_stream(&handle),
                Decision::Activate { to } => {
                    info!(to = %to, "first activation");
                    consumed |= arrived.as_ref().is_some_and(|(id, _)| id == &to);
                    self.publish_switch(to, None, now);
                }
                Decision::Switch { from, to, reason } => {
                    info!(from = %from, to = %to, reason = %reason, "switch");
                    consumed |= arrived.as_ref().is_some_and(|(id, _)| id == &to);
                    self.publish_switch(to, Some((from, reason)), now);
                }
                Decision::HealthChanged {
                    id,
                    health,
                    code,
                    detail,
                } => {
                    info!(provider = %id, health = %health, code = code.unwrap_or("-"), detail = %detail, "health changed");
                    self.hub.provider_health(id, health, code, &detail);
                }
                Decision::BackoffUntil { id, until } => {
                    debug!(provider = %id, in_ms = until.saturating_duration_since(now.into_std()).as_millis() as u64, "backoff");
                }
                Decision::AllDown { since, last_active } => {
                    let since_ms = wall_clock_ms(now.into_std(), since);
                    warn!(last_active = ?last_active.as_ref().map(ProviderId::as_str), "all providers down: provisioning unavailable");
                    self.hub.unavailable(since_ms);
                }
                Decision::AllDownEnded { .. } => info!("a provider is usable again"),
                _ => {}
            }
        }
        if !span.is_disabled() {
            span.record(
                "active",
                self.hub.active_provider().map_or("-", ProviderId::as_str),
            );
            span.record("epoch", self.hub.epoch());
        }
        if consumed {
            return;
        }
        if let Some((id, snapshot)) = arrived {
            if self
                .awaiting_snapshot
                .as_ref()
                .is_some_and(|(to, _)| to == &id)
            {
                self.publish_switch(id, None, now);
                return;
            }
            let outcome = if self.hub.active_provider() == Some(&id) {
                self.hub
                    .publish_active(id.clone(), snapshot, now.into_std())
            } else {
                self.hub.observe_standby(&id, &snapshot, now.into_std())
            };
            if let PublishOutcome::HeldShrink { until } = outcome {
                info!(provider = %id, hold_ms = until.saturating_duration_since(now.into_std()).as_millis() as u64, "suspicious shrink held");
            }
        }
    }

    /// Publishes an activation (`change == None`) or a switch with the
    /// target's latest snapshot.
    pub(super) fn publish_switch(
        &mut self,
        to: ProviderId,
        change: Option<(ProviderId, SwitchReason)>,
        now: Instant,
    ) {
        let change = change.or_else(|| {
            self.awaiting_snapshot
                .take()
                .and_then(|(_, pending)| pending)
        });
        let Some(snapshot) = self.latest.get(&to).cloned() else {
            // Cannot happen with a conforming controller (a provider becomes
            // eligible through a snapshot); publish as soon as one arrives.
            warn!(provider = %to, "activated before its first snapshot");
            self.awaiting_snapshot = Some((to, change));
            return;
        };
        self.awaiting_snapshot = None;
        let outcome = match change {
            Some((from, reason)) => {
                self.hub
                    .switch(Some(from), to, reason, snapshot, now.into_std())
            }
            None if self.hub.latest().is_none() => {
                match self
                    .hub
                    .activate(to.clone(), snapshot.clone(), now.into_std())
                {
                    Ok(outcome) => outcome,
                    Err(e) => {
                        warn!(error = %e, "activation refused by the hub; publishing as a recovery");
                        self.hub
                            .switch(None, to, SwitchReason::Recovered, snapshot, now.into_std())
                    }
                }
            }
            None => self
                .hub
                .switch(None, to, SwitchReason::Recovered, snapshot, now.into_std()),
        };
        debug!(?outcome, "published");
    }

    /// The span of one batch of the controller's decisions (none for an
    /// empty batch): its inputs, the providers' health and the decisions
    /// made, and its outcome (`activated`, `switched`, `all_down` or
    /// `kept`, the active provider and epoch after it). A switch, fail-back
    /// included, and all-down are rare and at `info`; routine batches
    /// (streams opened and closed, health, backoff) at `debug`. Nothing is
    /// formatted unless the span is enabled.
    fn decision_span(&self, decisions: &[Decision]) -> Span {
        if decisions.is_empty() {
            return Span::none();
        }
        let rare = decisions
            .iter()
            .any(|d| matches!(d, Decision::Switch { .. } | Decision::AllDown { .. }));
        macro_rules! decision_span {
            ($level:expr) => {
                span!(
                    $level,
                    "failover_decision",
                    providers = Empty,
                    decisions = Empty,
                    outcome = Empty,
                    from = Empty,
                    to = Empty,
                    reason = Empty,
                    active = Empty,
                    epoch = Empty,
                )
            };
        }
        let span = if rare {
            decision_span!(Level::INFO)
        } else {
            decision_span!(Level::DEBUG)
        };
        if span.is_disabled() {
            return span;
        }
        let mut providers = String::new();
        for status in self.controller.statuses() {
            let health = status.health.map_or("unknown", |h| h.as_str());
            let marks = match (status.pinned, status.suspicious) {
                (true, true) => " pinned suspicious",
                (true, false) => " pinned",
                (false, true) => " suspicious",
                (false, false) => "",
            };
            let sep = if providers.is_empty() { "" } else { ", " };
            let _ = write!(providers, "{sep}{}={health}{marks}", status.id);
        }
        span.record("providers", providers.as_str());
        let mut kinds = String::new();
        let mut outcome = "kept";
        for decision in decisions {
            let kind = match decision {
                Decision::OpenStream { .. } => "open_stream",
                Decision::CloseStream { .. } => "close_stream",
                Decision::Activate { to } => {
                    outcome = "activated";
                    span.record("to", to.as_str());
                    "activate"
                }
                Decision::Switch { from, to, reason } => {
                    outcome = "switched";
                    span.record("from", from.as_str());
                    span.record("to", to.as_str());
                    span.record("reason", reason.as_str());
                    "switch"
                }
                Decision::HealthChanged { .. } => "health_changed",
                Decision::BackoffUntil { .. } => "backoff",
                Decision::AllDown { .. } => {
                    outcome = "all_down";
                    "all_down"
                }
                Decision::AllDownEnded { .. } => "all_down_ended",
                _ => "other",
            };
            let sep = if kinds.is_empty() { "" } else { " " };
            let _ = write!(kinds, "{sep}{kind}");
        }
        span.record("decisions", kinds.as_str());
        span.record("outcome", outcome);
        span
    }

    pub(super) fn refresh_gauges(&self, now: Instant) {
        let metrics = self.hub.metrics();
        let statuses = self.controller.statuses();
        // The running set of CONTRACTS §5: series of a provider that left it
        // go within a refresh, a new one's start at 0.
        metrics.set_running_providers(statuses.iter().filter(|s| s.enabled).map(|s| &s.id));
        for status in statuses {
            if let Some(at) = status.last_liveness_at.filter(|_| status.running) {
                metrics.set_snapshot_age(&status.id, now.into_std().saturating_duration_since(at));
            }
        }
    }
}

/// Wall-clock milliseconds of `at`, given that `now` is the current instant.
fn wall_clock_ms(now: std::time::Instant, at: std::time::Instant) -> u64 {
    let wall = SystemTime::now()
        .checked_sub(now.saturating_duration_since(at))
        .unwrap_or(UNIX_EPOCH);
    wall.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
