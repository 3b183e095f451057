//! A real etcd that cancels every watch as compacted: relists are paced.
//!
//! The provider reaches etcd through a loopback proxy that delays its
//! requests by [`DELAY`], while a writer puts a key outside the prefix and
//! compacts up to it every few milliseconds. Each watch then starts at a
//! revision that is already behind the head when etcd sees it, and etcd
//! cancels it as compacted at its next sync of unsynced watchers (every
//! 100 ms): every watch the provider opens ends in a resync.

use std::time::Duration;

use etcd_client::CompactionOptions;
use provisioning_provider_api::*;
use provisioning_testkit::etcd_cluster::EtcdCluster;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, sleep_until};

use crate::support::*;

/// How long the proxy holds each chunk the provider sends.
const DELAY: Duration = Duration::from_millis(25);
/// How long relists are counted once the loop runs.
const WINDOW: Duration = Duration::from_secs(10);
/// The stream's heartbeat interval: its liveness tick is half of it, and
/// the relist backoff stays below the tick.
const HEARTBEAT: Duration = Duration::from_secs(3);

/// How many relists the pacing (the stream kit's `ResyncPacer`) allows in `window` when
/// every watch is cancelled before it delivers: the first at once, then
/// after 100 ms, doubling up to the cap (half the heartbeat interval).
fn paced_relists(window: Duration) -> usize {
    let cap = HEARTBEAT / 2;
    let (mut at, mut backoff, mut n) = (Duration::ZERO, Duration::from_millis(100), 1);
    loop {
        at += backoff;
        if at > window {
            return n;
        }
        n += 1;
        backoff = (backoff * 2).min(cap);
    }
}

/// Forwards `127.0.0.1:<port>` to `upstream`, holding every chunk from the
/// client for [`DELAY`] (in order); answers pass at once.
async fn delaying_proxy(upstream: std::net::SocketAddr) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let addr = listener.local_addr().expect("proxy addr");
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    return;
                };
                let (mut client_rx, mut client_tx) = client.into_split();
                let (mut server_rx, mut server_tx) = server.into_split();
                let (chunks, mut held) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
                tokio::spawn(async move {
                    let mut buf = vec![0; 64 * 1024];
                    while let Ok(n @ 1..) = client_rx.read(&mut buf).await {
                        if chunks
                            .send((Instant::now() + DELAY, buf[..n].to_vec()))
                            .is_err()
                        {
                            break;
                        }
                    }
                });
                tokio::spawn(async move {
                    while let Some((due, chunk)) = held.recv().await {
                        sleep_until(due).await;
                        if server_tx.write_all(&chunk).await.is_err() {
                            break;
                        }
                    }
                });
                let _ = tokio::io::copy(&mut server_rx, &mut client_tx).await;
            });
        }
    });
    format!("http://{addr}")
}

/// etcd's own count of started gRPC calls of `method` (`Range`, `Watch`),
/// from its `/metrics` on the client port.
async fn started_calls(port: u16, method: &str) -> u64 {
    let mut conn = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("metrics connection");
    conn.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .expect("metrics request");
    let mut body = String::new();
    conn.read_to_string(&mut body)
        .await
        .expect("metrics answer");
    let needle = format!("grpc_method=\"{method}\"");
    body.lines()
        .filter(|l| l.starts_with("grpc_server_started_total{") && l.contains(&needle))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

fn is_resync(event: &ProviderEvent) -> bool {
    matches!(event, ProviderEvent::Fault(f) if f.is_resync())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_cancels_every_watch_as_compacted_gets_paced_relists() {
    let _serial = serial().await;
    let cluster = EtcdCluster::start(1).await.expect("etcd");
    let endpoint = cluster.endpoint(0);
    let port: u16 = endpoint
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port of the endpoint");
    let mut kv = client(&cluster.endpoints()).await;
    kv.put(
        format!("{PREFIX}n1"),
        member_json("n1", "10.0.0.1", 4001),
        None,
    )
    .await
    .expect("put n1");

    // The compaction loop, outside the prefix: the provider's view never
    // changes, only the revisions move.
    let mut writer = client(&cluster.endpoints()).await;
    let churn = tokio::spawn(async move {
        loop {
            let put = writer.put("/other/tick", "x", None).await.expect("put");
            let revision = put.header().map(|h| h.revision()).unwrap_or_default();
            writer
                .compact(revision, Some(CompactionOptions::new()))
                .await
                .expect("compact");
            sleep(Duration::from_millis(5)).await;
        }
    });

    let proxy = delaying_proxy(([127, 0, 0, 1], port).into()).await;
    let provider = provider(&[proxy]);
    let recorder = Recorder::start(provider.stream(StreamOptions::new(HEARTBEAT)));
    let (first, _) = recorder
        .wait_for(0, Duration::from_secs(10), is_resync)
        .await
        .expect("a watch cancelled as compacted");

    let ranges = started_calls(port, "Range").await;
    let watches = started_calls(port, "Watch").await;
    let started = Instant::now();
    sleep(WINDOW).await;
    let took = started.elapsed();
    let ranges = started_calls(port, "Range").await - ranges;
    let watches = started_calls(port, "Watch").await - watches;
    churn.abort();

    let events = recorder.all();
    let in_window: Vec<&Seen> = events
        .iter()
        .filter(|s| s.at >= started && s.at < started + took)
        .collect();
    let relists = in_window.iter().filter(|s| is_resync(&s.event)).count();
    let other_faults: Vec<String> = in_window
        .iter()
        .filter_map(|s| match &s.event {
            ProviderEvent::Fault(f) if !f.is_resync() => Some(f.to_string()),
            _ => None,
        })
        .collect();
    let secs = took.as_secs_f64();
    println!(
        "compaction loop: {relists} relists in {secs:.1} s ({:.1}/s); etcd saw {ranges} Range \
         and {watches} Watch calls ({:.1} requests/s); first resync at event {first}; other \
         faults: {other_faults:?}",
        relists as f64 / secs,
        (ranges + watches) as f64 / secs,
    );
    // The scenario holds: watches keep being cancelled as compacted.
    assert!(
        relists >= 3,
        "only {relists} resyncs: the scenario did not hold"
    );
    // The schedule's count with half again as margin (each relist also
    // waits for etcd to cancel its watch, so the real count is lower), and
    // per relist one list and one watch (the watches die before their
    // first liveness tick), plus slack for the calls in flight at the edges.
    let bound = paced_relists(took) * 3 / 2;
    assert!(
        relists <= bound,
        "{relists} relists in {took:?}, at most {bound}"
    );
    let calls = ranges + watches;
    assert!(
        calls <= 2 * bound as u64 + 4,
        "{ranges} Range + {watches} Watch calls in {took:?}, at most {}",
        2 * bound + 4
    );
}
