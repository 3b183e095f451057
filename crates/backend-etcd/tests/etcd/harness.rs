//! The loopback harness itself: members go away with the handle, also when
//! the test using it panics.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use provisioning_testkit::etcd_cluster::EtcdCluster;

use crate::support::serial;

fn port_of(endpoint: &str) -> u16 {
    endpoint
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("endpoint with a port")
}

fn accepts(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_are_killed_and_removed_when_a_test_panics() {
    let _serial = serial().await;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut cluster = EtcdCluster::start(3).await.expect("etcd");
        let leader = cluster.leader_index().await.expect("a leader");
        cluster.kill(leader).expect("kill");
        assert!(!cluster.is_running(leader));
        cluster.restart(leader).await.expect("restart");
        let _ = tx.send((cluster.endpoints(), cluster.root_dir().to_path_buf()));
        panic!("intentional panic: the harness must clean up after a failing test");
    });
    let joined = task.await;
    assert!(joined.is_err_and(|e| e.is_panic()));
    let (endpoints, root) = rx.await.expect("endpoints");
    assert!(!root.exists(), "{} left behind", root.display());
    for endpoint in &endpoints {
        assert!(
            !accepts(port_of(endpoint)),
            "{endpoint} still answers after the panic"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_binary_is_a_one_line_error() {
    let e = EtcdCluster::start_with("/nonexistent/etcd".into(), 1)
        .await
        .expect_err("no such binary");
    let text = e.to_string();
    assert_eq!(
        text,
        "etcd harness: etcd binary not found at /nonexistent/etcd (set ETCD_BIN, or \
         `apt-get install etcd-server`)"
    );
}

/// Set in the child process this test starts: it then plays the test that
/// gets killed.
const VICTIM: &str = "ETCD_HARNESS_VICTIM";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_die_with_a_killed_test_process() {
    if std::env::var_os(VICTIM).is_some() {
        // The victim: start a cluster, say where, and wait to be SIGKILLed
        // (no unwinding, no Drop).
        let cluster = EtcdCluster::start(1).await.expect("etcd");
        println!(
            "VICTIM {} {}",
            cluster.root_dir().display(),
            cluster.endpoints().join(",")
        );
        tokio::time::sleep(Duration::from_secs(60)).await;
        return;
    }
    let _serial = serial().await;
    let exe = std::env::current_exe().expect("test binary");
    let mut child = std::process::Command::new(exe)
        .args([
            "harness::members_die_with_a_killed_test_process",
            "--exact",
            "--nocapture",
        ])
        .env(VICTIM, "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn the victim");
    let stdout = child.stdout.take().expect("victim stdout");
    let line = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.starts_with("VICTIM "))
    })
    .await
    .expect("reader")
    .expect("the victim reports its endpoints");
    let mut words = line.split(' ').skip(1);
    let root = std::path::PathBuf::from(words.next().expect("root dir"));
    let endpoints: Vec<String> = words
        .next()
        .expect("endpoints")
        .split(',')
        .map(str::to_owned)
        .collect();
    assert!(root.is_dir());
    assert!(
        endpoints.iter().all(|e| accepts(port_of(e))),
        "victim's etcd runs"
    );
    child.kill().expect("SIGKILL the victim");
    child.wait().expect("reap the victim");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while endpoints.iter().any(|e| accepts(port_of(e))) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "etcd outlived its killed test process: {endpoints:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The watchdog removed the data too.
    while root.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} outlived its killed test process",
            root.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
