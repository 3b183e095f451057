//! The conformance suite every provider must pass.
//!
//! Each case is a public async function taking the provider, its driver and
//! a [`SuiteConfig`]; [`run_conformance`] runs them all in order. Every case
//! starts from a fresh stream and a known baseline membership.

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use provisioning_provider_api::{
    ClusterProvider, MemberSpec, MemberState, NodeId, ProviderEvent, ProviderSnapshot,
    ProviderStream, StreamOptions, TopologyView, diff,
};
use tokio::time::{Instant, timeout_at};

use crate::driver::{ConformanceDriver, InjectedFault, MembershipChange};
use crate::report::{CaseOutcome, CaseRecord, ConformanceReport};

mod mandatory_cases;
mod optional_cases;

pub use mandatory_cases::*;
pub use optional_cases::*;

/// Mandatory cases, in run order. No capability switches them off.
pub const MANDATORY_CASES: [&str; 12] = [
    "first_item_is_snapshot_or_fault",
    "join_reflected",
    "leave_reflected",
    "change_is_leave_then_join",
    "block_reflected",
    "unblock_reflected",
    "unchanged_view_yields_heartbeat",
    "heartbeats_within_interval",
    "retryable_fault_reported_then_recovers",
    "permanent_fault_reported_as_permanent",
    "termination_reported_once",
    "thousand_member_snapshot",
];

/// Optional cases, each gated by a [`Capabilities`](crate::Capabilities) flag.
pub const OPTIONAL_CASES: [&str; 5] = [
    "labels_reflected",
    "block_non_member",
    "initial_snapshot_is_last_seen",
    "restart_yields_new_incarnation",
    "draining_before_leave",
];

/// Timing of a run. Real backends need real time and slack; in-memory
/// providers run on tokio's paused clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SuiteConfig {
    /// Heartbeat interval passed to the provider.
    pub heartbeat_interval: Duration,
    /// How long to wait for an expected event.
    pub event_timeout: Duration,
    /// Allowed lateness of a heartbeat beyond its interval.
    pub heartbeat_slack: Duration,
}

impl SuiteConfig {
    /// Heartbeat every `heartbeat_interval`, events expected within 5 s, 50 %
    /// heartbeat slack.
    pub fn new(heartbeat_interval: Duration) -> Self {
        Self {
            heartbeat_interval,
            event_timeout: Duration::from_secs(5),
            heartbeat_slack: heartbeat_interval / 2,
        }
    }

    /// Sets how long to wait for an expected event.
    pub fn with_event_timeout(mut self, timeout: Duration) -> Self {
        self.event_timeout = timeout;
        self
    }

    /// Sets the allowed heartbeat lateness.
    pub fn with_heartbeat_slack(mut self, slack: Duration) -> Self {
        self.heartbeat_slack = slack;
        self
    }

    fn options(&self) -> StreamOptions {
        StreamOptions::new(self.heartbeat_interval)
    }
}

type CaseResult = Result<(), String>;

