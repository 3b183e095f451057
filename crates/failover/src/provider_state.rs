//! [`ProviderState`]: the controller's facts about one provider, and the
//! health rules (ARCHITECTURE "Failover rules" 1 and 2) that turn events
//! into a [`ProviderCondition`].

use std::time::{Duration, Instant};

use provisioning_provider_api::{
    ProviderFault, ProviderHealth, ProviderId, ProviderTermination, SwitchReason, format_duration,
};

use crate::jitter_rng::JitterRng;
use crate::{Decision, FailoverPolicy, ProviderCondition, ProviderHandle};

/// The stream the controller believes is running.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunningStream {
    pub(crate) generation: u64,
    pub(crate) opened_at: Instant,
}

/// How a provider became unreachable; decides the switch reason (rule 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DownCause {
    /// Silent past the no-response timeout.
    Timeout,
    /// `max_errors` consecutive retryable faults, or one permanent fault.
    Faults,
    /// The stream ended.
    Terminated,
}

impl DownCause {
    pub(crate) fn switch_reason(self) -> SwitchReason {
        match self {
            Self::Timeout => SwitchReason::Timeout,
            Self::Faults => SwitchReason::HealthDegraded,
            Self::Terminated => SwitchReason::Terminated,
        }
    }
}

/// An `Unreachable` verdict, kept until the next snapshot or heartbeat.
#[derive(Debug, Clone)]
pub(crate) struct Down {
    pub(crate) cause: DownCause,
    pub(crate) code: &'static str,
    pub(crate) detail: String,
}

/// `a + d` has been reached at `now`; an unrepresentable `a + d` never is.
pub(crate) fn reached(start: Instant, period: Duration, now: Instant) -> bool {
    start.checked_add(period).is_some_and(|t| now >= t)
}

/// Everything the controller knows about one provider.
#[derive(Debug, Clone)]
pub(crate) struct ProviderState {
    pub(crate) id: ProviderId,
    pub(crate) priority: u32,
    pub(crate) enabled: bool,
    pub(crate) stream: Option<RunningStream>,
    /// The no-response timer runs (armed on open and on liveness, disarmed
    /// by a verdict so a dead stream is not restarted over and over).
    pub(crate) timer_armed: bool,
    /// The running stream has delivered a snapshot.
    pub(crate) answered: bool,
    pub(crate) down: Option<Down>,
    /// The stream ended; `Some(true)` when permanently.
    pub(crate) terminated: Option<bool>,
    pub(crate) permanently_terminated: bool,
    pub(crate) errors: u32,
    pub(crate) last_fault: Option<ProviderFault>,
    /// Backend staleness above the threshold, from the last liveness event.
    pub(crate) stale: Option<Duration>,
    pub(crate) last_event_at: Option<Instant>,
    pub(crate) last_liveness_at: Option<Instant>,
    pub(crate) backoff_until: Option<Instant>,
    /// Verdicts since the last liveness: the backoff exponent.
    pub(crate) backoff_verdicts: u32,
    pub(crate) condition: ProviderCondition,
    pub(crate) published: Option<ProviderHealth>,
    pub(crate) healthy_since: Option<Instant>,
    pub(crate) degraded_since: Option<Instant>,
    /// Rule 4's doubling exponent.
    pub(crate) penalty: u32,
    /// When it was last failed back to, until it dies or its clean period
    /// ends.
    pub(crate) failed_back_at: Option<Instant>,
    pub(crate) clean_at: Option<Instant>,
    /// The running stream's latest view (its snapshot hash) and since when
    /// that view has stood unchanged: a suspicion ends once it has stood
    /// for `shrink_confirm` (decision 5).
    pub(crate) view: Option<(u64, Instant)>,
    /// That view would be a suspicious shrink of the published snapshot.
    pub(crate) suspicious: bool,
}

/// The penalty exponent stops growing here; the period is capped anyway.
const PENALTY_EXPONENT_CAP: u32 = 16;

