//! What a provider's stream looks like: live membership changes, an
//! unchanged view heartbeating, and a refused backend reported on the retry
//! schedule of ARCHITECTURE.md "Failover rules" 2, then recovery.
//!
//! `cargo xtask demo` runs this until the operator CLI's `provisioning demo`
//! (failover across providers) replaces it.

use std::time::Duration;

use futures::StreamExt;
use provisioning_backend_memory::InMemoryProvider;
use provisioning_provider_api::{
    ClusterNode, ClusterProvider, FaultKind, ProviderEvent, ProviderFault, ProviderId,
    ProviderSnapshot, StreamOptions, diff, format_hash,
};
use tokio::time::Instant;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let provider = InMemoryProvider::new(ProviderId::new("local")?, 0);
    let handle = provider.handle();
    handle.add(ClusterNode::new("n1", "127.0.0.1", 4000))?;
    handle.add(ClusterNode::new("n2", "127.0.0.1", 4001))?;

    let interval = Duration::from_millis(300);
    let mut stream = provider.stream(StreamOptions::new(interval));
    let started = Instant::now();

    // Script the backend while the stream is watched.
    let script = tokio::spawn(async move {
        let step = Duration::from_millis(400);
        tokio::time::sleep(step).await;
        println!("-- backend: n3 joins");
        let _ = handle.add(ClusterNode::new("n3", "127.0.0.1", 4002).with_label("zone", "b"));
        tokio::time::sleep(step).await;
        println!("-- backend: n1 moves to port 5000, n2 is blocked");
        let _ = handle.change(ClusterNode::new("n1", "127.0.0.1", 5000));
        handle.block("n2");
        tokio::time::sleep(step * 2).await;
        println!("-- backend: connections refused");
        handle.fail(ProviderFault::retryable(
            FaultKind::BackendUnavailable,
            "connection refused",
        ));
        tokio::time::sleep(step * 2).await;
        println!("-- backend: healed");
        handle.heal();
        tokio::time::sleep(step * 2).await;
    });

    let mut previous = ProviderSnapshot::empty();
    while !script.is_finished() {
        let Ok(Some(event)) = tokio::time::timeout(Duration::from_secs(5), stream.next()).await
        else {
            break;
        };
        let at = started.elapsed().as_millis();
        match event {
            ProviderEvent::Snapshot(s) => {
                println!(
                    "{at:>5} ms  snapshot {} with {} members, blocked {:?}",
                    format_hash(s.hash()),
                    s.len(),
                    s.blocked()
                );
                for e in diff(&previous, &s) {
                    println!("{at:>5} ms    {} {}", e.kind(), e.node_id());
                }
                previous = s;
            }
            ProviderEvent::Heartbeat(_) => println!("{at:>5} ms  heartbeat (view unchanged)"),
            ProviderEvent::Fault(f) => println!("{at:>5} ms  fault {f}"),
            ProviderEvent::Terminated(t) => println!("{at:>5} ms  terminated {t:?}"),
        }
    }
    Ok(())
}
