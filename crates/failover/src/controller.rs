//! [`FailoverController`]: the sans-IO failover state machine
//! (ARCHITECTURE "Failover rules" 1–8).
//!
//! This file holds the state, the inputs and the clock (rules 1 and 2 as
//! time passes); the rules that decide live beside it, one file each:
//! `active_choice` (which provider is active: rules 3, 4, 5, 7 and 8) and
//! `running_streams` (which streams run: rule 6).

use std::time::{Duration, Instant};

use provisioning_provider_api::{ProviderEvent, ProviderId};

use crate::jitter_rng::JitterRng;
use crate::provider_state::ProviderState;
use crate::{
    ControllerError, Decision, FailoverPolicy, FailureReason, ProviderHandle, ProviderStatus,
};

mod active_choice;
mod running_streams;

/// How long the first activation of a run waits for a higher-priority
/// provider that has not answered yet, unless
/// [`with_startup_grace`](FailoverController::with_startup_grace) says
/// otherwise. Never longer than the cooldown.
pub const DEFAULT_STARTUP_GRACE: Duration = Duration::from_secs(1);

/// The operator's pin (rule 8).
#[derive(Debug, Clone)]
struct Pin {
    id: ProviderId,
    /// Asked for and not yet honoured: switch as soon as it is eligible, with
    /// no cooldown. Once honoured, a pin that resumes after the provider died
    /// follows the fail-back hysteresis.
    pending: bool,
}

/// The failover decision state machine: which provider is active, which
/// streams run, when to switch.
///
/// Sans-IO: it never spawns, sleeps or reads a clock. Every input takes the
/// current time; [`next_deadline`](Self::next_deadline) says when
/// [`tick`](Self::tick) must be called next; the outputs are
/// [`Decision`]s, taken with [`drain`](Self::drain). Time never goes
/// backwards inside the controller: an earlier `now` than one seen before
/// counts as the later one.
///
/// ```
/// use std::time::{Duration, Instant};
/// use provisioning_failover::{Decision, FailoverController, FailoverPolicy};
/// use provisioning_provider_api::{ProviderEvent, ProviderId, ProviderSnapshot};
///
/// let t0 = Instant::now();
/// let mut c = FailoverController::new(FailoverPolicy::default(), 42);
/// let consul = ProviderId::new("consul-a")?;
/// c.add_provider(consul.clone(), 20, true, t0)?;
/// let Some(Decision::OpenStream { handle }) = c.drain().pop() else { panic!() };
/// c.on_event(&handle, &ProviderEvent::heartbeat(), t0); // no snapshot yet
/// assert_eq!(c.active(), None);
/// c.on_event(&handle, &ProviderEvent::Snapshot(ProviderSnapshot::empty()), t0);
/// assert_eq!(c.active(), Some(&consul));
/// // Silent for the no-response timeout: unreachable, all down.
/// assert_eq!(c.next_deadline(), Some(t0 + Duration::from_secs(15)));
/// c.tick(t0 + Duration::from_secs(15));
/// assert_eq!(c.active(), None);
/// assert!(c.all_down_since().is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct FailoverController {
    policy: FailoverPolicy,
    rng: JitterRng,
    /// Highest priority first.
    providers: Vec<ProviderState>,
    active: Option<ProviderId>,
    last_active: Option<ProviderId>,
    pinned: Option<Pin>,
    last_switch: Option<Instant>,
    all_down_since: Option<Instant>,
    first_seen: Option<Instant>,
    startup_grace: Duration,
    now: Option<Instant>,
    next_generation: u64,
    out: Vec<Decision>,
}

impl FailoverController {
    /// A controller with no providers. `rng_seed` seeds the backoff jitter,
    /// so runs with the same seed and inputs decide the same.
    pub fn new(policy: FailoverPolicy, rng_seed: u64) -> Self {
        Self {
            policy,
            rng: JitterRng::new(rng_seed),
            providers: Vec::new(),
            active: None,
            last_active: None,
            pinned: None,
            last_switch: None,
            all_down_since: None,
            first_seen: None,
            startup_grace: DEFAULT_STARTUP_GRACE,
            now: None,
            next_generation: 1,
            out: Vec::new(),
        }
    }

    /// How long the first activation waits for a higher-priority provider
    /// that has not answered yet (capped at the cooldown). Zero activates the
    /// first provider to deliver a snapshot.
    pub fn with_startup_grace(mut self, grace: Duration) -> Self {
        self.startup_grace = grace;
        self
    }

