//! An idle service blocks and heartbeats: neither polling nor silent.

use std::time::Duration;

use provisioning_provider_api::{ClusterProvider, ProviderEvent, StreamOptions};
use tokio::time::Instant;

use crate::{SERVICE, next, setup};

#[tokio::test]
async fn idle_service_with_wait_2s_over_20s_blocks_and_heartbeats() {
    // Quiet period 2 s × 17/16 = 2.125 s, inside a 5 s heartbeat interval.
    let (consul, provider) = setup(r#""wait":"2s""#).await;
    assert_eq!(provider.quiet_period(), Duration::from_millis(2125));
    let interval = Duration::from_secs(5);
    let mut stream = provider.stream(StreamOptions::new(interval));
    consul.clear_requests();
    let start = Instant::now();
    let window = Duration::from_secs(20);
    let mut heartbeats = 0;
    let mut last_liveness = start;
    let mut longest_gap = Duration::ZERO;
    while start.elapsed() < window {
        match next(&mut stream, interval).await {
            ProviderEvent::Snapshot(s) => {
                assert_eq!(s.len(), 3);
                assert!(heartbeats == 0, "a snapshot on an idle service");
            }
            ProviderEvent::Heartbeat(_) => heartbeats += 1,
            other => panic!("{other:?}"),
        }
        longest_gap = longest_gap.max(last_liveness.elapsed());
        last_liveness = Instant::now();
    }
    let requests: Vec<_> = consul
        .requests()
        .into_iter()
        .filter(|r| r.is_health(SERVICE) && r.received < start + window)
        .collect();
    let blocking = requests.iter().filter(|r| r.index().is_some()).count();
    println!(
        "idle 20 s, wait=2s: {} requests ({blocking} blocking), {heartbeats} heartbeats, longest gap {longest_gap:?}",
        requests.len()
    );
    assert!(
        (6..=20).contains(&requests.len()),
        "{} requests in 20 s",
        requests.len()
    );
    assert!(blocking >= requests.len() - 1, "all but the first block");
    assert!(
        requests
            .iter()
            .filter(|r| r.index().is_some())
            .all(|r| r.param("wait") == Some("2s"))
    );
    assert!(heartbeats >= 6, "{heartbeats}");
    assert!(longest_gap < interval, "{longest_gap:?}");
}
