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

fn links() -> String {
    let out = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .expect("ip link show");
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
    // What a run killed mid-way leaves: a namespace with a process still
    // running in it, a bridge and a veth pair, all named after a process
    // that is gone.
    let pid = dead_pid();
    let ns = format!("{NAME_PREFIX}{pid}x0h0");
    let bridge = format!("{NAME_PREFIX}{pid}x0bp");
    let veth = format!("{NAME_PREFIX}{pid}x0p0");
    let ip_ok = |args: &[&str]| {
        let status = Command::new("ip").args(args).status().expect("ip");
        assert!(status.success(), "ip {args:?}");
    };
    ip_ok(&["netns", "add", &ns]);
    ip_ok(&["link", "add", &bridge, "type", "bridge"]);
    ip_ok(&[
        "link",
        "add",
        &veth,
        "type",
        "veth",
        "peer",
        "name",
        "cpnhtestq",
    ]);
    let mut inside = Command::new("ip")
        .args(["netns", "exec", &ns, "sleep", "60"])
        .spawn()
        .expect("a process in the stale namespace");
    std::thread::sleep(Duration::from_millis(200));
    assert!(namespaces().contains(&ns));

    let removed = sweep().expect("sweep");
    assert!(removed >= 3, "swept {removed}");
    assert!(!namespaces().contains(&ns), "stale namespace removed");
    for link in [&bridge, &veth] {
        assert!(
            !links().contains(link.as_str()),
            "stale link {link} removed"
        );
    }
    let started = Instant::now();
    while inside.try_wait().expect("wait").is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the process in the stale namespace was killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

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
    let mine = hosts.namespace(0);
    drop(hosts);
    assert!(!namespaces().contains(&mine), "namespaces removed on drop");
    assert!(
        !links().contains(&format!("{NAME_PREFIX}{}x", std::process::id())),
        "links removed on drop"
    );
}