    /// The policy in force.
    pub fn policy(&self) -> &FailoverPolicy {
        &self.policy
    }

    /// Replaces the policy (a reload); running timers are measured with the
    /// new numbers from now on.
    pub fn set_policy(&mut self, policy: FailoverPolicy, now: Instant) {
        let now = self.advance(now);
        self.policy = policy;
        self.evaluate(now);
    }

    /// Adds a provider. Its stream is opened when the rules need it.
    pub fn add_provider(
        &mut self,
        id: ProviderId,
        priority: u32,
        enabled: bool,
        now: Instant,
    ) -> Result<(), ControllerError> {
        if self.index(&id).is_some() {
            return Err(ControllerError::DuplicateProvider(id));
        }
        if let Some(existing) = self.providers.iter().find(|p| p.priority == priority) {
            return Err(ControllerError::DuplicatePriority {
                id,
                priority,
                existing: existing.id.clone(),
            });
        }
        let now = self.advance(now);
        let at = self
            .providers
            .iter()
            .position(|p| p.priority < priority)
            .unwrap_or(self.providers.len());
        self.providers
            .insert(at, ProviderState::new(id, priority, enabled));
        self.evaluate(now);
        Ok(())
    }

    /// Removes a provider; removing the active one switches at once (reason
    /// `removed`), and a pin on it is dropped.
    pub fn remove_provider(
        &mut self,
        id: &ProviderId,
        now: Instant,
    ) -> Result<(), ControllerError> {
        let i = self.require(id)?;
        let now = self.advance(now);
        self.providers[i].close(&self.policy, now, &mut self.out);
        self.providers.remove(i);
        if self.pinned.as_ref().is_some_and(|p| &p.id == id) {
            self.pinned = None;
        }
        self.evaluate(now);
        Ok(())
    }

    /// Enables a provider (and forgets a permanent termination: an operator
    /// re-enabling it asks for a new try).
    pub fn enable_provider(
        &mut self,
        id: &ProviderId,
        now: Instant,
    ) -> Result<(), ControllerError> {
        let i = self.require(id)?;
        let now = self.advance(now);
        let p = &mut self.providers[i];
        p.enabled = true;
        if p.permanently_terminated {
            p.reset_verdicts(&self.policy, now, &mut self.out);
        }
        self.evaluate(now);
        Ok(())
    }

    /// Disables a provider: its stream stops; disabling the active one
    /// switches at once (reason `removed`), and a pin on it is dropped.
    pub fn disable_provider(
        &mut self,
        id: &ProviderId,
        now: Instant,
    ) -> Result<(), ControllerError> {
        let i = self.require(id)?;
        let now = self.advance(now);
        let p = &mut self.providers[i];
        p.enabled = false;
        p.close(&self.policy, now, &mut self.out);
        p.reset_verdicts(&self.policy, now, &mut self.out);
        if self.pinned.as_ref().is_some_and(|p| &p.id == id) {
            self.pinned = None;
        }
        self.evaluate(now);
        Ok(())
    }

    /// Records one item of the stream `handle`. Returns `false`, changing
    /// nothing, when `handle` is not the provider's running stream (an item
    /// still in flight when the stream was closed).
    ///
    /// Snapshots and heartbeats are liveness (rule 1): they reset the error
    /// count and the no-response timer and end any backoff (rule 2); a
    /// reported backend staleness above `snapshot_delay` makes the provider
    /// `Degraded`. Retryable faults count up to `max_errors`; a permanent one
    /// is a verdict at once; resyncs are not errors. A non-permanent
    /// termination is reopened after the backoff.
    pub fn on_event(
        &mut self,
        handle: &ProviderHandle,
        event: &ProviderEvent,
        now: Instant,
    ) -> bool {
        let now = self.advance(now);
        let Some(i) = self.index(handle.id()) else {
            return false;
        };
        let p = &mut self.providers[i];
        if p.stream.map(|s| s.generation) != Some(handle.generation()) {
            return false;
        }
        p.last_event_at = Some(now);
        match event {
            ProviderEvent::Snapshot(snapshot) => {
                p.on_liveness(
                    true,
                    snapshot.last_contact(),
                    &self.policy,
                    now,
                    &mut self.out,
                );
            }
            ProviderEvent::Heartbeat(beat) => {
                p.on_liveness(false, beat.last_contact, &self.policy, now, &mut self.out);
            }
            ProviderEvent::Fault(fault) => {
                p.on_fault(fault, &self.policy, &mut self.rng, now, &mut self.out);
            }
            ProviderEvent::Terminated(termination) => {
                p.on_terminated(termination, &self.policy, &mut self.rng, now, &mut self.out);
            }
        }
        self.evaluate(now);
        true
    }

