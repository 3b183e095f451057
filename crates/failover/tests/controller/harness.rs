//! A virtual-time driver for the controller, doing what the facade's driver
//! task does: feed events, tick exactly at every deadline, collect decisions.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use provisioning_failover::{
    Decision, FailoverController, FailoverPolicy, ProviderCondition, ProviderStatus,
};
use provisioning_provider_api::{
    FaultKind, Heartbeat, ProviderEvent, ProviderFault, ProviderId, ProviderSnapshot,
    ProviderTermination, SwitchReason,
};

/// One switch as observed: when, from, to, why.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SeenSwitch {
    pub(crate) at: Duration,
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) reason: SwitchReason,
}

pub(crate) struct Sim {
    pub(crate) c: FailoverController,
    pub(crate) t0: Instant,
    pub(crate) now: Instant,
    /// Every decision with the virtual time it was drained at.
    pub(crate) log: Vec<(Duration, Decision)>,
    /// The streams the decisions say are running.
    pub(crate) open: BTreeSet<String>,
}

pub(crate) fn id(name: &str) -> ProviderId {
    ProviderId::new(name).expect("test ids are valid")
}

pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub(crate) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

impl Sim {
    /// A controller with `providers` (name, priority), all enabled, added at
    /// virtual time zero.
    pub(crate) fn new(policy: FailoverPolicy, providers: &[(&str, u32)]) -> Self {
        Self::with_controller(FailoverController::new(policy, 7), providers)
    }

    pub(crate) fn with_controller(c: FailoverController, providers: &[(&str, u32)]) -> Self {
        Self::starting_at(c, providers, Instant::now())
    }

    /// Like [`with_controller`](Self::with_controller), with a given start
    /// (two runs from the same start compare equal).
    pub(crate) fn starting_at(
        c: FailoverController,
        providers: &[(&str, u32)],
        t0: Instant,
    ) -> Self {
        let mut sim = Self {
            c,
            t0,
            now: t0,
            log: Vec::new(),
            open: BTreeSet::new(),
        };
        for (name, priority) in providers {
            sim.c
                .add_provider(id(name), *priority, true, t0)
                .expect("distinct test providers");
        }
        sim.collect();
        sim
    }

    /// Virtual time since the start.
    pub(crate) fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    pub(crate) fn collect(&mut self) -> Vec<Decision> {
        let at = self.elapsed();
        let drained = self.c.drain();
        for d in &drained {
            match d {
                Decision::OpenStream { handle } => {
                    assert!(
                        self.open.insert(handle.id().to_string()),
                        "{handle} opened twice"
                    );
                }
                Decision::CloseStream { handle } => {
                    assert!(
                        self.open.remove(handle.id().as_str()),
                        "{handle} closed while not open"
                    );
                }
                Decision::Switch { to, .. } | Decision::Activate { to } => {
                    assert!(
                        self.open.contains(to.as_str()),
                        "{to} active without a stream"
                    );
                }
                _ => {}
            }
            self.log.push((at, d.clone()));
        }
        drained
    }

    /// Sends `event` to `name`'s running stream; `false` when none runs.
    pub(crate) fn send(&mut self, name: &str, event: ProviderEvent) -> bool {
        let Some(handle) = self.c.handle(&id(name)) else {
            return false;
        };
        if let ProviderEvent::Terminated(_) = event {
            // The stream is gone once it yields its termination.
            self.open.remove(name);
        }
        let accepted = self.c.on_event(&handle, &event, self.now);
        self.collect();
        accepted
    }

    pub(crate) fn snapshot(&mut self, name: &str) -> bool {
        self.send(name, ProviderEvent::Snapshot(ProviderSnapshot::empty()))
    }

    pub(crate) fn heartbeat(&mut self, name: &str) -> bool {
        self.send(name, ProviderEvent::heartbeat())
    }

    pub(crate) fn stale_heartbeat(&mut self, name: &str, last_contact: Duration) -> bool {
        self.send(
            name,
            ProviderEvent::Heartbeat(Heartbeat {
                last_contact: Some(last_contact),
            }),
        )
    }

    /// What a live provider sends: a snapshot first on a new stream, then
    /// heartbeats.
    pub(crate) fn alive(&mut self, name: &str) -> bool {
        match self.condition(name) {
            Some(ProviderCondition::Starting) | Some(ProviderCondition::Unreachable) => {
                self.snapshot(name)
            }
            _ => self.heartbeat(name),
        }
    }