impl ProviderState {
    pub(crate) fn new(id: ProviderId, priority: u32, enabled: bool) -> Self {
        Self {
            id,
            priority,
            enabled,
            stream: None,
            timer_armed: false,
            answered: false,
            down: None,
            terminated: None,
            permanently_terminated: false,
            errors: 0,
            last_fault: None,
            stale: None,
            last_event_at: None,
            last_liveness_at: None,
            backoff_until: None,
            backoff_verdicts: 0,
            condition: ProviderCondition::Stopped,
            published: None,
            healthy_since: None,
            degraded_since: None,
            penalty: 0,
            failed_back_at: None,
            clean_at: None,
            view: None,
            suspicious: false,
        }
    }

    pub(crate) fn handle(&self) -> Option<ProviderHandle> {
        self.stream
            .map(|s| ProviderHandle::new(self.id.clone(), s.generation))
    }

    pub(crate) fn in_backoff(&self, now: Instant) -> bool {
        self.backoff_until.is_some_and(|until| now < until)
    }

    /// May be active: enabled, running, has delivered a snapshot, healthy or
    /// degraded, not in backoff.
    pub(crate) fn eligible(&self, now: Instant) -> bool {
        self.enabled
            && self.stream.is_some()
            && self.answered
            && matches!(
                self.condition,
                ProviderCondition::Healthy | ProviderCondition::Degraded
            )
            && !self.in_backoff(now)
    }

    /// Healthy, and has been continuously for its fail-back period (rule 4).
    pub(crate) fn matured(&self, policy: &FailoverPolicy, now: Instant) -> bool {
        self.condition == ProviderCondition::Healthy
            && self
                .healthy_since
                .is_some_and(|since| reached(since, policy.fail_back_period(self.penalty), now))
    }

    /// Records the latest view and whether it would be a suspicious shrink;
    /// only a different view restarts the time it has stood.
    pub(crate) fn note_view(&mut self, view: u64, suspicious: bool, now: Instant) {
        if self.view.is_none_or(|(seen, _)| seen != view) {
            self.view = Some((view, now));
        }
        self.suspicious = suspicious;
    }

    /// When the suspicion on the current view ends (decision 5): the view
    /// has then stood for `shrink_confirm`, so the shrink it would publish
    /// counts as confirmed, as the hub confirms the active provider's.
    pub(crate) fn suspicion_ends(&self, policy: &FailoverPolicy) -> Option<Instant> {
        let (_, since) = self.view.filter(|_| self.suspicious)?;
        since.checked_add(policy.shrink_confirm)
    }

    /// Flagged as a suspicious shrink, and the view has not stood for
    /// `shrink_confirm` yet: not chosen while another candidate exists.
    pub(crate) fn suspected(&self, policy: &FailoverPolicy, now: Instant) -> bool {
        self.suspicious
            && self
                .view
                .is_none_or(|(_, since)| !reached(since, policy.shrink_confirm, now))
    }

    /// Waiting for its first answer without a verdict: the first activation
    /// may wait for it (start-up grace).
    pub(crate) fn pending_first_answer(&self) -> bool {
        self.enabled
            && !self.permanently_terminated
            && self.down.is_none()
            && matches!(
                self.condition,
                ProviderCondition::Stopped | ProviderCondition::Starting
            )
    }

    /// When the no-response timer expires, if it runs.
    pub(crate) fn silence_deadline(&self, policy: &FailoverPolicy) -> Option<Instant> {
        let stream = self.stream?;
        if !self.timer_armed {
            return None;
        }
        let from = self
            .last_liveness_at
            .map_or(stream.opened_at, |t| t.max(stream.opened_at));
        from.checked_add(policy.timeout)
    }

    fn derive_condition(&self) -> ProviderCondition {
        if self.terminated.is_some() {
            ProviderCondition::Terminated
        } else if self.down.is_some() {
            ProviderCondition::Unreachable
        } else if self.stream.is_none() {
            ProviderCondition::Stopped
        } else if !self.answered {
            ProviderCondition::Starting
        } else if self.errors > 0 || self.stale.is_some() {
            ProviderCondition::Degraded
        } else {
            ProviderCondition::Healthy
        }
    }

