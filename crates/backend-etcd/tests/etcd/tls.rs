//! TLS through the descriptor's `tls` settings against real etcd serving
//! https with client-certificate auth: CA from a relative path, client key
//! from a `file:` reference.

use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use provisioning_backend_etcd::EtcdProvider;
use provisioning_provider_api::*;
use provisioning_registry::SecretResolver;
use provisioning_testkit::etcd_cluster::{EtcdCluster, EtcdTls};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tokio::time::timeout;

use crate::support::*;

/// Writes `name.pem` (certificate) and `name.key` (key) signed by `issuer`.
fn issue(dir: &Path, name: &str, sans: &[&str], issuer: &Issuer<'_, KeyPair>) {
    let key = KeyPair::generate().expect("key");
    let params = CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
        .expect("params");
    let cert = params.signed_by(&key, issuer).expect("sign");
    std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).expect("write cert");
    std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).expect("write key");
}

/// A CA (`ca.pem`) and its issuer.
fn authority(dir: &Path, name: &str) -> Issuer<'static, KeyPair> {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).expect("self-sign");
    std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).expect("write ca");
    Issuer::new(params, key)
}

fn tls_descriptor(endpoint: String, ca: &str, with_client_cert: bool) -> ProviderDescriptor {
    let mut d = descriptor(&[endpoint], serde_json::json!({ "prefix": PREFIX }));
    d.tls = Some(TlsSettings {
        ca: Some(ca.to_owned()),
        cert: with_client_cert.then(|| "client.pem".to_owned()),
        key: with_client_cert.then(|| SecretRef::parse("file:client.key").expect("ref")),
        verify: true,
    });
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_client_certificates_from_references() {
    let _serial = serial().await;
    let dir = std::env::temp_dir().join(format!("etcd-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let ca = authority(&dir, "ca");
    issue(&dir, "server", &["127.0.0.1", "localhost"], &ca);
    issue(&dir, "client", &["client"], &ca);
    let other = authority(&dir, "other-ca");
    drop(other);

    let cluster = EtcdCluster::start_tls(
        1,
        EtcdTls {
            cert_file: dir.join("server.pem"),
            key_file: dir.join("server.key"),
            client_ca_file: Some(dir.join("ca.pem")),
        },
    )
    .await
    .expect("etcd with tls");
    let mut c = client(&cluster.endpoints()).await;
    c.put(
        format!("{PREFIX}n1"),
        member_json("n1", "10.0.0.1", 4001),
        None,
    )
    .await
    .expect("put over the plain port");
    let https = cluster.tls_endpoint(0).expect("https endpoint");
    // Relative paths and `file:` references resolve against the store dir.
    let secrets = SecretResolver::new(&dir);

    let good = tls_descriptor(https.clone(), "ca.pem", true);
    probe_descriptor(&good, &secrets)
        .await
        .expect("probe over TLS with a client certificate");
    let provider = EtcdProvider::from_descriptor(good, &secrets).expect("provider");
    let mut stream = provider.stream(StreamOptions::new(Duration::from_secs(1)));
    match timeout(Duration::from_secs(5), stream.next()).await {
        Ok(Some(ProviderEvent::Snapshot(s))) => assert!(s.member("n1").is_some(), "{s:?}"),
        other => panic!("expected a snapshot over TLS, got {other:?}"),
    }

    // No client certificate: refused by the server.
    let anonymous = tls_descriptor(https.clone(), "ca.pem", false);
    let e = probe_descriptor(&anonymous, &secrets)
        .await
        .expect_err("client certificate required");
    println!("without a client certificate: {e}");
    // A server certificate from an untrusted CA.
    let untrusted = tls_descriptor(https, "other-ca.pem", true);
    let e = probe_descriptor(&untrusted, &secrets)
        .await
        .expect_err("untrusted server");
    println!("untrusted server certificate: {e}");
    let provider = EtcdProvider::from_descriptor(untrusted, &secrets).expect("provider");
    let mut stream = provider.stream(StreamOptions::new(Duration::from_secs(1)));
    assert!(
        matches!(
            timeout(Duration::from_secs(5), stream.next()).await,
            Ok(Some(ProviderEvent::Fault(_)))
        ),
        "an untrusted server is a fault"
    );
    // A missing key file is a configuration fault, permanent.
    std::fs::remove_file(dir.join("client.key")).expect("remove key");
    let provider = EtcdProvider::from_descriptor(
        tls_descriptor(cluster.tls_endpoint(0).expect("https"), "ca.pem", true),
        &secrets,
    )
    .expect("provider");
    let mut stream = provider.stream(StreamOptions::new(Duration::from_secs(1)));
    match timeout(Duration::from_secs(5), stream.next()).await {
        Ok(Some(ProviderEvent::Fault(f))) => {
            assert_eq!(f.kind, FaultKind::InvalidConfig, "{f}");
            assert!(f.permanent && f.detail.contains("file:client.key"), "{f}");
        }
        other => panic!("expected a config fault, got {other:?}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}
