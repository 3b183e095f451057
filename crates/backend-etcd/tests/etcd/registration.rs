//! Self-registration against real etcd: the member value under a lease
//! kept alive, put back when deleted, re-granted and re-put when the lease
//! is lost, revoked on shutdown and on drop.

use std::time::Duration;

use etcd_client::Client;
use provisioning_backend_etcd::{EtcdProvider, RegistrationStatus};
use provisioning_provider_api::*;
use provisioning_testkit::etcd_cluster::EtcdCluster;
use tokio::time::Instant;

use crate::support::*;

fn registering(endpoints: &[String], id: &str) -> EtcdProvider {
    let watch = serde_json::json!({
        "prefix": PREFIX,
        "register": {"id": id, "host": "10.9.9.9", "port": 7000, "ttl": "2s",
                     "labels": {"zone": "z1"}},
    });
    EtcdProvider::from_descriptor(descriptor(endpoints, watch), &secrets()).expect("descriptor")
}

/// The lease of `id`'s key, if the key exists.
async fn lease_of(c: &mut Client, id: &str) -> Option<i64> {
    let response = c.get(format!("{PREFIX}{id}"), None).await.expect("get");
    response.kvs().first().map(|kv| kv.lease())
}

/// Waits until `id`'s key is attached to a lease other than `old`.
async fn wait_new_lease(c: &mut Client, id: &str, old: i64, timeout: Duration) -> (i64, Duration) {
    let started = Instant::now();
    loop {
        match lease_of(c, id).await {
            Some(lease) if lease != old => return (lease, started.elapsed()),
            _ => {}
        }
        assert!(
            started.elapsed() < timeout,
            "key {id} not under a new lease within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The registration status once `reached` holds (the status is updated
/// just after the etcd request it counts, so a test that saw the key may
/// read it a moment early).
async fn wait_status(
    provider: &EtcdProvider,
    reached: impl Fn(&RegistrationStatus) -> bool,
) -> RegistrationStatus {
    let started = Instant::now();
    loop {
        let status = provider.registration_status().expect("status");
        if reached(&status) || started.elapsed() > Duration::from_secs(2) {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn wait_key(c: &mut Client, id: &str, present: bool, timeout: Duration) -> Duration {
    let started = Instant::now();
    while lease_of(c, id).await.is_some() != present {
        assert!(
            started.elapsed() < timeout,
            "key {id} present={present} not reached within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_is_kept_regranted_after_loss_and_revoked_on_shutdown() {
    let _serial = serial().await;
    let cluster = EtcdCluster::start(1).await.expect("etcd");
    let endpoints = cluster.endpoints();
    let mut c = client(&endpoints).await;
    let provider = registering(&endpoints, "self");
    let recorder = Recorder::start(provider.stream(StreamOptions::new(Duration::from_secs(1))));

    // Registered, and the provider's own view shows it with its labels.
    let (_, seen) = recorder
        .wait_for(
            0,
            Duration::from_secs(5),
            |e| matches!(e, ProviderEvent::Snapshot(s) if s.member("self").is_some()),
        )
        .await
        .expect("registered member in the view");
    let ProviderEvent::Snapshot(s) = seen.event else {
        unreachable!()
    };
    let me = s.member("self").unwrap();
    assert_eq!((me.host.as_str(), me.port), ("10.9.9.9", 7000));
    assert_eq!(me.labels.get("zone").map(String::as_str), Some("z1"));
    let first = wait_status(&provider, |s| s.registered).await;
    assert!(first.registered && first.grants == 1, "{first:?}");
    let lease = first.lease_id.expect("lease");
    assert_eq!(lease_of(&mut c, "self").await, Some(lease));

    // Kept alive well past its 2 s TTL.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        lease_of(&mut c, "self").await,
        Some(lease),
        "kept alive: {:?}",
        provider.registration_status()
    );

    // The key deleted while its lease lives: put back at the next renewal.
    let deleted_at = Instant::now();
    c.delete(format!("{PREFIX}self"), None)
        .await
        .expect("delete");
    wait_key(&mut c, "self", true, Duration::from_secs(3)).await;
    println!(
        "registration: deleted key back in {:?}",
        deleted_at.elapsed()
    );
    let status = wait_status(&provider, |s| s.puts >= 2).await;
    assert_eq!((status.grants, status.puts), (1, 2), "{status:?}");
    assert_eq!(lease_of(&mut c, "self").await, Some(lease), "same lease");

    // Lease lost (revoked by an operator): the key goes, then comes back
    // under a new lease.
    // Revoking deletes the key at once; whether a poll sees it absent
    // before the re-grant puts it back is a race, so the test waits for the
    // key under a lease other than the revoked one.
    let lost_at = Instant::now();
    c.lease_revoke(lease).await.expect("revoke");
    let (new_lease, back) = wait_new_lease(&mut c, "self", lease, Duration::from_secs(5)).await;
    // The key is put before the status records the grant.
    let second = wait_status(&provider, |s| s.grants >= 2).await;
    assert_eq!(second.grants, 2, "{second:?}");
    assert_eq!(second.lease_id, Some(new_lease), "{second:?}");
    assert_eq!(lease_of(&mut c, "self").await, second.lease_id);
    println!(
        "registration: lease lost → key under a new lease after {back:?} ({:?} since the revoke)",
        lost_at.elapsed()
    );

    // Shutdown revokes the lease at once and ends the stream.
    let mark = recorder.len();
    provider.shutdown().await.expect("shutdown");
    assert_eq!(lease_of(&mut c, "self").await, None, "revoked on shutdown");
    recorder
        .wait_for(mark, Duration::from_secs(2), |e| {
            *e == ProviderEvent::Terminated(ProviderTermination::Ended)
        })
        .await
        .expect("stream ended");
    assert!(!provider.registration_status().unwrap().registered);

    // Dropping a provider revokes too.
    let other = registering(&endpoints, "other");
    other.start_registration();
    wait_key(&mut c, "other", true, Duration::from_secs(5)).await;
    drop(other);
    let revoked = wait_key(&mut c, "other", false, Duration::from_secs(2)).await;
    println!("registration: revoked {revoked:?} after drop");
}

/// A loopback proxy to `upstream` that can stall: while stalled, bytes in
/// both directions are held (the connections stay open, nothing is
/// refused), as on a hung server or a blackholed link.
async fn stallable_proxy(
    upstream: std::net::SocketAddr,
) -> (String, tokio::sync::watch::Sender<bool>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind proxy");
    let addr = listener.local_addr().expect("proxy addr");
    let (stall, stalled) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                continue;
            };
            let (client_rx, client_tx) = client.into_split();
            let (server_rx, server_tx) = server.into_split();
            for (mut from, mut to) in [
                (
                    Box::new(client_rx) as Box<dyn tokio::io::AsyncRead + Send + Unpin>,
                    Box::new(server_tx) as Box<dyn tokio::io::AsyncWrite + Send + Unpin>,
                ),
                (Box::new(server_rx), Box::new(client_tx)),
            ] {
                let mut stalled = stalled.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0; 64 * 1024];
                    while let Ok(n @ 1..) = from.read(&mut buf).await {
                        while *stalled.borrow_and_update() {
                            if stalled.changed().await.is_err() {
                                return;
                            }
                        }
                        if to.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        }
    });
    (format!("http://{addr}"), stall)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_endpoint_moves_the_registration_with_the_same_lease() {
    let _serial = serial().await;
    let cluster = EtcdCluster::start(1).await.expect("etcd");
    let upstream: std::net::SocketAddr = cluster.endpoint(0)["http://".len()..]
        .parse()
        .expect("member address");
    let (a, stall_a) = stallable_proxy(upstream).await;
    let (b, stall_b) = stallable_proxy(upstream).await;
    let mut c = client(&cluster.endpoints()).await;
    let provider = registering(&[a.clone(), b.clone()], "self");
    provider.start_registration();
    let first = wait_status(&provider, |s| s.registered).await;
    let lease = first.lease_id.expect("a lease");
    assert_eq!(first.grants, 1, "{first:?}");

    // Stall whichever endpoint the registration talks through.
    let stalled_endpoint = provider.current_endpoint();
    let stall = if stalled_endpoint == a {
        stall_a
    } else {
        stall_b
    };
    stall.send_replace(true);
    let stalled_at = Instant::now();
    // Through two TTLs: the key is never gone and stays under its lease.
    while stalled_at.elapsed() < Duration::from_secs(4) {
        assert_eq!(
            lease_of(&mut c, "self").await,
            Some(lease),
            "key under its first lease {:?} after the stall: {:?}",
            stalled_at.elapsed(),
            provider.registration_status()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = provider.registration_status().expect("status");
    assert_eq!(
        (status.grants, status.lease_id),
        (1, Some(lease)),
        "{status:?}"
    );
    assert_ne!(provider.current_endpoint(), stalled_endpoint);
    println!(
        "registration: {stalled_endpoint} stalled; lease {lease} kept through {}",
        provider.current_endpoint()
    );
    provider.shutdown().await.expect("shutdown");
    assert_eq!(lease_of(&mut c, "self").await, None, "revoked on shutdown");
}