    /// Recomputes the condition, keeps the since-times and publishes a
    /// health change.
    pub(crate) fn refresh(
        &mut self,
        policy: &FailoverPolicy,
        now: Instant,
        out: &mut Vec<Decision>,
    ) {
        let new = self.derive_condition();
        let old = self.condition;
        if new != old {
            self.healthy_since = match new {
                ProviderCondition::Healthy => self.healthy_since.or(Some(now)),
                _ => None,
            };
            self.degraded_since = match new {
                ProviderCondition::Degraded => self.degraded_since.or(Some(now)),
                _ => None,
            };
            self.condition = new;
        }
        let Some(health) = new.health() else { return };
        if self.published == Some(health) {
            return;
        }
        self.published = Some(health);
        let (code, detail) = self.health_reason(policy);
        out.push(Decision::HealthChanged {
            id: self.id.clone(),
            health,
            code,
            detail,
        });
    }

    fn health_reason(&self, policy: &FailoverPolicy) -> (Option<&'static str>, String) {
        match self.condition {
            ProviderCondition::Unreachable | ProviderCondition::Terminated => match &self.down {
                Some(down) => (Some(down.code), down.detail.clone()),
                None => (Some("provider_unhealthy"), "unreachable".to_owned()),
            },
            ProviderCondition::Degraded => {
                if let Some(delay) = self.stale {
                    (
                        Some("provider_unhealthy"),
                        format!(
                            "snapshot delay {} above the {} threshold",
                            format_duration(delay),
                            format_duration(policy.snapshot_delay)
                        ),
                    )
                } else {
                    let (code, detail) = self.fault_summary();
                    (Some(code), detail)
                }
            }
            _ => (None, "snapshot or heartbeat in time".to_owned()),
        }
    }

    fn fault_summary(&self) -> (&'static str, String) {
        let noun = if self.errors == 1 { "error" } else { "errors" };
        match &self.last_fault {
            Some(fault) => (
                fault.kind.code(),
                format!("{} consecutive {noun}: {}", self.errors, fault.detail),
            ),
            None => (
                "backend_unavailable",
                format!("{} consecutive {noun}", self.errors),
            ),
        }
    }

    /// A snapshot (`snapshot = true`) or heartbeat: liveness evidence.
    pub(crate) fn on_liveness(
        &mut self,
        snapshot: bool,
        last_contact: Option<Duration>,
        policy: &FailoverPolicy,
        now: Instant,
        out: &mut Vec<Decision>,
    ) {
        self.last_liveness_at = Some(now);
        self.timer_armed = true;
        self.errors = 0;
        self.last_fault = None;
        self.answered |= snapshot;
        self.stale = last_contact.filter(|d| *d > policy.snapshot_delay);
        self.down = None;
        // Rule 2: any snapshot or heartbeat ends the backoff.
        self.backoff_until = None;
        self.backoff_verdicts = 0;
        self.refresh(policy, now, out);
    }

    /// A fault item. Resyncs are not errors and change nothing.
    pub(crate) fn on_fault(
        &mut self,
        fault: &ProviderFault,
        policy: &FailoverPolicy,
        rng: &mut JitterRng,
        now: Instant,
        out: &mut Vec<Decision>,
    ) {
        if fault.is_resync() {
            return;
        }
        self.errors = self.errors.saturating_add(1);
        self.last_fault = Some(fault.clone());
        if fault.permanent || self.errors >= policy.max_errors {
            if self.down.is_none() {
                let detail = if fault.permanent {
                    format!("permanent fault: {}", fault.detail)
                } else {
                    self.fault_summary().1
                };
                self.verdict(
                    Down {
                        cause: DownCause::Faults,
                        code: fault.kind.code(),
                        detail,
                    },
                    policy,
                    rng,
                    now,
                    out,
                );
            } else if !self.in_backoff(now) {
                // Still failing after its backoff: space the next attempt.
                self.start_backoff(policy, rng, now, out);
            }
        }
        self.refresh(policy, now, out);
    }

    /// The stream ended by itself.
    pub(crate) fn on_terminated(
        &mut self,
        termination: &ProviderTermination,
        policy: &FailoverPolicy,
        rng: &mut JitterRng,
        now: Instant,
        out: &mut Vec<Decision>,
    ) {
        let permanent = termination.is_permanent();
        self.stream = None;
        self.answered = false;
        self.terminated = Some(permanent);
        self.permanently_terminated = permanent;
        let detail = match termination {
            ProviderTermination::Ended => "stream ended".to_owned(),
            ProviderTermination::Errored { reason, .. } => format!("stream errored: {reason}"),
        };
        let down = Down {
            cause: DownCause::Terminated,
            code: "provider_unhealthy",
            detail,
        };
        if permanent {
            self.timer_armed = false;
            self.down = Some(down);
            self.backoff_until = None;
            self.note_death(policy, now);
        } else {
            self.verdict(down, policy, rng, now, out);
        }
        self.refresh(policy, now, out);
    }

