//! The network-hosts helper itself: isolation is a blackhole, and a killed
//! run's leftovers are swept by the next one.

use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use provisioning_testkit::net_hosts::{NAME_PREFIX, Net, NetHosts, sweep};

use super::support::serial;

fn namespaces() -> String {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The process id of a process that has ended.
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().expect("spawn true");
    let pid = child.id();
    child.wait().expect("wait");
    pid
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leftovers_of_a_killed_run_are_swept_and_links_cut_silently() {
    let _serial = serial().await;
    // What a run killed mid-way leaves: a namespace and a bridge named after
    // a process that is gone.
    let pid = dead_pid();
    let ns = format!("{NAME_PREFIX}{pid}h0");
    let bridge = format!("{NAME_PREFIX}{pid}bp");
    assert!(
        Command::new("ip")
            .args(["netns", "add", &ns])
            .status()
            .expect("ip")
            .success()
    );
    assert!(
        Command::new("ip")
            .args(["link", "add", &bridge, "type", "bridge"])
            .status()
            .expect("ip")
            .success()
    );
    assert!(namespaces().contains(&ns));

    let removed = sweep().expect("sweep");
    assert!(removed >= 2, "swept {removed}");
    assert!(!namespaces().contains(&ns), "stale namespace removed");

    let hosts = NetHosts::create(2).expect("network hosts (root and iproute2 needed)");
    // Host 1 is reachable: a closed port answers with a refusal (RST).
    let addr = SocketAddr::from((hosts.client_addr(1), 7000));
    let refused = TcpStream::connect_timeout(&addr, Duration::from_secs(2));
    assert_eq!(
        refused.as_ref().err().map(std::io::Error::kind),
        Some(std::io::ErrorKind::ConnectionRefused),
        "a closed port on a reachable host"
    );

    // Cut: a connection attempt is neither accepted nor refused.
    hosts.isolate(1, Net::Client).expect("isolate");
    let attempt = Instant::now();
    let outcome = TcpStream::connect_timeout(&addr, Duration::from_millis(700));
    let kind = outcome.as_ref().err().map(std::io::Error::kind);
    println!(
        "connect to an isolated host: {kind:?} after {:?}",
        attempt.elapsed()
    );
    assert_eq!(
        kind,
        Some(std::io::ErrorKind::TimedOut),
        "blackhole, not a refusal"
    );

    hosts.heal(1).expect("heal");
    let healed = TcpStream::connect_timeout(&addr, Duration::from_secs(2));
    assert_eq!(
        healed.as_ref().err().map(std::io::Error::kind),
        Some(std::io::ErrorKind::ConnectionRefused),
        "reachable again after heal"
    );
    drop(hosts);
    assert!(
        !namespaces().contains(&format!("{NAME_PREFIX}{}", std::process::id())),
        "namespaces removed on drop"
    );
}
