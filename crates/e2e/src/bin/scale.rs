//! Scale harness: 100,000 members through the watch hub with 3 bridges and
//! 8 event subscribers, measured from the process's resident set
//! (`/proc/self/status`: `VmRSS`, peak `VmHWM`):
//!
//! 1. one snapshot of 100,000 members (two strings, a port, no labels), by
//!    the RSS it adds when built;
//! 2. the hub publishing it (from a 1-member snapshot: 99,999 joins) to
//!    every bridge and to 8 subscribers that drain every line and keep the
//!    latest snapshot: the time until all hold it, and the RSS added per
//!    member held (the snapshot itself included);
//! 3. 64 more subscribers, each drained to the latest snapshot: the RSS
//!    added per subscriber;
//! 4. the peak RSS above the start, against the size of one snapshot.
//!
//! Targets: per-subscriber memory for a 100k snapshot < 1 KiB; ≤ 160 B per
//! member of a snapshot. The hub holds more per member right after a
//! publication that adds every member: each `join` line carries its own
//! copy of the member, and the event history (bounded: 1,024 publications,
//! 262,144 members) keeps them; that figure is printed beside it. RSS figures are page-granular and include allocator
//! slack; the counts are large enough (100,000 members, 64 subscribers)
//! that a page is ≤ 64 B per subscriber.
//!
//! Usage: `scale [--members N] [--quick]` (`--quick` is the same run: it
//! takes a few seconds).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use provisioning_e2e::{
    ResultRow, SignalBridges, fmt_bytes, fmt_duration, load_average, peak_rss_bytes, rss_bytes,
};
use provisioning_provider_api::{ClusterNode, ProviderId, ProviderSnapshot};
use provisioning_watch_hub::{HubConfig, ProviderWatchHub, PublishOutcome};

const SUBSCRIBERS: usize = 8;
const EXTRA_SUBSCRIBERS: usize = 64;

fn node(j: usize) -> ClusterNode {
    let host = format!("10.{}.{}.{}", j >> 16, (j >> 8) & 255, j & 255);
    ClusterNode::new(format!("node-{j:07}"), host, 4000)
}

fn rss() -> f64 {
    rss_bytes().expect("/proc/self/status readable (Linux)") as f64
}

/// Lets background threads (notifier, reclaimer) finish and the RSS
/// settle before a reading.
fn settle() -> f64 {
    std::thread::sleep(Duration::from_millis(300));
    rss()
}

/// What one subscriber task has seen.
#[derive(Default)]
struct Seen {
    /// Members of the latest snapshot line.
    members: AtomicUsize,
    /// `remote_topology` lines.
    topology: AtomicUsize,
}

