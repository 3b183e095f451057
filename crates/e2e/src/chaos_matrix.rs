//! The fault matrix: every backend as the primary (an in-memory standby
//! behind it) under every fault, with the outcome each cell must show.
//!
//! A cell: start the backend and the service (tight policy), wait until
//! every consumer holds the backend's view, inject the fault, add a member
//! at the backend while the fault holds (after healing where the backend
//! cannot take writes), hold for [`HOLD`], heal, then wait until every
//! bridge and a replay of the event stream hold the backend's ground truth
//! (read from the fake or from etcd, never through the provider), wait
//! [`SETTLE`] more and compare the switches with the expected outcome.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster_provisioning::{ClusterProvisioningService, FailoverPolicy, ProvisioningHandle};
use provisioning_backend_memory::InMemoryProvider;
use provisioning_provider_api::{
    ClusterNode, ProviderHealth, ProviderId, ProviderSnapshot, SwitchReason,
};

use crate::Recorder;
use crate::chaos_observer::EventObserver;
use crate::chaos_target::{ChaosTarget, PRIMARY, TargetError};

mod cells;

pub use cells::{Backend, Expected, Fault, expected};
#[cfg(test)]
use cells::{HD, SILENT};

/// How long a fault holds (twice the tight policy's no-response timeout).
pub const HOLD: Duration = Duration::from_secs(3);
/// How long [`Fault::AcceptsThenSilent`] holds: past the liveness bound
/// of the default numbers (`max_errors × liveness_timeout +
/// liveness_interval + 0.5 s` = 4.5 s), far below the 15 s timeout. The
/// switch must come while it holds.
pub const HOLD_SILENT: Duration = Duration::from_secs(6);
/// The flapping period: down this long, up this long, twice.
pub const FLAP: Duration = Duration::from_secs(2);
/// Quiet time after convergence in which no further switch may happen.
pub const SETTLE: Duration = Duration::from_millis(1500);
/// Bound on reaching the ground truth after healing.
pub const CONVERGE_BOUND: Duration = Duration::from_secs(10);

/// What one cell measured.
#[derive(Debug, Clone)]
pub struct CellReport {
    /// Column.
    pub backend: Backend,
    /// Row.
    pub fault: Fault,
    /// What it had to show.
    pub expected: Expected,
    /// Switch reasons in order.
    pub switches: Vec<SwitchReason>,
    /// Fault injected → first switch.
    pub to_switch: Option<Duration>,
    /// Heal → every bridge and the replay hold the ground truth.
    pub to_converge: Option<Duration>,
    /// `Fault`s and `Terminated`s the primary's stream reported.
    pub interruptions: u64,
    /// Whether the primary was reported unreachable.
    pub unreachable: bool,
    /// `Ok` or why the cell failed.
    pub verdict: Result<(), String>,
}

impl CellReport {
    fn not_applicable(backend: Backend, fault: Fault, expected: Expected) -> Self {
        Self {
            backend,
            fault,
            expected,
            switches: Vec::new(),
            to_switch: None,
            to_converge: None,
            interruptions: 0,
            unreachable: false,
            verdict: Ok(()),
        }
    }

    /// Whether the cell ran (not N/A).
    pub fn ran(&self) -> bool {
        !matches!(self.expected, Expected::NotApplicable(_))
    }

    /// The measured outcome in the tables' short form.
    pub fn measured(&self) -> String {
        if !self.ran() {
            return "N/A".into();
        }
        let switches = if self.switches.is_empty() {
            "no switch".to_owned()
        } else {
            self.switches
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(" → ")
        };
        let ms =
            |d: Option<Duration>| d.map_or("—".to_owned(), |d| format!("{} ms", d.as_millis()));
        format!(
            "{switches}; switch {}; converged {}; {} interruptions",
            ms(self.to_switch),
            ms(self.to_converge),
            self.interruptions
        )
    }
}

impl fmt::Display for CellReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = match (&self.verdict, self.ran()) {
            (_, false) => "n/a ".to_owned(),
            (Ok(()), true) => "PASS".to_owned(),
            (Err(_), true) => "FAIL".to_owned(),
        };
        write!(
            f,
            "{verdict} {:<9} {:<24} expected: {} | measured: {}",
            self.backend.name(),
            self.fault.name(),
            self.expected.label(),
            self.measured()
        )?;
        if let Err(why) = &self.verdict {
            write!(f, "\n     why: {why}")?;
        }
        Ok(())
    }
}