/// Runs every case against `provider`, in the order of [`MANDATORY_CASES`]
/// then [`OPTIONAL_CASES`], and reports them.
pub async fn run_conformance<D: ConformanceDriver>(
    provider: &dyn ClusterProvider,
    driver: &D,
    config: &SuiteConfig,
) -> ConformanceReport {
    let caps = driver.capabilities();
    let mut report = ConformanceReport::default();
    macro_rules! case {
        ($name:literal, $mandatory:expr, $enabled:expr, $why:literal, $f:ident) => {
            let outcome = if $enabled {
                timed($f(provider, driver, config)).await
            } else {
                CaseOutcome::NotApplicable($why)
            };
            report.cases.push(CaseRecord {
                name: $name,
                mandatory: $mandatory,
                outcome,
            });
        };
    }
    case!(
        "first_item_is_snapshot_or_fault",
        true,
        true,
        "",
        case_first_item_is_snapshot_or_fault
    );
    case!("join_reflected", true, true, "", case_join_reflected);
    case!("leave_reflected", true, true, "", case_leave_reflected);
    case!(
        "change_is_leave_then_join",
        true,
        true,
        "",
        case_change_is_leave_then_join
    );
    case!("block_reflected", true, true, "", case_block_reflected);
    case!("unblock_reflected", true, true, "", case_unblock_reflected);
    case!(
        "unchanged_view_yields_heartbeat",
        true,
        true,
        "",
        case_unchanged_view_yields_heartbeat
    );
    case!(
        "heartbeats_within_interval",
        true,
        true,
        "",
        case_heartbeats_within_interval
    );
    case!(
        "retryable_fault_reported_then_recovers",
        true,
        true,
        "",
        case_retryable_fault_reported_then_recovers
    );
    case!(
        "permanent_fault_reported_as_permanent",
        true,
        true,
        "",
        case_permanent_fault_reported_as_permanent
    );
    case!(
        "termination_reported_once",
        true,
        true,
        "",
        case_termination_reported_once
    );
    case!(
        "thousand_member_snapshot",
        true,
        true,
        "",
        case_thousand_member_snapshot
    );
    case!(
        "labels_reflected",
        false,
        caps.labels,
        "no labels capability",
        case_labels_reflected
    );
    case!(
        "block_non_member",
        false,
        caps.block_non_members,
        "no block_non_members capability",
        case_block_non_member
    );
    case!(
        "initial_snapshot_is_last_seen",
        false,
        caps.initial_snapshot,
        "no initial_snapshot capability",
        case_initial_snapshot_is_last_seen
    );
    case!(
        "restart_yields_new_incarnation",
        false,
        caps.incarnations,
        "no incarnations capability",
        case_restart_yields_new_incarnation
    );
    case!(
        "draining_before_leave",
        false,
        caps.draining,
        "no draining capability",
        case_draining_before_leave
    );
    report
}

async fn timed(case: impl Future<Output = CaseResult>) -> CaseOutcome {
    let started = Instant::now();
    match case.await {
        Ok(()) => CaseOutcome::Passed(started.elapsed()),
        Err(message) => CaseOutcome::Failed(message),
    }
}

/// The membership every case starts from.
pub fn baseline() -> Vec<MemberSpec> {
    (1..=3)
        .map(|i| MemberSpec {
            id: NodeId::from(format!("n{i}")),
            host: format!("127.0.0.{i}"),
            port: 4000 + i,
            labels: Default::default(),
            blocked: false,
            incarnation: None,
            state: MemberState::Serving,
        })
        .collect()
}

/// A member of the standard shape, for drivers and cases.
pub fn member(id: &str, host: &str, port: u16) -> MemberSpec {
    MemberSpec {
        id: NodeId::from(id),
        host: host.into(),
        port,
        labels: Default::default(),
        blocked: false,
        incarnation: None,
        state: MemberState::Serving,
    }
}

/// `seen` with the incarnations a backend gave its members (a Pod uid, a
/// `CreateIndex`, a `create_revision`) left out where `want` names none:
/// cases state membership, and the lifecycle cases check incarnations
/// themselves.
fn without_backend_incarnations(
    seen: &ProviderSnapshot,
    want: &ProviderSnapshot,
) -> ProviderSnapshot {
    if seen.members().iter().all(|m| m.incarnation.is_none()) {
        return seen.clone();
    }
    let (mut members, blocked) = seen.clone().into_parts();
    for member in &mut members {
        let wanted = want
            .member(member.id.as_str())
            .is_some_and(|w| w.incarnation.is_some());
        if !wanted {
            member.incarnation = None;
        }
    }
    ProviderSnapshot::new(members, blocked).unwrap_or_else(|_| seen.clone())
}

fn expected(specs: &[MemberSpec]) -> Result<ProviderSnapshot, String> {
    ProviderSnapshot::from_specs(specs.iter().cloned()).map_err(|e| format!("bad expectation: {e}"))
}

/// An open stream with helpers to wait for what a case expects.
struct Watch {
    stream: ProviderStream,
    timeout: Duration,
    last: Option<ProviderSnapshot>,
}

impl Watch {
    fn open(provider: &dyn ClusterProvider, config: &SuiteConfig) -> Self {
        Self {
            stream: provider.stream(config.options()),
            timeout: config.event_timeout,
            last: None,
        }
    }

