//! [`ReachabilityProbe`]: a minimal preflight for kinds whose backend probe
//! is not wired into the facade yet — a TCP connection to each endpoint.

use std::time::Duration;

use cluster_provisioning::ProvisioningError;
use cluster_provisioning::api::ProviderDescriptor;
use cluster_provisioning::registry::{ProbeFuture, ProviderProbe, SecretResolver};
use tokio::net::TcpStream;

/// Checks that at least one endpoint of a descriptor accepts a TCP
/// connection within the connect timeout (clients fail over between
/// endpoints, so one is enough). Credentials and permissions are not
/// checked: that needs the backend's own probe.
#[derive(Debug, Clone)]
pub(crate) struct ReachabilityProbe {
    connect_timeout: Duration,
}

impl ReachabilityProbe {
    /// A probe giving each endpoint `connect_timeout`.
    pub(crate) fn new(connect_timeout: Duration) -> Self {
        Self { connect_timeout }
    }

    async fn check(&self, descriptor: &ProviderDescriptor) -> Result<(), ProvisioningError> {
        let mut problems = Vec::new();
        for url in &descriptor.endpoints {
            let Some((host, port)) = host_and_port(url) else {
                problems.push(format!("{url}: no host"));
                continue;
            };
            let connect = TcpStream::connect((host.as_str(), port));
            match tokio::time::timeout(self.connect_timeout, connect).await {
                Ok(Ok(_stream)) => return Ok(()),
                Ok(Err(e)) => problems.push(format!("{url}: {e}")),
                Err(_) => problems.push(format!(
                    "{url}: no connection within {} ms",
                    self.connect_timeout.as_millis()
                )),
            }
        }
        if problems.is_empty() {
            return Ok(());
        }
        Err(ProvisioningError::BackendUnavailable {
            provider: Some(descriptor.id.clone()),
            detail: problems.join("; "),
        })
    }
}

impl ProviderProbe for ReachabilityProbe {
    fn probe<'a>(
        &'a self,
        descriptor: &'a ProviderDescriptor,
        _secrets: &'a SecretResolver,
    ) -> ProbeFuture<'a> {
        Box::pin(self.check(descriptor))
    }
}

/// Host and port of an `http`/`https` URL (default ports 80 / 443), as
/// `http::Uri` reads it (IPv6 hosts without their brackets).
pub(crate) fn host_and_port(url: &str) -> Option<(String, u16)> {
    let uri: http::Uri = url.parse().ok()?;
    let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return None;
    }
    // A URL, not a bare authority: `nope` is no endpoint.
    let scheme = uri.scheme_str()?;
    let default_port = if scheme.eq_ignore_ascii_case("https") {
        443
    } else {
        80
    };
    Some((host.to_owned(), uri.port_u16().unwrap_or(default_port)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cluster_provisioning::api::{ProviderId, ProviderKind};

    #[test]
    fn urls_give_host_and_port() {
        assert_eq!(
            host_and_port("http://127.0.0.1:8500"),
            Some(("127.0.0.1".into(), 8500))
        );
        assert_eq!(
            host_and_port("https://consul.example/v1"),
            Some(("consul.example".into(), 443))
        );
        assert_eq!(
            host_and_port("http://[::1]:2379/"),
            Some(("::1".into(), 2379))
        );
        assert_eq!(host_and_port("http://:80"), None);
        assert_eq!(host_and_port("nope"), None);
    }

    #[tokio::test]
    async fn a_closed_port_is_backend_unavailable_and_an_open_one_passes() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = listener.local_addr().unwrap().port();
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let probe = ReachabilityProbe::new(Duration::from_secs(2));
        let resolver = SecretResolver::new(".");
        let id = ProviderId::new("etcd-a").unwrap();
        let down = ProviderDescriptor::new(id.clone(), ProviderKind::Etcd, 1)
            .with_endpoint(format!("http://127.0.0.1:{closed}"));
        let e = probe.probe(&down, &resolver).await.unwrap_err();
        assert_eq!(e.code(), "backend_unavailable");
        let up = down.with_endpoint(format!("http://127.0.0.1:{open}"));
        probe.probe(&up, &resolver).await.unwrap();
    }
}