    pub(crate) fn refused(&mut self, name: &str) -> bool {
        self.send(
            name,
            ProviderEvent::Fault(ProviderFault::retryable(
                FaultKind::BackendUnavailable,
                "connection refused",
            )),
        )
    }

    pub(crate) fn forbidden(&mut self, name: &str) -> bool {
        self.send(
            name,
            ProviderEvent::Fault(ProviderFault::permanent(
                FaultKind::PermissionDenied,
                "403 forbidden",
            )),
        )
    }

    pub(crate) fn resync(&mut self, name: &str) -> bool {
        self.send(
            name,
            ProviderEvent::Fault(ProviderFault::resync("index went back")),
        )
    }

    pub(crate) fn terminate(&mut self, name: &str, permanent: bool) -> bool {
        let t = if permanent {
            ProviderTermination::Errored {
                reason: "watch ended: 403 forbidden".into(),
                permanent: true,
            }
        } else {
            ProviderTermination::Ended
        };
        self.send(name, ProviderEvent::Terminated(t))
    }

    /// Lets `d` pass, ticking at every deadline on the way, as the facade's
    /// driver sleeps until `next_deadline`.
    pub(crate) fn advance(&mut self, d: Duration) {
        self.advance_with(d, |_| {});
    }

    /// [`advance`](Self::advance), calling `after_tick` after every tick.
    pub(crate) fn advance_with(&mut self, d: Duration, mut after_tick: impl FnMut(&mut Sim)) {
        let target = self.now + d;
        let mut guard = 0;
        while let Some(deadline) = self.c.next_deadline() {
            assert!(deadline > self.now, "deadline in the past");
            if deadline > target {
                break;
            }
            guard += 1;
            assert!(guard < 100_000, "deadline loop");
            self.now = deadline;
            self.c.tick(deadline);
            self.collect();
            after_tick(self);
        }
        self.now = target;
        self.c.tick(target);
        self.collect();
        after_tick(self);
    }

    /// Lets `d` pass while `alive` providers heartbeat every third of the
    /// timeout (and deliver a snapshot on every new stream).
    pub(crate) fn advance_alive(&mut self, d: Duration, alive: &[&str]) {
        let step = self.c.policy().timeout / 3;
        let mut left = d;
        while !left.is_zero() {
            let s = step.min(left);
            self.advance(s);
            left -= s;
            for name in alive {
                self.alive(name);
            }
        }
    }

    pub(crate) fn active(&self) -> Option<String> {
        self.c.active().map(ToString::to_string)
    }

    pub(crate) fn status(&self, name: &str) -> Option<ProviderStatus> {
        self.c.status(&id(name))
    }

    pub(crate) fn condition(&self, name: &str) -> Option<ProviderCondition> {
        self.status(name).map(|s| s.condition)
    }

    pub(crate) fn running(&self) -> Vec<String> {
        self.c
            .running()
            .iter()
            .map(|h| h.id().to_string())
            .collect()
    }

    pub(crate) fn switches(&self) -> Vec<SeenSwitch> {
        self.log
            .iter()
            .filter_map(|(at, d)| match d {
                Decision::Switch { from, to, reason } => Some(SeenSwitch {
                    at: *at,
                    from: from.to_string(),
                    to: to.to_string(),
                    reason: *reason,
                }),
                _ => None,
            })
            .collect()
    }

    pub(crate) fn last_switch(&self) -> Option<SeenSwitch> {
        self.switches().pop()
    }

    /// Health changes of `name` as (health, code, detail).
    pub(crate) fn health_changes(&self, name: &str) -> Vec<(String, Option<&'static str>, String)> {
        self.log
            .iter()
            .filter_map(|(_, d)| match d {
                Decision::HealthChanged {
                    id,
                    health,
                    code,
                    detail,
                } if id.as_str() == name => Some((health.to_string(), *code, detail.clone())),
                _ => None,
            })
            .collect()
    }

    /// Every provider delivers its first snapshot now; returns the active one.
    pub(crate) fn all_answer(&mut self, names: &[&str]) -> Option<String> {
        for name in names {
            self.snapshot(name);
        }
        self.active()
    }
}