/// The service of one cell with its consumers.
struct Rig {
    service: ProvisioningHandle,
    bridges: [Arc<Recorder>; 3],
    observer: EventObserver,
    standby_view: ProviderSnapshot,
}

fn id(s: &str) -> ProviderId {
    ProviderId::new(s).unwrap_or_else(|_| unreachable!("a valid literal id"))
}

impl Rig {
    /// Whether every bridge and the replay hold `truth` from `provider`.
    fn holds(&self, truth: &ProviderSnapshot, provider: &ProviderId) -> bool {
        let hash = truth.hash();
        let [placement, partition, remoting] = &self.bridges;
        [placement, partition].iter().all(|b| {
            b.last_snapshot()
                .is_some_and(|s| s.hash() == hash && s.provider_id() == provider)
        }) && {
            let r = remoting.state();
            r.view_hash == Some(hash) && r.view.matches(truth)
        } && self.observer.holds(truth, provider)
    }

    fn violations(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .bridges
            .iter()
            .flat_map(|b| b.state().violations.clone())
            .collect();
        all.extend(self.observer.observed().violations.iter().cloned());
        all
    }

    fn interruptions(&self) -> u64 {
        self.service
            .metrics()
            .view()
            .providers
            .get(&id(PRIMARY))
            .map_or(0, |p| p.stream_interruptions)
    }
}

/// The policy of a cell: [`FailoverPolicy::tight`], except for
/// [`Fault::AcceptsThenSilent`]: the default detection numbers (timeout,
/// `max_errors`, liveness probes), with the tight cooldown and backoff so
/// the fail-back fits the cell.
pub fn policy(fault: Fault) -> FailoverPolicy {
    let tight = FailoverPolicy::tight();
    match fault {
        Fault::AcceptsThenSilent => FailoverPolicy::default()
            .with_cooldown(tight.cooldown)
            .with_backoff(
                tight.backoff_initial,
                tight.backoff_factor,
                tight.backoff_cap,
            ),
        _ => tight,
    }
}

/// How long `fault` holds.
pub fn hold(fault: Fault) -> Duration {
    match fault {
        Fault::AcceptsThenSilent => HOLD_SILENT,
        _ => HOLD,
    }
}

async fn start_rig(
    source: crate::chaos_target::PrimarySource,
    policy: FailoverPolicy,
) -> Result<Rig, TargetError> {
    let standby = InMemoryProvider::new(id("standby"), 10);
    // The standby sees the same cluster a little differently, so a
    // consumer on the wrong provider never passes for converged.
    for (name, host) in [("m1", "10.0.0.1"), ("m2", "10.0.0.2"), ("s1", "10.0.2.1")] {
        standby
            .handle()
            .add(ClusterNode::new(name, host, 4000))
            .map_err(|e| TargetError(format!("standby: {e}")))?;
    }
    let standby_view = standby.handle().snapshot();
    let registry = cluster_provisioning::builtin_registry();
    let primary = source.register(&registry)?;
    let bridges = [Recorder::new(), Recorder::new(), Recorder::new()];
    let mut builder = ClusterProvisioningService::build(registry)
        .with_failover(policy)
        .with_provider(Arc::new(standby))
        .with_bridges(bridges[0].clone(), bridges[1].clone(), bridges[2].clone())
        .with_rng_seed(13);
    if let Some(p) = primary {
        builder = builder.with_provider(p);
    }
    let service = builder
        .start()
        .map_err(|e| TargetError(format!("service: {e}")))?;
    let events = service
        .events()
        .map_err(|e| TargetError(format!("events: {e}")))?;
    Ok(Rig {
        service,
        bridges,
        observer: EventObserver::spawn(events),
        standby_view,
    })
}

