//! The service's tracing: a span per provider stream (with its reconnect
//! count), per failover decision, per publication and per bridge or
//! consumer call; and `info` stays quiet on a healthy steady cluster.
//!
//! A subscriber is process-wide (the hub's bridge threads are not tokio
//! tasks), and the other tests of this binary run beside these: each test
//! runs itself again in a process of its own, with the capturing
//! subscriber installed there.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use cluster_provisioning::api::{
    ClusterNode, FaultKind, ProviderFault, ProviderHealth, ProviderId,
};
use cluster_provisioning::hub::wire::{ChangeEnvelope, SnapshotEnvelope};
use cluster_provisioning::memory::{InMemoryHandle, InMemoryProvider};
use cluster_provisioning::{
    ClusterProvisioningService, FailoverPolicy, PlacementSupervisorBridge, ProvisioningEvent,
    ProvisioningHandle,
};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{Layer, Registry};

/// Set in the child process to the name of the test it runs.
const CHILD: &str = "FACADE_TRACING_SPANS_TEST";
/// Generous for in-memory providers under a tight policy (a switch takes
/// about 100 ms): 3 × 1 s + 2 s.
const WAIT: Duration = Duration::from_secs(5);
/// How long the healthy cluster is watched for noise.
const STEADY: Duration = Duration::from_secs(3);

/// One span as the subscriber saw it: its name, level and last fields.
#[derive(Debug, Clone)]
struct SpanSeen {
    name: &'static str,
    level: Level,
    fields: BTreeMap<String, String>,
    /// The name of its parent span, if it has one.
    parent: Option<&'static str>,
    /// Whether it has closed (an exporter sends a span when it closes).
    closed: bool,
}

impl SpanSeen {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

/// One event: its level and fields.
#[derive(Clone)]
struct EventSeen {
    level: Level,
    fields: BTreeMap<String, String>,
}

#[derive(Default)]
struct Seen {
    spans: Vec<SpanSeen>,
    events: Vec<EventSeen>,
}

/// Keeps every span (with later `record`s) and event it is shown.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Seen>>);

/// The index of a span in `Seen::spans`, kept in the span's extensions.
struct SpanIndex(usize);

struct FieldText<'a>(&'a mut BTreeMap<String, String>);

impl Visit for FieldText<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl Capture {
    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn spans(&self, name: &str) -> Vec<SpanSeen> {
        self.seen()
            .spans
            .iter()
            .filter(|s| s.name == name)
            .cloned()
            .collect()
    }
}

impl<S> Layer<S> for Capture
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        attrs.record(&mut FieldText(&mut fields));
        let parent = ctx
            .span(id)
            .and_then(|span| span.parent())
            .map(|parent| parent.name());
        let index = {
            let mut seen = self.seen();
            seen.spans.push(SpanSeen {
                name: attrs.metadata().name(),
                level: *attrs.metadata().level(),
                fields,
                parent,
                closed: false,
            });
            seen.spans.len() - 1
        };
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanIndex(index));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let Some(index) = span.extensions().get::<SpanIndex>().map(|i| i.0) else {
            return;
        };
        let mut seen = self.seen();
        values.record(&mut FieldText(&mut seen.spans[index].fields));
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(index) = span.extensions().get::<SpanIndex>().map(|i| i.0) else {
            return;
        };
        self.seen().spans[index].closed = true;
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut FieldText(&mut fields));
        self.seen().events.push(EventSeen {
            level: *event.metadata().level(),
            fields,
        });
    }
}