    async fn next(&mut self) -> Result<ProviderEvent, String> {
        match timeout_at(Instant::now() + self.timeout, self.stream.next()).await {
            Err(_) => Err(format!("no event within {:?}", self.timeout)),
            Ok(None) => Err("stream ended without Terminated".into()),
            Ok(Some(event)) => {
                if let ProviderEvent::Snapshot(s) = &event {
                    self.last = Some(s.clone());
                }
                Ok(event)
            }
        }
    }

    /// Waits for a snapshot with exactly `want`'s members and block list,
    /// skipping heartbeats and intermediate snapshots; a fault fails.
    async fn until(&mut self, want: &ProviderSnapshot) -> Result<ProviderSnapshot, String> {
        self.until_also(want, |_| true).await
    }

    /// [`until`](Self::until) for a snapshot that also satisfies `also`
    /// (which sees the snapshot with its backend incarnations).
    async fn until_also(
        &mut self,
        want: &ProviderSnapshot,
        also: impl Fn(&ProviderSnapshot) -> bool,
    ) -> Result<ProviderSnapshot, String> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let event = timeout_at(deadline, self.stream.next())
                .await
                .map_err(|_| {
                    format!(
                        "no snapshot equal to {want:?} within {:?}; last: {:?}",
                        self.timeout, self.last
                    )
                })?
                .ok_or("stream ended while waiting for a snapshot")?;
            match event {
                ProviderEvent::Snapshot(s) => {
                    self.last = Some(s.clone());
                    let shown = without_backend_incarnations(&s, want);
                    if shown.same_content(want) && also(&s) {
                        if shown.hash() != want.hash() {
                            return Err("equal content but different hash".into());
                        }
                        return Ok(s);
                    }
                }
                ProviderEvent::Heartbeat(_) => {}
                ProviderEvent::Fault(f) if f.is_resync() => {}
                other => return Err(format!("unexpected {other:?} while waiting for a snapshot")),
            }
        }
    }
}

async fn reset<D: ConformanceDriver>(driver: &D) -> Result<ProviderSnapshot, String> {
    let specs = baseline();
    driver
        .apply(MembershipChange::Reset(specs.clone()))
        .await
        .map_err(|e| e.to_string())?;
    expected(&specs)
}

async fn apply<D: ConformanceDriver>(driver: &D, change: MembershipChange) -> CaseResult {
    driver.apply(change).await.map_err(|e| e.to_string())
}

async fn inject<D: ConformanceDriver>(driver: &D, fault: InjectedFault) -> CaseResult {
    driver.inject(fault).await.map_err(|e| e.to_string())
}

/// Opens a stream on the baseline and waits until the provider shows it.
async fn start<D: ConformanceDriver>(
    provider: &dyn ClusterProvider,
    driver: &D,
    config: &SuiteConfig,
) -> Result<(Watch, ProviderSnapshot), String> {
    let base = reset(driver).await?;
    let mut watch = Watch::open(provider, config);
    let seen = watch.until(&base).await?;
    Ok((watch, seen))
}

/// Applies `change` and checks the provider's next view equals `want`, and
/// that `diff` from the previous view yields exactly `events` kinds.
async fn change_and_expect<D: ConformanceDriver>(
    provider: &dyn ClusterProvider,
    driver: &D,
    config: &SuiteConfig,
    change: MembershipChange,
    want: Vec<MemberSpec>,
    events: &[&str],
) -> CaseResult {
    let (mut watch, before) = start(provider, driver, config).await?;
    apply(driver, change).await?;
    let want = expected(&want)?;
    let after = watch.until(&want).await?;
    let kinds: Vec<_> = diff(&before, &after)
        .iter()
        .map(|e| e.kind().as_str())
        .collect();
    if kinds != events {
        return Err(format!("diff was {kinds:?}, expected {events:?}"));
    }
    let mut view = TopologyView::from_snapshot(&before);
    for e in diff(&before, &after) {
        view.apply(&e).map_err(|e| e.to_string())?;
    }
    if !view.matches(&after) {
        return Err("diff does not rebuild the new view".into());
    }
    Ok(())
}
