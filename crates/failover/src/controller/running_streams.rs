//! Which streams run (ARCHITECTURE "Failover rules" 6): every provider of
//! the active one's priority or higher, warm standbys below it up to the
//! policy's count, and the pinned one; streams opened and closed to match.

use std::time::Instant;

use super::FailoverController;
use crate::provider_state::ProviderState;
use crate::{Decision, ProviderCondition};

impl FailoverController {
    /// Rule 6: which streams run.
    pub(super) fn wanted(&self, now: Instant) -> Vec<bool> {
        let runnable = |p: &ProviderState| p.enabled && !p.permanently_terminated;
        let pinned = self.pinned.as_ref().map(|p| &p.id);
        let Some(ai) = self.active.as_ref().and_then(|a| self.index(a)) else {
            return self.providers.iter().map(runnable).collect();
        };
        let active_priority = self.providers[ai].priority;
        let mut warm = 0u32;
        self.providers
            .iter()
            .map(|p| {
                if !runnable(p) {
                    return false;
                }
                if p.priority >= active_priority {
                    return true;
                }
                if warm < self.policy.standby {
                    if p.eligible(now) && p.condition == ProviderCondition::Healthy {
                        warm += 1;
                    }
                    return true;
                }
                Some(&p.id) == pinned
            })
            .collect()
    }

    pub(super) fn reconcile_streams(&mut self, now: Instant) {
        let wanted = self.wanted(now);
        for (p, wanted) in self.providers.iter_mut().zip(wanted) {
            if p.stream.is_some() && !wanted {
                p.close(&self.policy, now, &mut self.out);
            } else if p.stream.is_none() && wanted && !p.in_backoff(now) {
                let generation = self.next_generation;
                self.next_generation += 1;
                let handle = p.open(generation, &self.policy, now, &mut self.out);
                self.out.push(Decision::OpenStream { handle });
            }
        }
    }
}
