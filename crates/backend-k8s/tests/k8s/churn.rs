//! 5,000 pods listed, then churned at 1 % per second through the fake.
//!
//! The issue asks for a minute of churn; the default here is 10 s so the
//! crate's test run stays short on 2 cores. `K8S_CHURN_SECS=60` runs the
//! full minute (figures in the test output, `--nocapture`).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use provisioning_provider_api::{ProviderEvent, ProviderSnapshot};
use provisioning_testkit::fake_kube::{FakeKube, KubeDriverMode, ObjectKind, RequestKind, pod};
use serde_json::{Value, json};
use tokio::time::{Instant, sleep_until};

use crate::support::{NS, driver, fake, open, provider};

const PODS: usize = 5_000;

/// A small deterministic generator (the run must be reproducible).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) as usize) % bound.max(1)
    }
}

fn pod_json(name: &str, n: usize, generation: usize, ready: bool) -> Value {
    let ip = format!("10.{}.{}.{}", generation % 200, n / 250, n % 250 + 1);
    pod(name, ip)
        .label("app", "actors")
        .port("remoting", 4000)
        .ready(ready)
        .build()
}

fn is_ready(object: &Value) -> bool {
    object
        .pointer("/status/conditions/0/status")
        .is_some_and(|s| s == "True")
}

/// The ready pods: the members the provider must show.
fn truth(fake: &FakeKube) -> BTreeSet<String> {
    fake.names(ObjectKind::Pod, NS)
        .into_iter()
        .filter(|name| {
            fake.get(ObjectKind::Pod, NS, name)
                .is_some_and(|p| is_ready(&p))
        })
        .collect()
}

fn ids(snapshot: &ProviderSnapshot) -> BTreeSet<String> {
    snapshot
        .members()
        .iter()
        .map(|m| m.id.to_string())
        .collect()
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// Churns for `secs` seconds in 10 ticks a second; returns the changes made.
async fn churn(fake: Arc<FakeKube>, secs: u64) -> usize {
    let per_tick = PODS / 100 / 10;
    let mut rng = Lcg(42);
    let mut next_name = PODS;
    let mut changes = 0;
    let started = Instant::now();
    for tick in 0..secs * 10 {
        fake.batch(|b| {
            let names = b.names(ObjectKind::Pod, NS);
            for _ in 0..per_tick {
                let victim = &names[rng.next(names.len())];
                let n = rng.next(PODS);
                let Some(current) = b.get(ObjectKind::Pod, NS, victim) else {
                    continue;
                };
                match rng.next(3) {
                    // Replaced by a new pod (a rollout).
                    0 => {
                        b.delete(ObjectKind::Pod, NS, victim);
                        let name = format!("pod-{next_name:05}");
                        next_name += 1;
                        b.upsert(ObjectKind::Pod, NS, pod_json(&name, n, 1, true));
                    }
                    // Readiness flips.
                    1 => {
                        let ready = !is_ready(&current);
                        b.upsert(ObjectKind::Pod, NS, pod_json(victim, n, 2, ready));
                    }
                    // Restarted with a new IP.
                    _ => {
                        let generation = 3 + tick as usize;
                        b.upsert(ObjectKind::Pod, NS, pod_json(victim, n, generation, true));
                    }
                }
                changes += 1;
            }
        });
        sleep_until(started + Duration::from_millis(100 * (tick + 1))).await;
    }
    changes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_pods_listed_then_churned() {
    let churn_secs: u64 = std::env::var("K8S_CHURN_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let fake = fake().await;
    let provider = provider(&driver(&fake, KubeDriverMode::Pods), json!({}));
    fake.batch(|b| {
        for n in 0..PODS {
            b.upsert(
                ObjectKind::Pod,
                NS,
                pod_json(&format!("pod-{n:05}"), n, 0, true),
            );
        }
    });
    let rss_before = status_kib("VmRSS:");
    let started = Instant::now();
    let mut stream = open(&provider);
    let first = match tokio::time::timeout(Duration::from_secs(30), stream.next()).await {
        Ok(Some(ProviderEvent::Snapshot(s))) => s,
        other => panic!("initial list: {other:?}"),
    };
    let listed_in = started.elapsed();
    assert_eq!(first.len(), PODS, "the first snapshot is the whole list");
    let rss_listed = status_kib("VmRSS:");

    let mut producer = tokio::spawn(churn(fake.clone(), churn_secs));
    let mut snapshots = 0usize;
    let mut faults = Vec::new();
    let mut latest = first;
    let changes = loop {
        tokio::select! {
            done = &mut producer => break done.expect("churn task"),
            event = stream.next() => match event {
                Some(ProviderEvent::Snapshot(s)) => {
                    snapshots += 1;
                    latest = s;
                }
                Some(ProviderEvent::Heartbeat(_)) => {}
                // A loaded test machine may time a request out; the view
                // must still converge, with at most one relist.
                Some(ProviderEvent::Fault(f)) if !f.permanent => faults.push(f.to_string()),
                other => panic!("during churn: {other:?}"),
            },
        }
    };
    let want = truth(&fake);
    let settle_started = Instant::now();
    while ids(&latest) != want {
        match tokio::time::timeout(Duration::from_secs(10), stream.next()).await {
            Ok(Some(ProviderEvent::Snapshot(s))) => {
                snapshots += 1;
                latest = s;
            }
            Ok(Some(ProviderEvent::Heartbeat(_))) => {}
            Ok(Some(ProviderEvent::Fault(f))) if !f.permanent => faults.push(f.to_string()),
            other => panic!("settling: {other:?}; want {} members", want.len()),
        }
    }
    let settled_in = settle_started.elapsed();
    let lists = fake.count(RequestKind::List(ObjectKind::Pod));
    let pages = fake.count(RequestKind::ListPage(ObjectKind::Pod));
    let watches = fake.count(RequestKind::Watch(ObjectKind::Pod));
    println!(
        "churn: {PODS} pods listed in {listed_in:?}; {changes} changes over {churn_secs} s -> \
         {snapshots} snapshots; final view of {} members equals the truth {settled_in:?} after \
         the last change; {lists} list call(s) (+{pages} continue pages), {watches} watch \
         request(s), {} retryable fault(s) {faults:?}; process RSS {rss_before} KiB before the stream, {rss_listed} KiB after the \
         list, {} KiB at the end, peak {} KiB (fake and its history included)",
        want.len(),
        faults.len(),
        status_kib("VmRSS:"),
        status_kib("VmHWM:"),
    );
    assert!(lists <= 2, "{lists} list calls");
    assert!(changes >= PODS / 100 * churn_secs as usize - 1);
    assert!(
        settled_in < Duration::from_secs(5),
        "settled in {settled_in:?}"
    );
}