    /// The seed's `record_failure`: a failure the driver saw itself, recorded
    /// like the matching event. Returns `false` for a stale handle.
    pub fn record_failure(
        &mut self,
        handle: &ProviderHandle,
        reason: FailureReason,
        now: Instant,
    ) -> bool {
        self.on_event(handle, &reason.into_event(), now)
    }

    /// Reports a provider's latest view, identified by `view` (its
    /// snapshot's [`hash`](provisioning_provider_api::ProviderSnapshot::hash)),
    /// and whether that view, published now, would be a suspicious shrink
    /// of the published snapshot (decision 5). Call it for every snapshot a running provider
    /// delivers, and again whenever the published snapshot changes.
    ///
    /// A suspicious provider is not chosen while another healthy candidate
    /// exists, and is not failed back to — but only until its view has
    /// stood unchanged for `shrink_confirm`: then the shrink counts as
    /// confirmed, as the hub confirms a held shrink of the active provider,
    /// and the provider competes on priority again
    /// ([`next_deadline`](Self::next_deadline) includes that moment). A
    /// different `view` restarts the clock; the same view reported again,
    /// suspicious or not, keeps it; a reopened stream starts afresh.
    pub fn set_suspicious(
        &mut self,
        id: &ProviderId,
        view: u64,
        suspicious: bool,
        now: Instant,
    ) -> Result<(), ControllerError> {
        let i = self.require(id)?;
        let now = self.advance(now);
        self.providers[i].note_view(view, suspicious, now);
        self.evaluate(now);
        Ok(())
    }

    /// Pins a provider (rule 8): it becomes active at once (reason
    /// `manual_override`) as soon as it is eligible — its stream is opened if
    /// it was not running — and stays active while it is alive. If it dies
    /// the other rules apply; it resumes like a fail-back, once it has been
    /// healthy for its fail-back period and a cooldown has passed since the
    /// previous switch.
    pub fn pin(&mut self, id: &ProviderId, now: Instant) -> Result<(), ControllerError> {
        let i = self.require(id)?;
        if !self.providers[i].enabled {
            return Err(ControllerError::Disabled(id.clone()));
        }
        let now = self.advance(now);
        self.pinned = Some(Pin {
            id: id.clone(),
            pending: self.active.as_ref() != Some(id),
        });
        self.evaluate(now);
        Ok(())
    }

    /// Drops the pin: the rules apply again, cooldown included (no switch
    /// happens because of the unpin itself).
    pub fn unpin(&mut self, now: Instant) {
        let now = self.advance(now);
        self.pinned = None;
        self.evaluate(now);
    }

    /// Lets time pass: no-response timeouts, backoff ends, cooldowns,
    /// fail-back periods. Call it at [`next_deadline`](Self::next_deadline).
    pub fn tick(&mut self, now: Instant) {
        let _ = self.advance(now);
    }

