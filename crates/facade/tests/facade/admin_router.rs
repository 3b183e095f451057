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

async fn service() -> ProvisioningHandle {
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
    handle
}

/// Serves the router of `handle` on a fresh loopback port with a plain
/// `axum::serve`, with a token or not, telling the router the peer's
/// address (`ConnectInfo`) or not; `configured` replaces the listen address
/// the router is told.
async fn serve(
    handle: &ProvisioningHandle,
    token: bool,
    connect_info: bool,
    configured: Option<SocketAddr>,
) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut config = AdminConfig::new(configured.unwrap_or(addr), SecretRefPolicy::new(".", "."));
    if token {
        config = config.with_token(BearerToken::new(TOKEN));
    }
    let app = admin::router(handle.clone(), config);
    if connect_info {
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
        });
    } else {
        tokio::spawn(async move { axum::serve(listener, app).await });
    }
    addr
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
    let handle = service().await;
    let addr = serve(&handle, true, false, None).await;
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
    // The token before the media type, and an Origin naming this listener
    // is fine.
    assert_eq!(
        status(
            addr,
            &request(
                "POST",
                "/providers",
                &host,
                &["Content-Type: text/plain"],
                "{}"
            )
        )
        .await,
        401
    );
    let own = format!("Origin: http://{host}");
    assert_eq!(
        status(
            addr,
            &request("GET", "/topology", &host, &[&bearer, &own], "")
        )
        .await,
        200
    );
    // Then the media type and the size, before the body is read.
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(70 * 1024));
    assert_eq!(
        status(
            addr,
            &request(
                "POST",
                "/providers",
                &host,
                &[&bearer, "Content-Type: application/json"],
                &big
            )
        )
        .await,
        413
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_only_proven_loopback_requests_are_served() {
    let handle = service().await;
    // The router cannot tell where the request came from: refused.
    let blind = serve(&handle, false, false, None).await;
    let host = blind.to_string();
    assert_eq!(
        status(blind, &request("GET", "/healthz", &host, &[], "")).await,
        403
    );
    assert_eq!(
        status(blind, &request("GET", "/topology", &host, &[], "")).await,
        403
    );
    // With the peer's address, a loopback peer is served.
    let told = serve(&handle, false, true, None).await;
    let host = told.to_string();
    assert_eq!(
        status(told, &request("GET", "/healthz", &host, &[], "")).await,
        200
    );
    assert_eq!(
        status(told, &request("GET", "/topology", &host, &[], "")).await,
        200
    );
    // Configured beyond loopback without a token: nothing is served.
    let wide = serve(
        &handle,
        false,
        true,
        Some("0.0.0.0:9464".parse().expect("addr")),
    )
    .await;
    let host = wide.to_string();
    assert_eq!(
        status(wide, &request("GET", "/healthz", &host, &[], "")).await,
        403
    );
    handle.shutdown().await.expect("shutdown");
}