fn main() {
    let mut members = 100_000usize;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--members" => {
                members = it
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--members takes a number")
            }
            "--quick" => {}
            other => panic!("unknown argument {other:?}; usage: scale [--members N] [--quick]"),
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let rss_start = settle();

    let mut hub = ProviderWatchHub::new(HubConfig::new()).expect("hub");
    let handle = hub.handle();
    let bridges = SignalBridges::new();
    let [p, q, r] = bridges.bridges();
    handle.attach_consumers(p, q, r).expect("attach bridges");
    let mut seen = Vec::new();
    for i in 0..SUBSCRIBERS {
        let mut events = handle
            .subscribe_events(format!("subscriber-{i}"))
            .expect("subscribe");
        let s = Arc::new(Seen::default());
        seen.push(s.clone());
        runtime.spawn(async move {
            let mut latest = None;
            while let Some(line) = events.recv().await {
                if let Some(snapshot) = line.as_snapshot() {
                    s.members.store(snapshot.members().len(), Ordering::Release);
                    latest = Some(line.clone());
                } else if line.type_name() == "remote_topology" {
                    s.topology.fetch_add(1, Ordering::AcqRel);
                }
            }
            drop(latest);
        });
    }
    let provider = ProviderId::new("scale").expect("id");
    let seed = ProviderSnapshot::new(vec![node(0)], vec![]).expect("snapshot");
    let seed_hash = seed.hash();
    hub.activate(provider.clone(), seed, Instant::now())
        .expect("activate");
    assert!(
        bridges
            .wait_all(seed_hash, Duration::from_secs(10))
            .is_some(),
        "the seed snapshot never reached the bridges"
    );
    let rss_before = settle();

    // One snapshot of `members` members.
    let snapshot =
        ProviderSnapshot::new((0..members).map(node).collect(), vec![]).expect("snapshot");
    let hash = snapshot.hash();
    let rss_snapshot = settle();
    let snapshot_bytes = rss_snapshot - rss_before;

    // Through the hub to every consumer.
    let t0 = Instant::now();
    let outcome = hub.publish_active(provider, snapshot, Instant::now());
    let publish = t0.elapsed();
    assert!(
        matches!(outcome, PublishOutcome::Published { .. }),
        "{outcome:?}"
    );
    let bridges_at = bridges
        .wait_all(hash, Duration::from_secs(60))
        .expect("every bridge holds the big snapshot");
    let joins = members - 1;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !seen.iter().all(|s| {
        s.members.load(Ordering::Acquire) == members && s.topology.load(Ordering::Acquire) >= joins
    }) {
        assert!(Instant::now() < deadline, "subscribers never drained");
        std::thread::sleep(Duration::from_millis(1));
    }
    let drained = t0.elapsed();
    let rss_held = settle();
    let per_member = (rss_held - rss_before) / members as f64;
    let per_member_snapshot = snapshot_bytes / members as f64;

    // More subscribers, each drained to the latest snapshot and keeping it.
    let mut extra = Vec::new();
    for i in 0..EXTRA_SUBSCRIBERS {
        let mut events = handle
            .subscribe_events(format!("extra-{i}"))
            .expect("subscribe");
        let mut latest = None;
        while let Ok(Some(line)) = events.try_next() {
            if line.as_snapshot().is_some() {
                latest = Some(line);
            }
        }
        extra.push((events, latest));
    }
    let rss_extra = settle();
    let per_subscriber = (rss_extra - rss_held) / EXTRA_SUBSCRIBERS as f64;
    let peak = peak_rss_bytes().expect("/proc/self/status readable") as f64 - rss_start;

    println!(
        "scale: {members} members, {SUBSCRIBERS} subscribers + 3 bridges; RSS at start {}, load {}",
        fmt_bytes(rss_start),
        load_average()
    );
    println!(
        "scale: publish_active {} · bridges hold it after {} · {SUBSCRIBERS} subscribers drained ({joins} joins each) after {}",
        fmt_duration(publish),
        fmt_duration(bridges_at.saturating_duration_since(t0)),
        fmt_duration(drained)
    );
    println!(
        "scale: one snapshot {} ({:.0} B/member); held by the hub {} ({:.0} B/member); +{EXTRA_SUBSCRIBERS} subscribers {}; peak above start {}",
        fmt_bytes(snapshot_bytes),
        per_member_snapshot,
        fmt_bytes(rss_held - rss_before),
        per_member,
        fmt_bytes(rss_extra - rss_held),
        fmt_bytes(peak)
    );
    let rows = [
        ResultRow {
            figure: format!(
                "scale: {members} members to 3 bridges + {SUBSCRIBERS} subscribers, all drained"
            ),
            value: fmt_duration(drained),
            baseline: format!("publish_active {}", fmt_duration(publish)),
            ratio: "—".into(),
            target: "—".into(),
            verdict: "—".into(),
        },
        ResultRow {
            figure: "scale: peak RSS above start".into(),
            value: fmt_bytes(peak),
            baseline: format!("one snapshot {}", fmt_bytes(snapshot_bytes)),
            ratio: format!("{:.1} snapshots", peak / snapshot_bytes.max(1.0)),
            target: "—".into(),
            verdict: "—".into(),
        },
        ResultRow {
            figure: "scale: memory per additional subscriber (100k snapshot)".into(),
            value: fmt_bytes(per_subscriber),
            baseline: format!("one snapshot {}", fmt_bytes(snapshot_bytes)),
            ratio: format!("{:.5}", per_subscriber / snapshot_bytes.max(1.0)),
            target: "< 1 KiB".into(),
            verdict: if per_subscriber < 1024.0 {
                "met".into()
            } else {
                format!("MISSED ({})", fmt_bytes(per_subscriber))
            },
        },
        ResultRow {
            figure: "scale: memory per member of a 100k snapshot".into(),
            value: format!("{per_member_snapshot:.0} B"),
            baseline: "floor 112–144 B".into(),
            ratio: "—".into(),
            target: "≤ 160 B".into(),
            verdict: if per_member_snapshot <= 160.0 {
                "met".into()
            } else {
                format!("MISSED ({per_member_snapshot:.0} B)")
            },
        },
        ResultRow {
            figure: "scale: memory held by the hub per member after publishing 100k joins".into(),
            value: format!("{per_member:.0} B"),
            baseline: format!("snapshot {per_member_snapshot:.0} B/member"),
            ratio: format!("{:.2}×", per_member / per_member_snapshot.max(1.0)),
            target: "—".into(),
            verdict: "— (the snapshot plus its join lines, one member copy each, kept by the bounded history)".into(),
        },
    ];
    drop(extra);
    hub.shutdown(Duration::from_secs(10)).expect("hub shutdown");
    runtime.shutdown_timeout(Duration::from_secs(5));
    for r in &rows {
        r.print();
    }
}