    /// The earliest time after the last input at which [`tick`](Self::tick)
    /// could change anything; `None` when nothing is pending.
    pub fn next_deadline(&self) -> Option<Instant> {
        let now = self.now?;
        let mut best: Option<Instant> = None;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t.filter(|t| *t > now) {
                best = Some(best.map_or(t, |b| b.min(t)));
            }
        };
        let active_priority = self
            .active
            .as_ref()
            .and_then(|a| self.index(a))
            .map(|i| self.providers[i].priority);
        for p in &self.providers {
            consider(p.silence_deadline(&self.policy));
            consider(p.backoff_until);
            consider(p.clean_at);
            consider(p.suspicion_ends(&self.policy));
            let is_active = self.active.as_ref() == Some(&p.id);
            let is_pinned = self.pinned().is_some_and(|pin| pin == &p.id);
            // Only a fail-back or pin candidate's maturity can switch.
            let candidate =
                !is_active && (is_pinned || active_priority.is_some_and(|a| p.priority > a));
            if let Some(since) = p.healthy_since.filter(|_| candidate) {
                consider(since.checked_add(self.policy.fail_back_period(p.penalty)));
            }
            // Only the active provider's degradation can switch.
            if let Some(since) = p.degraded_since.filter(|_| is_active) {
                consider(since.checked_add(self.policy.cooldown));
            }
        }
        consider(
            self.last_switch
                .and_then(|t| t.checked_add(self.policy.cooldown)),
        );
        if self.last_active.is_none() && self.all_down_since.is_none() {
            consider(
                self.first_seen
                    .and_then(|t| t.checked_add(self.effective_grace())),
            );
        }
        best
    }

    /// Takes the decisions made since the last call, in order.
    pub fn drain(&mut self) -> Vec<Decision> {
        std::mem::take(&mut self.out)
    }

    /// The active provider (the seed's `select_active`).
    pub fn select_active(&self) -> Option<&ProviderId> {
        self.active.as_ref()
    }

    /// The active provider.
    pub fn active(&self) -> Option<&ProviderId> {
        self.active.as_ref()
    }

    /// The pinned provider.
    pub fn pinned(&self) -> Option<&ProviderId> {
        self.pinned.as_ref().map(|p| &p.id)
    }

    /// Since when no provider has been eligible, while that lasts.
    pub fn all_down_since(&self) -> Option<Instant> {
        self.all_down_since
    }

    /// When the last switch happened (the first activation is not one).
    pub fn last_switch_at(&self) -> Option<Instant> {
        self.last_switch
    }

    /// The handle of the provider's running stream.
    pub fn handle(&self, id: &ProviderId) -> Option<ProviderHandle> {
        self.index(id).and_then(|i| self.providers[i].handle())
    }

    /// Every running stream, highest priority first.
    pub fn running(&self) -> Vec<ProviderHandle> {
        self.providers
            .iter()
            .filter_map(ProviderState::handle)
            .collect()
    }

    /// One provider's status.
    pub fn status(&self, id: &ProviderId) -> Option<ProviderStatus> {
        self.index(id).map(|i| self.status_of(&self.providers[i]))
    }

    /// Every provider's status, highest priority first.
    pub fn statuses(&self) -> Vec<ProviderStatus> {
        self.providers.iter().map(|p| self.status_of(p)).collect()
    }

    fn status_of(&self, p: &ProviderState) -> ProviderStatus {
        let now = self.now;
        let active = self.active.as_ref() == Some(&p.id);
        ProviderStatus {
            id: p.id.clone(),
            priority: p.priority,
            enabled: p.enabled,
            condition: p.condition,
            health: p.condition.health(),
            active,
            standby: p.stream.is_some() && !active,
            pinned: self.pinned.as_ref().is_some_and(|pin| pin.id == p.id),
            running: p.stream.is_some(),
            consecutive_errors: p.errors,
            last_event_at: p.last_event_at,
            last_liveness_at: p.last_liveness_at,
            healthy_since: p.healthy_since,
            degraded_since: p.degraded_since,
            backoff_until: p
                .backoff_until
                .filter(|until| now.is_some_and(|n| n < *until)),
            fail_back_period: self.policy.fail_back_period(p.penalty),
            suspicious: now.map_or(p.suspicious, |now| p.suspected(&self.policy, now)),
            permanently_terminated: p.permanently_terminated,
        }
    }

    fn index(&self, id: &ProviderId) -> Option<usize> {
        self.providers.iter().position(|p| &p.id == id)
    }

    fn require(&self, id: &ProviderId) -> Result<usize, ControllerError> {
        self.index(id)
            .ok_or_else(|| ControllerError::UnknownProvider(id.clone()))
    }

    fn effective_grace(&self) -> Duration {
        self.startup_grace.min(self.policy.cooldown)
    }

    /// Moves the clock (never backwards) and applies what time passing
    /// decides, before the caller's input is applied.
    fn advance(&mut self, now: Instant) -> Instant {
        let now = self.now.map_or(now, |seen| seen.max(now));
        self.now = Some(now);
        self.first_seen.get_or_insert(now);
        self.evaluate(now);
        now
    }

    fn evaluate(&mut self, now: Instant) {
        self.expire(now);
        self.choose_active(now);
        self.reconcile_streams(now);
    }

    fn expire(&mut self, now: Instant) {
        for p in &mut self.providers {
            if p.backoff_until.is_some_and(|until| now >= until) {
                p.backoff_until = None;
            }
            p.expire_penalty(now);
            if p.silence_deadline(&self.policy).is_some_and(|t| now >= t) {
                p.on_silence(&self.policy, &mut self.rng, now, &mut self.out);
            }
        }
    }
}