    /// Silent past the no-response timeout: unreachable, and the hung stream
    /// is closed (it is reopened when the backoff ends).
    pub(crate) fn on_silence(
        &mut self,
        policy: &FailoverPolicy,
        rng: &mut JitterRng,
        now: Instant,
        out: &mut Vec<Decision>,
    ) {
        let down = Down {
            cause: DownCause::Timeout,
            code: "timeout",
            detail: format!(
                "no snapshot or heartbeat for {}",
                format_duration(policy.timeout)
            ),
        };
        self.verdict(down, policy, rng, now, out);
        self.refresh(policy, now, out);
        if let Some(handle) = self.handle() {
            out.push(Decision::CloseStream { handle });
        }
        self.stream = None;
        self.answered = false;
        self.refresh(policy, now, out);
    }

    fn verdict(
        &mut self,
        down: Down,
        policy: &FailoverPolicy,
        rng: &mut JitterRng,
        now: Instant,
        out: &mut Vec<Decision>,
    ) {
        let was_down = self.down.is_some();
        self.timer_armed = false;
        self.down = Some(down);
        self.start_backoff(policy, rng, now, out);
        if !was_down {
            self.note_death(policy, now);
        }
    }

    fn start_backoff(
        &mut self,
        policy: &FailoverPolicy,
        rng: &mut JitterRng,
        now: Instant,
        out: &mut Vec<Decision>,
    ) {
        let delay = policy.backoff_delay(self.backoff_verdicts, rng.next_unit());
        self.backoff_verdicts = self.backoff_verdicts.saturating_add(1);
        // An unrepresentable end is "as late as can be": keep it far away.
        let until = now
            .checked_add(delay)
            .or_else(|| now.checked_add(policy.backoff_cap))
            .unwrap_or(now);
        self.backoff_until = Some(until);
        out.push(Decision::BackoffUntil {
            id: self.id.clone(),
            until,
        });
    }

    /// Rule 4: dying within a cooldown of being failed back to doubles the
    /// healthy period the next fail-back needs.
    fn note_death(&mut self, policy: &FailoverPolicy, now: Instant) {
        if let Some(at) = self.failed_back_at.take() {
            if !reached(at, policy.cooldown, now) {
                self.penalty = (self.penalty + 1).min(PENALTY_EXPONENT_CAP);
            }
            self.clean_at = None;
        }
    }

    /// Records a fail-back to this provider.
    pub(crate) fn note_fail_back(&mut self, policy: &FailoverPolicy, now: Instant) {
        self.failed_back_at = Some(now);
        self.clean_at = now.checked_add(policy.fail_back_period(self.penalty));
    }

    /// One clean period after a fail-back resets the penalty.
    pub(crate) fn expire_penalty(&mut self, now: Instant) {
        if self.clean_at.is_some_and(|t| now >= t) {
            self.penalty = 0;
            self.failed_back_at = None;
            self.clean_at = None;
        }
    }

    /// Opens a new stream with `generation`.
    pub(crate) fn open(
        &mut self,
        generation: u64,
        policy: &FailoverPolicy,
        now: Instant,
        out: &mut Vec<Decision>,
    ) -> ProviderHandle {
        self.stream = Some(RunningStream {
            generation,
            opened_at: now,
        });
        self.timer_armed = true;
        self.answered = false;
        self.terminated = None;
        self.errors = 0;
        self.last_fault = None;
        self.stale = None;
        // A new stream's view settles afresh, even if it is the same one.
        self.view = None;
        self.suspicious = false;
        self.refresh(policy, now, out);
        ProviderHandle::new(self.id.clone(), generation)
    }

