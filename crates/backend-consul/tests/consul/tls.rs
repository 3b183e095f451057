//! HTTPS through rustls with ring: a TLS front (throwaway CA) before the
//! fake, trusted through `tls.ca`, rejected without it, accepted with
//! `verify: false`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use provisioning_provider_api::{ClusterProvider, FaultKind, ProviderEvent, StreamOptions};
use provisioning_registry::SecretResolver;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::{descriptor, next, setup};

const SOON: Duration = Duration::from_secs(8);

/// A TLS-terminating front on loopback forwarding to `backend`.
struct TlsFront {
    addr: SocketAddr,
    ca_pem: String,
    task: JoinHandle<()>,
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn tls_front(backend: SocketAddr) -> TlsFront {
    let fail = |e: &dyn std::fmt::Display| -> ! { panic!("{e}") };
    let ca_key = KeyPair::generate().unwrap_or_else(|e| fail(&e));
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| fail(&e));
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).unwrap_or_else(|e| fail(&e));
    let key = KeyPair::generate().unwrap_or_else(|e| fail(&e));
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap_or_else(|e| fail(&e))
        .signed_by(&key, &ca)
        .unwrap_or_else(|e| fail(&e));
    let config = ServerConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap_or_else(|e| fail(&e))
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
    .unwrap_or_else(|e| fail(&e));
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| fail(&e));
    let addr = listener.local_addr().unwrap_or_else(|e| fail(&e));
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    TlsFront {
        addr,
        ca_pem: ca.pem(),
        task,
    }
}

fn https_descriptor(
    consul: &provisioning_testkit::fake_consul::FakeConsul,
    front: &TlsFront,
    tls: &str,
) -> provisioning_provider_api::ProviderDescriptor {
    let json = serde_json::to_string(&descriptor(consul, "", &format!(r#","tls":{tls}"#)))
        .unwrap_or_else(|e| panic!("{e}"))
        .replace(&consul.url(), &format!("https://{}", front.addr));
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn https_with_the_ca_from_tls_ca() {
    let (consul, _) = setup("").await;
    let front = tls_front(consul.addr()).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("ca.pem"), &front.ca_pem).unwrap_or_else(|e| panic!("{e}"));
    let provider = crate::provider(
        https_descriptor(&consul, &front, r#"{"ca":"ca.pem"}"#),
        SecretResolver::new(dir.path()),
    );
    let mut stream = provider.stream(StreamOptions::new(Duration::from_millis(1500)));
    match next(&mut stream, SOON).await {
        ProviderEvent::Snapshot(s) => assert_eq!(s.len(), 3),
        other => panic!("{other:?}"),
    }
    // Blocking queries work through TLS too.
    assert!(matches!(
        next(&mut stream, SOON).await,
        ProviderEvent::Heartbeat(_)
    ));
}

#[tokio::test]
async fn an_unknown_issuer_is_a_permanent_configuration_fault() {
    let (consul, _) = setup("").await;
    let front = tls_front(consul.addr()).await;
    let provider = crate::provider(
        https_descriptor(&consul, &front, "{}"),
        SecretResolver::new(std::env::temp_dir()),
    );
    let mut stream = provider.stream(StreamOptions::new(Duration::from_millis(1500)));
    match next(&mut stream, SOON).await {
        ProviderEvent::Fault(f) => {
            assert_eq!(
                (f.kind, f.permanent),
                (FaultKind::InvalidConfig, true),
                "{f}"
            );
            assert!(
                f.detail.starts_with("TLS: GET /v1/health/service/app"),
                "{f}"
            );
            assert!(f.detail.contains("UnknownIssuer"), "{f}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn verify_false_accepts_any_certificate() {
    let (consul, _) = setup("").await;
    let front = tls_front(consul.addr()).await;
    let provider = crate::provider(
        https_descriptor(&consul, &front, r#"{"verify":false}"#),
        SecretResolver::new(std::env::temp_dir()),
    );
    let mut stream = provider.stream(StreamOptions::new(Duration::from_millis(1500)));
    match next(&mut stream, SOON).await {
        ProviderEvent::Snapshot(s) => assert_eq!(s.len(), 3),
        other => panic!("{other:?}"),
    }
    assert!(provider.initial_snapshot().is_some());
}
