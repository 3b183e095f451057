//! The admin router mounted on a runtime's own plain axum server (no
//! connection handle from the CLI's listener): the §4a site checks, the
//! token and the media type hold in the same order, and the routes answer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cluster_provisioning::admin::{self, AdminConfig, BearerToken};
use cluster_provisioning::api::{ClusterNode, ProviderId};
use cluster_provisioning::memory::InMemoryProvider;
use cluster_provisioning::registry::SecretRefPolicy;
use cluster_provisioning::{ClusterProvisioningService, ProvisioningHandle, builtin_registry};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::admin_writes::wait_active;

const TOKEN: &str = "r0uter-t0ken";

async fn serve() -> (SocketAddr, ProvisioningHandle) {
    let provider = InMemoryProvider::new(ProviderId::new("a").expect("id"), 10);
    provider
        .handle()
        .add(ClusterNode::new("n1", "127.0.0.1", 4000))
        .expect("member");
    let handle = ClusterProvisioningService::build(builtin_registry())
        .with_provider(Arc::new(provider))
        .start()
        .expect("start");
    wait_active(&handle, "a").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let config =
        AdminConfig::new(addr, SecretRefPolicy::new(".", ".")).with_token(BearerToken::new(TOKEN));
    let app = admin::router(handle.clone(), config);
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, handle)
}

/// One request on its own connection; the status code of the answer.
async fn status(addr: SocketAddr, request: &str) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await.expect("read");
            answer.extend_from_slice(&buf[..n]);
            if n == 0 || answer.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer to {request:?}");
    let text = String::from_utf8_lossy(&answer);
    text.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"))
}

fn request(method: &str, path: &str, host: &str, extra: &[&str], body: &str) -> String {
    let mut text = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for header in extra {
        text.push_str(header);
        text.push_str("\r\n");
    }
    text.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_axum_server_gets_every_check() {
    let (addr, handle) = serve().await;
    let host = addr.to_string();
    let bearer = format!("Authorization: Bearer {TOKEN}");
    // Probes are open, the rest needs the token.
    assert_eq!(
        status(addr, &request("GET", "/healthz", &host, &[], "")).await,
        200
    );
    assert_eq!(
        status(addr, &request("GET", "/readyz", &host, &[], "")).await,
        200
    );
    assert_eq!(
        status(addr, &request("GET", "/topology", &host, &[], "")).await,
        401
    );
    assert_eq!(
        status(addr, &request("GET", "/topology", &host, &[&bearer], "")).await,
        200
    );
    // A page elsewhere is refused before the token is even looked at.
    assert_eq!(
        status(addr, &request("GET", "/healthz", "evil.example", &[], "")).await,
        403
    );
    let evil = "Origin: https://evil.example";
    assert_eq!(
        status(
            addr,
            &request(
                "POST",
                "/failover",
                &host,
                &[&bearer, evil, "Content-Type: application/json"],
                "{}"
            )
        )
        .await,
        403
    );
    assert_eq!(
        status(addr, &request("POST", "/failover", &host, &[evil], "{}")).await,
        403
    );
    // Then the media type, before the body is read.
    assert_eq!(
        status(
            addr,
            &request(
                "POST",
                "/providers",
                &host,
                &[&bearer, "Content-Type: text/plain"],
                "{}"
            )
        )
        .await,
        415
    );
    let descriptor = r#"{"id":"b","kind":"in_memory","priority":5}"#;
    assert_eq!(
        status(
            addr,
            &request(
                "POST",
                "/providers",
                &host,
                &[&bearer, "Content-Type: application/json"],
                descriptor
            )
        )
        .await,
        201
    );
    let listed = handle.providers().await.expect("providers");
    assert_eq!(listed.len(), 2, "{listed:?}");
    handle.shutdown().await.expect("shutdown");
}