    /// Closes the running stream (not needed, disabled, removed).
    pub(crate) fn close(&mut self, policy: &FailoverPolicy, now: Instant, out: &mut Vec<Decision>) {
        if let Some(handle) = self.handle() {
            out.push(Decision::CloseStream { handle });
        }
        self.stream = None;
        self.timer_armed = false;
        self.answered = false;
        self.errors = 0;
        self.last_fault = None;
        self.stale = None;
        self.refresh(policy, now, out);
    }

    /// Forgets every verdict (disabled: it starts afresh when enabled).
    pub(crate) fn reset_verdicts(
        &mut self,
        policy: &FailoverPolicy,
        now: Instant,
        out: &mut Vec<Decision>,
    ) {
        self.down = None;
        self.terminated = None;
        self.permanently_terminated = false;
        self.backoff_until = None;
        self.backoff_verdicts = 0;
        self.refresh(policy, now, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use provisioning_provider_api::FaultKind;

    fn state() -> (
        ProviderState,
        FailoverPolicy,
        JitterRng,
        Instant,
        Vec<Decision>,
    ) {
        let id = ProviderId::new("a").expect("valid id");
        (
            ProviderState::new(id, 10, true),
            FailoverPolicy::default(),
            JitterRng::new(1),
            Instant::now(),
            Vec::new(),
        )
    }

    #[test]
    fn rule_1_faults_count_up_through_degraded_to_unreachable() {
        let (mut p, policy, mut rng, t0, mut out) = state();
        p.open(1, &policy, t0, &mut out);
        assert_eq!(p.condition, ProviderCondition::Starting);
        p.on_liveness(true, None, &policy, t0, &mut out);
        assert_eq!(p.condition, ProviderCondition::Healthy);
        let refused = ProviderFault::retryable(FaultKind::BackendUnavailable, "connection refused");
        p.on_fault(&refused, &policy, &mut rng, t0, &mut out);
        assert_eq!(p.condition, ProviderCondition::Degraded);
        p.on_fault(&refused, &policy, &mut rng, t0, &mut out);
        assert_eq!(p.condition, ProviderCondition::Degraded);
        p.on_fault(&refused, &policy, &mut rng, t0, &mut out);
        assert_eq!(p.condition, ProviderCondition::Unreachable);
        assert!(p.in_backoff(t0));
        let last_health = out.iter().rev().find_map(|d| match d {
            Decision::HealthChanged { code, detail, .. } => Some((*code, detail.clone())),
            _ => None,
        });
        assert_eq!(
            last_health,
            Some((
                Some("backend_unavailable"),
                "3 consecutive errors: connection refused".to_owned()
            ))
        );
        p.on_liveness(false, None, &policy, t0, &mut out);
        assert_eq!(p.condition, ProviderCondition::Healthy);
        assert_eq!(p.errors, 0);
        assert!(!p.in_backoff(t0));
    }

    #[test]
    fn rule_1_resync_is_not_an_error() {
        let (mut p, policy, mut rng, t0, mut out) = state();
        p.open(1, &policy, t0, &mut out);
        p.on_liveness(true, None, &policy, t0, &mut out);
        for _ in 0..10 {
            p.on_fault(
                &ProviderFault::resync("index went back"),
                &policy,
                &mut rng,
                t0,
                &mut out,
            );
        }
        assert_eq!(p.condition, ProviderCondition::Healthy);
        assert_eq!(p.errors, 0);
    }

    #[test]
    fn penalty_doubles_on_early_death_and_resets_after_a_clean_period() {
        let (mut p, policy, mut rng, t0, mut out) = state();
        p.open(1, &policy, t0, &mut out);
        p.on_liveness(true, None, &policy, t0, &mut out);
        p.note_fail_back(&policy, t0);
        let fault = ProviderFault::permanent(FaultKind::PermissionDenied, "403");
        p.on_fault(
            &fault,
            &policy,
            &mut rng,
            t0 + Duration::from_secs(1),
            &mut out,
        );
        assert_eq!(p.penalty, 1);
        let t1 = t0 + Duration::from_secs(100);
        p.on_liveness(true, None, &policy, t1, &mut out);
        p.note_fail_back(&policy, t1);
        p.expire_penalty(t1 + Duration::from_secs(19));
        assert_eq!(p.penalty, 1);
        p.expire_penalty(t1 + Duration::from_secs(20));
        assert_eq!(p.penalty, 0);
    }
}