/// Runs `body` in a process of its own with `capture` (filtered at
/// `level`) as the global subscriber: this test binary again, told to run
/// only `test`. In that child, runs `body`.
fn in_own_process(test: &str, level: LevelFilter, body: impl FnOnce(Capture)) {
    if std::env::var(CHILD).as_deref() == Ok(test) {
        let capture = Capture::default();
        let subscriber = Registry::default().with(capture.clone().with_filter(level));
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber per process");
        body(capture);
        return;
    }
    // Test names leave out the test crate's name.
    let module = module_path!()
        .split_once("::")
        .map_or(module_path!(), |(_, rest)| rest);
    let name = format!("{module}::{test}");
    let output = Command::new(std::env::current_exe().expect("test binary"))
        .args([name.as_str(), "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, test)
        .output()
        .expect("run the test binary again");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(output.status.success(), "{name} failed in its own process");
    assert!(
        stdout.contains("1 passed"),
        "{name} did not run in its own process"
    );
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A placement supervisor that takes everything and does nothing.
struct Placement;

impl PlacementSupervisorBridge for Placement {
    fn apply_snapshot(&self, _: &SnapshotEnvelope) {}
    fn provider_changed(&self, _: &ChangeEnvelope) {}
}

/// Two in-memory providers seeing the same two members: `a` (priority 20)
/// and `b` (10), with a placement bridge and an event sink attached.
fn start() -> (ProvisioningHandle, InMemoryHandle) {
    start_with(FailoverPolicy::tight())
}

/// [`start`] with another policy.
fn start_with(policy: FailoverPolicy) -> (ProvisioningHandle, InMemoryHandle) {
    let a = InMemoryProvider::new(ProviderId::new("a").expect("id"), 20);
    let b = InMemoryProvider::new(ProviderId::new("b").expect("id"), 10);
    for provider in [&a, &b] {
        for (i, id) in ["n1", "n2"].into_iter().enumerate() {
            provider
                .handle()
                .add(ClusterNode::new(id, "127.0.0.1", 4000 + i as u16))
                .expect("member");
        }
    }
    let backend_a = a.handle();
    let service = ClusterProvisioningService::build(cluster_provisioning::builtin_registry())
        .with_failover(policy)
        .with_placement("placement-probe", Arc::new(Placement))
        .with_event_sink(Arc::new(|_: Arc<ProvisioningEvent>| {}))
        .with_provider(Arc::new(a))
        .with_provider(Arc::new(b))
        .start()
        .expect("start");
    (service, backend_a)
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < WAIT, "{what}: not within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    started.elapsed()
}

/// The highest reconnect count on `a`'s stream spans so far.
fn a_reconnects(capture: &Capture) -> u64 {
    capture
        .spans("provider_stream")
        .iter()
        .filter(|s| s.field("provider") == Some("a"))
        .filter_map(|s| s.field("reconnects")?.parse().ok())
        .max()
        .unwrap_or(0)
}

async fn wait_active(service: &ProvisioningHandle, provider: &str) -> Duration {
    wait_for(&format!("{provider} active"), || {
        service
            .topology()
            .is_some_and(|t| t.provider_id().as_str() == provider)
    })
    .await
}

async fn wait_all_healthy(service: &ProvisioningHandle) -> Duration {
    let started = Instant::now();
    loop {
        let views = service.providers().await.expect("providers");
        if views
            .iter()
            .all(|v| v.health == Some(ProviderHealth::Healthy))
        {
            return started.elapsed();
        }
        assert!(started.elapsed() < WAIT, "not all healthy within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[test]
fn a_failover_leaves_stream_decision_publication_and_call_spans() {
    in_own_process(
        "a_failover_leaves_stream_decision_publication_and_call_spans",
        LevelFilter::TRACE,
        |capture| {
            runtime().block_on(async {
                let (service, backend_a) = start();
                wait_active(&service, "a").await;
                wait_all_healthy(&service).await;

                // A standby closed and opened again on purpose has not
                // reconnected.
                service.disable("b").await.expect("disable b");
                service.enable("b").await.expect("enable b");
                wait_for("b's stream opened again", || {
                    capture
                        .spans("provider_stream")
                        .iter()
                        .filter(|s| s.field("provider") == Some("b"))
                        .count()
                        >= 2
                })
                .await;
                let b_streams: Vec<_> = capture
                    .spans("provider_stream")
                    .into_iter()
                    .filter(|s| s.field("provider") == Some("b"))
                    .collect();
                assert!(
                    b_streams.iter().all(|s| s.field("reconnects") == Some("0")),
                    "{b_streams:?}"
                );

                // A fault the stream recovers from at once: one reconnect.
                backend_a.inject_fault(ProviderFault::retryable(
                    FaultKind::BackendUnavailable,
                    "connection reset",
                ));
                let took = wait_for("a's stream records a reconnect", || {
                    capture.spans("provider_stream").iter().any(|s| {
                        s.field("provider") == Some("a")
                            && s.field("reconnects").is_some_and(|n| n != "0")
                    })
                })
                .await;
                println!("fault -> reconnect recorded on the stream span: {took:?}");

                backend_a.fail(ProviderFault::retryable(
                    FaultKind::BackendUnavailable,
                    "connection refused",
                ));
                let took = wait_active(&service, "b").await;
                println!("refused -> switch to b: {took:?}");
                // Exported while the service runs: the decision closes
                // although the streams it touched go on.
                let took = wait_for("the switch decision closed", || {
                    capture.spans("failover_decision").iter().any(|s| {
                        s.field("outcome") == Some("switched") && s.field("to") == Some("b") && s.closed
                    })
                })
                .await;
                println!("switch decision closed {took:?} after the switch");
                let topology = service.topology().expect("published");
                // The event sink's task gets the last lines after the switch.
                wait_for("the event sink saw the switch's snapshot", || {
                    capture.spans("consumer_call").iter().any(|s| {
                        s.field("seq_no") == Some(&topology.seq_no().to_string())
                    })
                })
                .await;

                // Healed: the stream recovers, and the service fails back
                // after the cooldown.
                backend_a.heal();
                let took = wait_active(&service, "a").await;
                println!("healed -> fail-back to a: {took:?}");

                // Silent past the no-response timeout: the stream is closed,
                // and opened again after the backoff, a reconnect too.
                let recovered = a_reconnects(&capture);
                backend_a.hang();
                let took = wait_for("a's stream opened again", || {
                    capture.spans("provider_stream").iter().any(|s| {
                        s.field("provider") == Some("a")
                            && s.field("reconnects").and_then(|n| n.parse::<u64>().ok())
                                > Some(recovered)
                    })
                })
                .await;
                println!("hung -> a's stream opened again: {took:?}");
                service.shutdown().await.expect("shutdown");

                let streams = capture.spans("provider_stream");
                for id in ["a", "b"] {
                    let stream = streams
                        .iter()
                        .find(|s| s.field("provider") == Some(id))
                        .unwrap_or_else(|| panic!("no stream span of {id}: {streams:?}"));
                    assert_eq!(stream.field("kind"), Some("in_memory"), "{stream:?}");
                    assert!(stream.field("generation").is_some(), "{stream:?}");
                    assert!(stream.field("reconnects").is_some(), "{stream:?}");
                }
                assert!(
                    streams.iter().all(|s| s.parent.is_none()),
                    "a stream span has a parent: {streams:?}"
                );

                let decisions = capture.spans("failover_decision");
                let switch = decisions
                    .iter()
                    .find(|s| s.field("outcome") == Some("switched"))
                    .unwrap_or_else(|| panic!("no switch decision: {decisions:?}"));
                assert_eq!(switch.level, Level::INFO, "{switch:?}");
                assert_eq!(switch.field("from"), Some("a"), "{switch:?}");
                assert_eq!(switch.field("to"), Some("b"), "{switch:?}");
                assert_eq!(switch.field("active"), Some("b"), "{switch:?}");
                assert_eq!(switch.field("epoch"), Some("2"), "{switch:?}");
                assert!(switch.field("reason").is_some(), "{switch:?}");
                let providers = switch.field("providers").unwrap_or_default();
                assert!(
                    providers.contains("a=unreachable") && providers.contains("b=healthy"),
                    "{switch:?}"
                );
                assert!(
                    switch.field("decisions").is_some_and(|d| d.contains("switch")),
                    "{switch:?}"
                );
                assert!(
                    decisions
                        .iter()
                        .any(|s| s.level == Level::DEBUG && s.field("outcome") == Some("kept")),
                    "no routine decision at debug: {decisions:?}"
                );

                let publications = capture.spans("publication");
                let last = publications
                    .iter()
                    .find(|s| s.field("seq_no") == Some(&topology.seq_no().to_string()))
                    .unwrap_or_else(|| panic!("no span of the switch's snapshot: {publications:?}"));
                assert_eq!(
                    last.field("run_id"),
                    Some(service.run_id().to_string().as_str()),
                    "{last:?}"
                );
                assert_eq!(last.field("provider"), Some("b"), "{last:?}");
                assert_eq!(last.parent, Some("failover_decision"), "{last:?}");
                assert_eq!(last.field("epoch"), Some("2"), "{last:?}");
                assert_eq!(last.field("members"), Some("2"), "{last:?}");
                assert_eq!(
                    last.field("hash"),
                    Some(format!("{:016x}", topology.hash()).as_str()),
                    "{last:?}"
                );
                assert!(
                    publications.iter().any(|s| s.field("epoch") == Some("1")),
                    "no span of the first activation: {publications:?}"
                );

                let fail_back = decisions
                    .iter()
                    .find(|s| s.field("outcome") == Some("switched") && s.field("to") == Some("a"))
                    .unwrap_or_else(|| panic!("no fail-back decision: {decisions:?}"));
                assert_eq!(fail_back.level, Level::INFO, "{fail_back:?}");
                assert_eq!(fail_back.field("reason"), Some("priority_restored"), "{fail_back:?}");
                assert_eq!(fail_back.field("epoch"), Some("3"), "{fail_back:?}");
                let a_streams: Vec<_> = streams
                    .iter()
                    .filter(|s| s.field("provider") == Some("a"))
                    .collect();
                assert!(a_streams.len() >= 2, "a's stream not opened again: {a_streams:?}");
                let generation = |s: &SpanSeen| s.field("generation").and_then(|g| g.parse::<u64>().ok());
                assert!(
                    generation(a_streams[0]) < generation(a_streams[1]),
                    "{a_streams:?}"
                );

                let bridge_calls = capture.spans("bridge_call");
                assert!(
                    bridge_calls.iter().any(|s| {
                        s.field("consumer") == Some("placement-probe")
                            && s.field("seq_no") == Some(&topology.seq_no().to_string())
                            && s.field("called") == Some("true")
                    }),
                    "no bridge call for the switch's snapshot: {bridge_calls:?}"
                );
                // A placement bridge is not called for remote topology lines.
                assert!(
                    bridge_calls.iter().any(|s| s.field("called") == Some("false")),
                    "{bridge_calls:?}"
                );
                let consumer_calls = capture.spans("consumer_call");
                assert!(
                    consumer_calls
                        .iter()
                        .all(|s| s.field("consumer") == Some("event-sink-0")),
                    "{consumer_calls:?}"
                );
                println!(
                    "spans: {} stream, {} decision, {} publication, {} bridge call, {} consumer call",
                    streams.len(),
                    decisions.len(),
                    publications.len(),
                    bridge_calls.len(),
                    consumer_calls.len()
                );
            });
        },
    );
}

#[test]
fn info_stays_quiet_on_a_healthy_steady_cluster() {
    in_own_process(
        "info_stays_quiet_on_a_healthy_steady_cluster",
        LevelFilter::INFO,
        |capture| {
            runtime().block_on(async {
                // Tight, with room for a loaded machine: a probe answered
                // late would be a real "health changed" at info.
                let mut policy = FailoverPolicy::tight();
                policy.timeout = Duration::from_secs(3);
                policy.liveness_timeout = Duration::from_secs(1);
                let (service, _backend_a) = start_with(policy);
                wait_active(&service, "a").await;
                let took = wait_all_healthy(&service).await;
                println!("start-up: every provider healthy after {took:?} more");
                // Start-up said something: the capture is live.
                assert!(
                    !capture.seen().events.is_empty(),
                    "no start-up event captured at info"
                );
                let (spans, events) = {
                    let seen = capture.seen();
                    (seen.spans.len(), seen.events.len())
                };
                // Heartbeats every third of the 3 s timeout, liveness
                // probes every 500 ms: several rounds of each.
                tokio::time::sleep(STEADY).await;
                // The cluster was live meanwhile, not silent.
                for view in service.providers().await.expect("providers") {
                    let age = view.last_event_age.unwrap_or(Duration::MAX);
                    assert!(
                        age < Duration::from_secs(2),
                        "{}: no event for {age:?}",
                        view.descriptor.id
                    );
                }
                let (new_spans, new_events) = {
                    let seen = capture.seen();
                    (seen.spans[spans..].to_vec(), seen.events[events..].to_vec())
                };
                service.shutdown().await.expect("shutdown");
                println!(
                    "over {STEADY:?} of steady state: {} spans and {} events at info or above",
                    new_spans.len(),
                    new_events.len()
                );
                assert!(new_spans.is_empty(), "spans at info: {new_spans:?}");
                let events: Vec<String> = new_events
                    .iter()
                    .map(|e| format!("{} {:?}", e.level, e.fields))
                    .collect();
                assert!(events.is_empty(), "events at info: {events:?}");
            });
        },
    );
}
