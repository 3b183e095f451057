//! Which provider is active (ARCHITECTURE "Failover rules" 3, 4, 5, 7 and
//! 8): the active one reviewed against the pin, fail-back and degradation,
//! or, with none active, the first activation, the recovery from all-down,
//! or all-down.

use std::time::Instant;

use provisioning_provider_api::{ProviderId, SwitchReason};

use super::FailoverController;
use crate::provider_state::{ProviderState, reached};
use crate::{Decision, ProviderCondition};

impl FailoverController {
    pub(super) fn cooldown_passed(&self, now: Instant) -> bool {
        self.last_switch
            .is_none_or(|t| reached(t, self.policy.cooldown, now))
    }

    /// The best eligible provider other than `exclude` that passes `extra`:
    /// the highest priority among those not under suspicion (decision 5),
    /// else among all.
    pub(super) fn best(
        &self,
        now: Instant,
        exclude: Option<&ProviderId>,
        extra: impl Fn(&ProviderState) -> bool,
    ) -> Option<usize> {
        let mut fallback = None;
        for (i, p) in self.providers.iter().enumerate() {
            if Some(&p.id) == exclude || !p.eligible(now) || !extra(p) {
                continue;
            }
            if !p.suspected(&self.policy, now) {
                return Some(i);
            }
            fallback.get_or_insert(i);
        }
        fallback
    }

    /// The pinned provider's index when it is eligible.
    pub(super) fn eligible_pin(&self, now: Instant) -> Option<(usize, bool)> {
        let pin = self.pinned.as_ref()?;
        let i = self.index(&pin.id)?;
        self.providers[i].eligible(now).then_some((i, pin.pending))
    }

    pub(super) fn choose_active(&mut self, now: Instant) {
        match self.active.clone() {
            Some(active) => self.review_active(active, now),
            None => self.try_activate(now),
        }
    }

    /// Rules 3, 4, 5 and 8 while a provider is active.
    pub(super) fn review_active(&mut self, active: ProviderId, now: Instant) {
        let Some(ai) = self
            .index(&active)
            .filter(|&i| self.providers[i].eligible(now))
        else {
            // Dead, removed or disabled: switch at once (rules 3, 5, 8).
            let reason = match self.index(&active) {
                Some(i) if self.providers[i].enabled => self.providers[i]
                    .down
                    .as_ref()
                    .map_or(SwitchReason::HealthDegraded, |d| d.cause.switch_reason()),
                _ => SwitchReason::Removed,
            };
            let to = match self.eligible_pin(now) {
                Some((i, _)) if self.providers[i].id != active => Some(i),
                _ => self.best(now, Some(&active), |_| true),
            };
            match to {
                Some(to) => self.switch(active, to, reason, false, now),
                None => self.enter_all_down(now),
            }
            return;
        };
        if let Some((pi, pending)) = self.eligible_pin(now) {
            if pi == ai {
                return;
            }
            if pending {
                self.switch(active, pi, SwitchReason::ManualOverride, false, now);
                return;
            }
            if self.cooldown_passed(now) && self.providers[pi].matured(&self.policy, now) {
                self.switch(active, pi, SwitchReason::ManualOverride, true, now);
                return;
            }
        }
        if !self.cooldown_passed(now) {
            return;
        }
        let active_priority = self.providers[ai].priority;
        let fail_back = self.providers.iter().enumerate().find_map(|(i, p)| {
            (p.priority > active_priority
                && p.eligible(now)
                && !p.suspected(&self.policy, now)
                && p.matured(&self.policy, now))
            .then_some(i)
        });
        if let Some(to) = fail_back {
            self.switch(active, to, SwitchReason::PriorityRestored, true, now);
            return;
        }
        let a = &self.providers[ai];
        let degraded_long = a.condition == ProviderCondition::Degraded
            && a.degraded_since
                .is_some_and(|since| reached(since, self.policy.cooldown, now));
        if degraded_long {
            let healthy = self.best(now, Some(&active), |p| {
                p.condition == ProviderCondition::Healthy
            });
            if let Some(to) = healthy {
                self.switch(active, to, SwitchReason::HealthDegraded, false, now);
            }
        }
    }

    /// No provider is active: first activation, or recovery from all-down
    /// (rule 7), or entering all-down.
    pub(super) fn try_activate(&mut self, now: Instant) {
        let to = match self.eligible_pin(now) {
            Some((i, _)) => Some(i),
            None => self.best(now, None, |_| true),
        };
        let Some(to) = to else {
            // Before the first activation, nothing is down while a provider
            // has not answered yet, or while none is configured.
            let waiting = self.last_active.is_none()
                && (self.providers.is_empty()
                    || self
                        .providers
                        .iter()
                        .any(ProviderState::pending_first_answer));
            if self.all_down_since.is_none() && !waiting {
                self.enter_all_down(now);
            }
            return;
        };
        let first_run = self.last_active.is_none() && self.all_down_since.is_none();
        let is_pinned = self
            .pinned()
            .is_some_and(|pin| *pin == self.providers[to].id);
        // The grace waits for a preferred provider; a pinned one is preferred.
        if first_run && !is_pinned {
            let priority = self.providers[to].priority;
            let grace_over = self
                .first_seen
                .is_none_or(|t| reached(t, self.effective_grace(), now));
            let higher_pending = self
                .providers
                .iter()
                .any(|p| p.priority > priority && p.pending_first_answer());
            if higher_pending && !grace_over {
                return;
            }
        }
        if let Some(since) = self.all_down_since.take() {
            self.out.push(Decision::AllDownEnded { since });
        }
        match self.last_active.clone() {
            Some(from) => self.switch(from, to, SwitchReason::Recovered, false, now),
            None => {
                let id = self.providers[to].id.clone();
                self.out.push(Decision::Activate { to: id.clone() });
                self.set_active(id);
            }
        }
    }

    pub(super) fn switch(
        &mut self,
        from: ProviderId,
        to: usize,
        reason: SwitchReason,
        fail_back: bool,
        now: Instant,
    ) {
        let id = self.providers[to].id.clone();
        if fail_back {
            self.providers[to].note_fail_back(&self.policy, now);
        }
        self.out.push(Decision::Switch {
            from,
            to: id.clone(),
            reason,
        });
        self.last_switch = Some(now);
        self.set_active(id);
    }

    pub(super) fn set_active(&mut self, id: ProviderId) {
        if let Some(pin) = self.pinned.as_mut().filter(|pin| pin.id == id) {
            pin.pending = false;
        }
        self.last_active = Some(id.clone());
        self.active = Some(id);
    }

    pub(super) fn enter_all_down(&mut self, now: Instant) {
        self.active = None;
        self.all_down_since = Some(now);
        self.out.push(Decision::AllDown {
            since: now,
            last_active: self.last_active.clone(),
        });
    }
}