/// Polls `check` every 10 ms until it holds or `limit` passes.
async fn wait_until(limit: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    loop {
        if check() {
            return Some(started.elapsed());
        }
        if started.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs one cell; never panics on a failed expectation (the verdict says
/// why).
pub async fn run_cell(backend: Backend, fault: Fault) -> CellReport {
    let expected = expected(backend, fault);
    if let Expected::NotApplicable(_) = expected {
        return CellReport::not_applicable(backend, fault, expected);
    }
    let mut report = CellReport::not_applicable(backend, fault, expected);
    // Bounded as a whole: a stuck step fails the cell instead of the run.
    let limit = HOLD_SILENT + FLAP * 4 + CONVERGE_BOUND * 2 + Duration::from_secs(30);
    match tokio::time::timeout(limit, drive(&mut report)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => report.verdict = Err(e.to_string()),
        Err(_) => report.verdict = Err(format!("cell did not finish within {limit:?}")),
    }
    report
}

async fn drive(report: &mut CellReport) -> Result<(), TargetError> {
    let (backend, fault) = (report.backend, report.fault);
    let (mut target, source) = ChaosTarget::start(backend, fault).await?;
    let rig = start_rig(source, policy(fault)).await?;
    let result = exercise(report, &mut target, &rig).await;
    let _ = rig.service.shutdown().await;
    drop(target);
    result
}

async fn exercise(
    report: &mut CellReport,
    target: &mut ChaosTarget,
    rig: &Rig,
) -> Result<(), TargetError> {
    let (fault, expected) = (report.fault, report.expected);
    let primary = id(PRIMARY);
    let standby = id("standby");

    let truth = target.truth().await?;
    if wait_until(CONVERGE_BOUND, || rig.holds(&truth, &primary))
        .await
        .is_none()
    {
        return Err(TargetError(
            "the primary's first view never reached every consumer".into(),
        ));
    }
    let before = rig.interruptions();
    let injected = Instant::now();
    target.inject(fault).await?;
    let mut added = false;
    if fault == Fault::Flapping {
        tokio::time::sleep(FLAP).await;
        target.heal(fault).await?;
        target.add_member().await?;
        added = true;
        tokio::time::sleep(FLAP).await;
        target.inject(fault).await?;
        tokio::time::sleep(FLAP).await;
    } else {
        if target.writable_during(fault) {
            tokio::time::sleep(Duration::from_millis(300)).await;
            target.add_member().await?;
            added = true;
        }
        let left = hold(fault).saturating_sub(injected.elapsed());
        tokio::time::sleep(left).await;
    }
    target.heal(fault).await?;
    let healed = Instant::now();
    if !added {
        target.add_member().await?;
    }
    let (truth, on) = match expected {
        Expected::Permanent { .. } => (rig.standby_view.clone(), standby.clone()),
        _ => (target.truth().await?, primary.clone()),
    };
    report.to_converge = wait_until(CONVERGE_BOUND, || rig.holds(&truth, &on))
        .await
        .map(|_| healed.elapsed());
    tokio::time::sleep(SETTLE).await;
    let still = rig.holds(&truth, &on);
    {
        let o = rig.observer.observed();
        report.switches = o.switches.iter().map(|s| s.reason).collect();
        report.to_switch = o
            .switches
            .first()
            .map(|s| s.at.saturating_duration_since(injected));
        report.unreachable = o
            .health
            .iter()
            .any(|(p, h, _)| *p == primary && *h == ProviderHealth::Unreachable);
    }
    report.interruptions = rig.interruptions().saturating_sub(before);
    let violations = rig.violations();

    report.verdict = judge(report, still, &violations);
    Ok(())
}

fn judge(report: &CellReport, still: bool, violations: &[String]) -> Result<(), String> {
    if !violations.is_empty() {
        return Err(format!("consumer violations: {violations:?}"));
    }
    if report.to_converge.is_none() {
        return Err(format!(
            "no convergence to the ground truth within {CONVERGE_BOUND:?} of healing"
        ));
    }
    if !still {
        return Err("left the ground truth again after converging".into());
    }
    let s = &report.switches;
    let restored = SwitchReason::PriorityRestored;
    // A switch after healing would be the no-response timeout's, not the
    // probes'.
    if report.fault == Fault::AcceptsThenSilent && report.to_switch.is_none_or(|t| t > HOLD_SILENT)
    {
        return Err(format!(
            "expected a switch while the fault held ({HOLD_SILENT:?}), got one after {:?}",
            report.to_switch
        ));
    }
    match report.expected {
        Expected::Switch { reasons } => {
            if s.len() != 2 || !reasons.contains(&s[0]) || s[1] != restored {
                return Err(format!(
                    "expected exactly [{} , priority_restored], got {s:?}",
                    reasons
                        .iter()
                        .map(|r| r.as_str())
                        .collect::<Vec<_>>()
                        .join("|")
                ));
            }
        }
        Expected::Permanent { reasons } => {
            if s.len() != 1 || !reasons.contains(&s[0]) {
                return Err(format!("expected exactly one switch, got {s:?}"));
            }
        }
        Expected::FaultsOnly => {
            if !s.is_empty() {
                return Err(format!("expected no switch, got {s:?}"));
            }
            if report.interruptions == 0 {
                return Err("expected faults reported, none counted".into());
            }
        }
        Expected::ResyncOnly => {
            if !s.is_empty() {
                return Err(format!("expected no switch, got {s:?}"));
            }
            if report.unreachable {
                return Err("the primary turned unreachable".into());
            }
        }
        Expected::Flapping { max } => {
            let alternating = s
                .iter()
                .enumerate()
                .all(|(i, r)| (i % 2 == 1) == (*r == restored));
            if s.len() < 2 || s.len() > max || !s.len().is_multiple_of(2) || !alternating {
                return Err(format!(
                    "expected 2..={max} alternating switches ending on the primary, got {s:?}"
                ));
            }
        }
        Expected::NotApplicable(_) => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use SwitchReason::{HealthDegraded as Hd, PriorityRestored as Back, Timeout as To};

    fn report(expected: Expected, switches: Vec<SwitchReason>) -> CellReport {
        let mut r = CellReport::not_applicable(Backend::Consul, Fault::Hang, expected);
        r.switches = switches;
        r.to_converge = Some(Duration::from_millis(5));
        r
    }

    #[test]
    fn switch_counts_and_reasons_are_exact() {
        let e = Expected::Switch { reasons: SILENT };
        assert!(judge(&report(e, vec![To, Back]), true, &[]).is_ok());
        assert!(judge(&report(e, vec![Hd, Back]), true, &[]).is_ok());
        assert!(
            judge(&report(e, vec![To]), true, &[]).is_err(),
            "no fail-back"
        );
        assert!(judge(&report(e, vec![To, Back, Hd, Back]), true, &[]).is_err());
        let e = Expected::Switch { reasons: HD };
        assert!(
            judge(&report(e, vec![To, Back]), true, &[]).is_err(),
            "reason"
        );
    }

    #[test]
    fn other_outcomes_fail_when_they_should() {
        let mut r = report(Expected::ResyncOnly, vec![]);
        assert!(judge(&r, true, &[]).is_ok());
        r.unreachable = true;
        assert!(judge(&r, true, &[]).is_err());
        assert!(judge(&report(Expected::ResyncOnly, vec![Hd, Back]), true, &[]).is_err());
        let f = Expected::Flapping { max: 4 };
        assert!(judge(&report(f, vec![Hd, Back, Hd, Back]), true, &[]).is_ok());
        assert!(judge(&report(f, vec![Hd, Back, Hd]), true, &[]).is_err());
        assert!(judge(&report(f, vec![Hd, Hd]), true, &[]).is_err());
        assert!(judge(&report(f, [Hd, Back].repeat(3)), true, &[]).is_err());
        let mut r = report(Expected::FaultsOnly, vec![]);
        assert!(judge(&r, true, &[]).is_err(), "no faults counted");
        r.interruptions = 2;
        assert!(judge(&r, true, &[]).is_ok());
        assert!(judge(&r, false, &[]).is_err(), "left the truth");
        assert!(judge(&r, true, &["seq_no 3 after 4".into()]).is_err());
        r.to_converge = None;
        assert!(judge(&r, true, &[]).is_err(), "never converged");
    }

    #[test]
    fn every_cell_has_an_expectation_and_na_says_why() {
        for b in Backend::ALL {
            for f in Fault::ALL {
                if let Expected::NotApplicable(why) = expected(b, f) {
                    assert!(why.len() > 5, "{b:?} {f:?}");
                }
            }
        }
    }
}
