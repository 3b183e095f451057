//! Fault mapping and retry timing against real etcd: refused connections,
//! malformed values, credentials and permissions, the probe.

use std::time::Duration;

use etcd_client::{Client, Permission};
use futures::StreamExt;
use provisioning_backend_etcd::{EtcdError, EtcdProbe, EtcdProvider};
use provisioning_provider_api::*;
use provisioning_registry::{ProviderProbe, SecretResolver};
use provisioning_testkit::etcd_cluster::EtcdCluster;
use tokio::time::{Instant, timeout};

use crate::support::*;

/// A loopback port nothing listens on.
fn closed_port_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connection_reaches_max_errors_within_200ms() {
    let _serial = serial().await;
    let provider = provider(&[closed_port_endpoint()]);
    let options = StreamOptions::new(Duration::from_secs(5));
    let mut stream = provider.stream(options);
    let started = Instant::now();
    for n in 1..=options.max_errors {
        match timeout(Duration::from_secs(2), stream.next()).await {
            Ok(Some(ProviderEvent::Fault(f))) => {
                assert_eq!(f.kind, FaultKind::BackendUnavailable, "{f}");
                assert!(!f.permanent, "{f}");
                assert!(f.detail.contains("127.0.0.1"), "names the endpoint: {f}");
            }
            other => panic!("fault {n}: expected a fault, got {other:?}"),
        }
    }
    let took = started.elapsed();
    println!("refused: {} faults in {took:?}", options.max_errors);
    assert!(took <= Duration::from_millis(200), "{took:?}");
    // Then the policy backoff (2 s ±20 %) spaces the attempts.
    let before = Instant::now();
    assert!(matches!(stream.next().await, Some(ProviderEvent::Fault(_))));
    let gap = before.elapsed();
    assert!(
        gap >= Duration::from_millis(1500) && gap <= Duration::from_millis(2600),
        "{gap:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_values_are_faults_naming_the_key_and_never_end_the_stream() {
    let _serial = serial().await;
    let cluster = EtcdCluster::start(1).await.expect("etcd");
    let mut kv = client(&cluster.endpoints()).await;
    let key = |id: &str| format!("{PREFIX}{id}");
    kv.put(key("n1"), member_json("n1", "10.0.0.1", 4001), None)
        .await
        .unwrap();
    kv.put(key("n2"), "{not json", None).await.unwrap();
    kv.put(key("n3"), member_json("other", "10.0.0.3", 4003), None)
        .await
        .unwrap();
    let provider = provider(&cluster.endpoints());
    let recorder = Recorder::start(provider.stream(StreamOptions::new(Duration::from_secs(1))));

    let (_, first) = recorder
        .wait_for(0, Duration::from_secs(5), |_| true)
        .await
        .expect("first item");
    match &first.event {
        ProviderEvent::Snapshot(s) => {
            assert_eq!(s.len(), 1, "bad keys left out: {s:?}");
            assert!(s.member("n1").is_some());
        }
        other => panic!("first item: {other:?}"),
    }
    for bad in ["n2", "n3"] {
        let name = key(bad);
        let found = recorder
            .wait_for(0, Duration::from_secs(5), |e| {
                matches!(e, ProviderEvent::Fault(f)
                    if f.kind == FaultKind::MalformedResponse && !f.permanent && f.detail.contains(&name))
            })
            .await;
        assert!(
            found.is_some(),
            "a fault naming {name}: {:?}",
            recorder.all()
        );
    }

    // A good change later: the stream goes on, bad keys are not re-reported.
    let mark = recorder.len();
    kv.put(key("n4"), member_json("n4", "10.0.0.4", 4004), None)
        .await
        .unwrap();
    let (i, seen) = recorder
        .wait_for(
            mark,
            Duration::from_secs(5),
            |e| matches!(e, ProviderEvent::Snapshot(s) if s.len() == 2),
        )
        .await
        .expect("snapshot with n4");
    assert!(matches!(seen.event, ProviderEvent::Snapshot(ref s) if s.member("n4").is_some()));
    // Fixing a bad key brings it in.
    kv.put(key("n2"), member_json("n2", "10.0.0.2", 4002), None)
        .await
        .unwrap();
    recorder
        .wait_for(
            i,
            Duration::from_secs(5),
            |e| matches!(e, ProviderEvent::Snapshot(s) if s.len() == 3),
        )
        .await
        .expect("snapshot with n2 fixed");
    // Let a few heartbeats pass: no repeated fault, no termination.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let all = recorder.all();
    let faults = all
        .iter()
        .filter(|s| matches!(s.event, ProviderEvent::Fault(_)))
        .count();
    assert_eq!(faults, 2, "each bad key reported once: {all:?}");
    assert!(
        !all.iter()
            .any(|s| matches!(s.event, ProviderEvent::Terminated(_)))
    );
    assert!(
        all.iter()
            .rev()
            .take(2)
            .any(|s| matches!(s.event, ProviderEvent::Heartbeat(_)))
    );
}

/// Turns auth on with `root`, a reader of the prefix (`app`) and a user
/// without roles (`nobody`).
async fn enable_auth(endpoints: &[String]) {
    let mut c = Client::connect(endpoints, None).await.unwrap();
    c.role_add("root").await.unwrap();
    c.user_add("root", "root-pw", None).await.unwrap();
    c.user_grant_role("root", "root").await.unwrap();
    c.role_add("reader").await.unwrap();
    c.role_grant_permission("reader", Permission::read(PREFIX).with_prefix())
        .await
        .unwrap();
    c.user_add("app", "app-pw", None).await.unwrap();
    c.user_grant_role("app", "reader").await.unwrap();
    c.user_add("nobody", "nobody-pw", None).await.unwrap();
    c.auth_enable().await.unwrap();
}

fn authed(endpoints: &[String], dir: &std::path::Path) -> (ProviderDescriptor, SecretResolver) {
    let mut d = descriptor(endpoints, serde_json::json!({ "prefix": PREFIX }));
    d.auth = Some(ProviderAuth::basic(
        SecretRef::parse("file:user").unwrap(),
        SecretRef::parse("file:password").unwrap(),
    ));
    (d, SecretResolver::new(dir))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_and_permissions_are_checked_and_reread_on_reconnect() {
    let _serial = serial().await;
    let cluster = EtcdCluster::start(1).await.expect("etcd");
    let endpoints = cluster.endpoints();
    {
        let mut c = client(&endpoints).await;
        c.put(
            format!("{PREFIX}n1"),
            member_json("n1", "10.0.0.1", 4001),
            None,
        )
        .await
        .unwrap();
    }
    enable_auth(&endpoints).await;
    let dir = std::env::temp_dir().join(format!("etcd-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |user: &str, password: &str| {
        std::fs::write(dir.join("user"), format!("{user}\n")).unwrap();
        std::fs::write(dir.join("password"), format!("{password}\n")).unwrap();
    };
    let (d, secrets) = authed(&endpoints, &dir);

    // Without credentials: permission denied, permanent.
    let anonymous = probe_descriptor(&d_without_auth(&d), &secrets).await;
    assert!(
        matches!(anonymous, Err(EtcdError::PermissionDenied { .. })),
        "{anonymous:?}"
    );
    // Wrong password.
    write("app", "wrong");
    let probe = probe_descriptor(&d, &secrets).await;
    assert!(
        matches!(probe, Err(EtcdError::PermissionDenied { .. })),
        "{probe:?}"
    );
    assert_eq!(probe.as_ref().unwrap_err().code(), "permission_denied");
    assert!(
        !probe.unwrap_err().to_string().contains("wrong"),
        "never shows the secret"
    );
    // Authenticated but no read permission on the prefix.
    write("nobody", "nobody-pw");
    let probe = probe_descriptor(&d, &secrets).await;
    assert!(
        matches!(probe, Err(EtcdError::PermissionDenied { .. })),
        "{probe:?}"
    );
    // The reader passes.
    write("app", "app-pw");
    probe_descriptor(&d, &secrets)
        .await
        .expect("reader probes fine");

    // A stream with a wrong password reports a permanent fault, then picks
    // up the rotated password on its next reconnect (after the backoff).
    write("app", "wrong");
    let provider = EtcdProvider::from_descriptor(d, &secrets).unwrap();
    let mut stream = provider.stream(StreamOptions::new(Duration::from_secs(1)));
    match timeout(Duration::from_secs(5), stream.next()).await {
        Ok(Some(ProviderEvent::Fault(f))) => {
            assert_eq!(f.kind, FaultKind::PermissionDenied, "{f}");
            assert!(f.permanent, "{f}");
        }
        other => panic!("expected a permanent fault, got {other:?}"),
    }
    write("app", "app-pw");
    let recovered = Instant::now();
    match timeout(Duration::from_secs(10), stream.next()).await {
        Ok(Some(ProviderEvent::Snapshot(s))) => assert!(s.member("n1").is_some()),
        other => panic!("expected a snapshot after the password rotation, got {other:?}"),
    }
    println!("recovered after rotation in {:?}", recovered.elapsed());
    let _ = std::fs::remove_dir_all(&dir);
}

fn d_without_auth(d: &ProviderDescriptor) -> ProviderDescriptor {
    let mut d = d.clone();
    d.auth = None;
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_reports_unreachable_endpoints() {
    let _serial = serial().await;
    let d = descriptor(
        &[closed_port_endpoint()],
        serde_json::json!({ "prefix": PREFIX }),
    );
    let started = Instant::now();
    let e = probe_descriptor(&d, &secrets()).await.unwrap_err();
    assert_eq!(e.code(), "backend_unavailable", "{e}");
    assert!(e.is_retryable());
    // The registry's probe trait gives the same verdict, as ProvisioningError.
    let e = EtcdProbe.probe(&d, &secrets()).await.unwrap_err();
    assert_eq!(e.code(), "backend_unavailable", "{e}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

/// A resolver whose environment is `vars` only.
fn env_resolver(vars: &[(&str, &str)]) -> SecretResolver {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    SecretResolver::new(std::env::temp_dir()).with_env(move |name| {
        vars.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .ok_or(std::env::VarError::NotPresent)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_environments_etcdctl_user_is_sent_only_to_etcdctl_endpoints() {
    let _serial = serial().await;
    let cluster = EtcdCluster::start(1).await.expect("etcd");
    let endpoints = cluster.endpoints();
    enable_auth(&endpoints).await;
    let plain = descriptor(&endpoints, serde_json::json!({ "prefix": PREFIX }));
    let listed = endpoints.join(",");

    // etcdctl's two forms: `name:password`, and a separate password.
    for vars in [
        vec![
            ("ETCDCTL_ENDPOINTS", listed.as_str()),
            ("ETCDCTL_USER", "app:app-pw"),
        ],
        vec![
            ("ETCDCTL_ENDPOINTS", listed.as_str()),
            ("ETCDCTL_USER", "app"),
            ("ETCDCTL_PASSWORD", "app-pw"),
        ],
    ] {
        let probe = probe_descriptor(&plain, &env_resolver(&vars)).await;
        assert!(probe.is_ok(), "{vars:?}: {probe:?}");
    }

    // The same server under a name ETCDCTL_ENDPOINTS does not list: the
    // credentials stay home, so etcd refuses the anonymous read.
    let alias: Vec<String> = endpoints
        .iter()
        .map(|e| e.replace("127.0.0.1", "localhost"))
        .collect();
    let elsewhere = descriptor(&alias, serde_json::json!({ "prefix": PREFIX }));
    let vars = [
        ("ETCDCTL_ENDPOINTS", listed.as_str()),
        ("ETCDCTL_USER", "app:app-pw"),
    ];
    let probe = probe_descriptor(&elsewhere, &env_resolver(&vars)).await;
    assert!(
        matches!(probe, Err(EtcdError::PermissionDenied { .. })),
        "{probe:?}"
    );

    // A user with no password anywhere is a clear configuration error.
    let vars = [
        ("ETCDCTL_ENDPOINTS", listed.as_str()),
        ("ETCDCTL_USER", "app"),
    ];
    let probe = probe_descriptor(&plain, &env_resolver(&vars)).await;
    let message = probe.expect_err("no password").to_string();
    assert!(message.contains("ETCDCTL_PASSWORD"), "{message}");
}
