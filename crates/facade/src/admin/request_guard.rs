//! [`RequestGuard`]: the admin API's refusal of requests a web page could
//! send (CONTRACTS §4a rule 2): foreign `Host` names on a loopback listener
//! (DNS rebinding), foreign `Origin`s, and `POST` bodies that are not
//! `application/json` (a browser sends `text/plain` forms without asking
//! first).
//!
//! What names this listener:
//! - `Host` (checked on a loopback listener only, `/healthz` and `/readyz`
//!   included): `localhost`, an address of `127.0.0.0/8` or `[::1]`, with
//!   any port or none. The port is not checked, so an SSH tunnel from
//!   another local port still works; a rebinding page shows in the name. A
//!   request without `Host` (HTTP/1.0) is not from a browser and passes. A
//!   non-loopback listener requires the token (rule 1), which no page can
//!   send on its own, so its clients may use any name.
//! - `Origin` (every route): `http://` and this listener's port, with a
//!   loopback name or address on a loopback listener; on another listener
//!   exactly the local address the connection reached (`http://10.0.0.5:9464`
//!   or `http://[fd00::5]:9464`), never a DNS name. `null`, `https`, a
//!   path, user info or a missing port (unless the port is 80) never match.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::registry::ErrorCode;
use axum::http::uri::Authority;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};

use super::api_error::ApiError;
use super::connection_handle::ConnectionHandle;

/// The listener a request must name.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RequestGuard {
    listener: SocketAddr,
}

impl RequestGuard {
    /// Requests to the listener bound at `listener`.
    pub(crate) fn new(listener: SocketAddr) -> Self {
        Self { listener }
    }

    fn loopback(&self) -> bool {
        self.listener.ip().is_loopback()
    }

    /// 403 `forbidden_host` or `forbidden_origin` for a request that does
    /// not name this listener; checked before anything else.
    pub(crate) fn check_site(
        &self,
        uri: &Uri,
        headers: &HeaderMap,
        connection: Option<&ConnectionHandle>,
    ) -> Result<(), ApiError> {
        if self.loopback() {
            let hosts = headers
                .get_all(header::HOST)
                .iter()
                .map(|v| v.to_str().ok());
            // An absolute-form request line names the host too.
            let in_uri = uri.authority().map(|a| Some(a.as_str()));
            for host in hosts.chain(in_uri) {
                if !host.is_some_and(is_loopback_host) {
                    let shown = host.map_or_else(|| "<not text>".to_owned(), |h| format!("{h:?}"));
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        ErrorCode::ForbiddenHost,
                        format!("Host {shown} is not a loopback name or address"),
                    ));
                }
            }
        }
        let local = connection.map_or(self.listener, ConnectionHandle::local_addr);
        for origin in headers.get_all(header::ORIGIN) {
            if !self.origin_matches(origin, local) {
                let shown = origin
                    .to_str()
                    .map_or_else(|_| "<not text>".to_owned(), |o| format!("{o:?}"));
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    ErrorCode::ForbiddenOrigin,
                    format!(
                        "Origin {shown} is not this listener (cross-site requests are refused)"
                    ),
                ));
            }
        }
        Ok(())
    }

    fn origin_matches(&self, origin: &HeaderValue, local: SocketAddr) -> bool {
        let Ok(text) = origin.to_str() else {
            return false;
        };
        let Some(rest) = strip_prefix_ignore_case(text, "http://") else {
            return false;
        };
        let Ok(authority) = rest.parse::<Authority>() else {
            return false;
        };
        if authority.as_str() != rest || rest.contains('@') {
            return false;
        }
        if authority.port_u16().unwrap_or(80) != self.listener.port() {
            return false;
        }
        if self.loopback() {
            is_loopback_name(authority.host())
        } else {
            // A dual-stack listener sees an IPv4 client's address as
            // `::ffff:a.b.c.d`.
            host_ip(authority.host()).map(|ip| ip.to_canonical()) == Some(local.ip().to_canonical())
        }
    }

    /// 415 `unsupported_media_type` for a `POST` whose body is not declared
    /// `application/json` (parameters such as `charset` allowed).
    pub(crate) fn check_media_type(method: &Method, headers: &HeaderMap) -> Result<(), ApiError> {
        if method != Method::POST {
            return Ok(());
        }
        let mut types = headers.get_all(header::CONTENT_TYPE).iter();
        let json = match (types.next(), types.next()) {
            (Some(value), None) => value.to_str().ok().is_some_and(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
            }),
            _ => false,
        };
        if json {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
                "a POST body must be sent with `Content-Type: application/json`",
            ))
        }
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// A `Host` value (with or without a port) naming loopback.
fn is_loopback_host(value: &str) -> bool {
    match value.parse::<Authority>() {
        Ok(authority) if authority.as_str() == value && !value.contains('@') => {
            is_loopback_name(authority.host())
        }
        _ => false,
    }
}

/// `localhost`, `127.0.0.0/8` in dotted-quad form, or `[::1]`.
fn is_loopback_name(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host_ip(host).is_some_and(|ip| ip.is_loopback())
}

/// The address a URI host names literally (`[v6]` in brackets).
fn host_ip(host: &str) -> Option<IpAddr> {
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    host.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn site(guard: &RequestGuard, pairs: &[(&str, &str)]) -> Result<(), String> {
        let uri: Uri = "/providers".parse().unwrap();
        guard
            .check_site(&uri, &headers(pairs), None)
            .map_err(|e| e.code().as_str().to_owned())
    }

    #[test]
    fn a_loopback_listener_takes_loopback_hosts_only() {
        let guard = RequestGuard::new("127.0.0.1:9464".parse().unwrap());
        for host in [
            "localhost",
            "LOCALHOST:9464",
            "127.0.0.1",
            "127.0.0.1:9464",
            "127.3.2.1:1234",
            "[::1]",
            "[::1]:9464",
        ] {
            assert_eq!(site(&guard, &[("host", host)]), Ok(()), "{host}");
        }
        assert_eq!(site(&guard, &[]), Ok(()), "no Host: not a browser");
        for host in [
            "evil.example",
            "evil.example:9464",
            "localhost.evil.example",
            "localhost.",
            "sub.localhost",
            "127.1",
            "2130706433",
            "0.0.0.0:9464",
            "10.0.0.1:9464",
            "[::ffff:127.0.0.1]",
            "user@localhost",
            "localhost:9464/x",
            "",
        ] {
            assert_eq!(
                site(&guard, &[("host", host)]),
                Err("forbidden_host".to_owned()),
                "{host}"
            );
        }
        assert_eq!(
            site(&guard, &[("host", "localhost"), ("host", "evil.example")]),
            Err("forbidden_host".to_owned())
        );
        let absolute: Uri = "http://evil.example/providers".parse().unwrap();
        assert!(
            guard
                .check_site(&absolute, &headers(&[("host", "localhost")]), None)
                .is_err()
        );
    }

    #[test]
    fn origins_must_name_this_listener() {
        let guard = RequestGuard::new("127.0.0.1:9464".parse().unwrap());
        for origin in [
            "http://localhost:9464",
            "http://127.0.0.1:9464",
            "HTTP://127.9.9.9:9464",
            "http://[::1]:9464",
        ] {
            assert_eq!(site(&guard, &[("origin", origin)]), Ok(()), "{origin}");
        }
        for origin in [
            "null",
            "https://localhost:9464",
            "http://localhost:9465",
            "http://localhost",
            "http://evil.example:9464",
            "http://localhost:9464/",
            "http://x@localhost:9464",
            "http://127.0.0.1.evil.example:9464",
            "file://",
            "",
        ] {
            assert_eq!(
                site(&guard, &[("origin", origin)]),
                Err("forbidden_origin".to_owned()),
                "{origin}"
            );
        }
        // Every Origin value must match.
        assert_eq!(
            site(
                &guard,
                &[("origin", "http://localhost:9464"), ("origin", "null")]
            ),
            Err("forbidden_origin".to_owned())
        );
        // The Host check comes first.
        assert_eq!(
            site(&guard, &[("host", "evil.example"), ("origin", "null")]),
            Err("forbidden_host".to_owned())
        );
    }

    #[test]
    fn a_public_listener_takes_its_own_address_as_origin_only() {
        let guard = RequestGuard::new("0.0.0.0:9464".parse().unwrap());
        let connection = ConnectionHandle::new("10.1.2.3:9464".parse().unwrap());
        let uri: Uri = "/".parse().unwrap();
        let check = |origin: &str| {
            guard
                .check_site(
                    &uri,
                    &headers(&[("host", "admin.example"), ("origin", origin)]),
                    Some(&connection),
                )
                .map_err(|e| e.code().as_str().to_owned())
        };
        assert_eq!(check("http://10.1.2.3:9464"), Ok(()));
        for origin in [
            "http://localhost:9464",
            "http://127.0.0.1:9464",
            "http://admin.example:9464",
            "http://10.1.2.4:9464",
            "http://10.1.2.3:9465",
            "null",
        ] {
            assert_eq!(
                check(origin),
                Err("forbidden_origin".to_owned()),
                "{origin}"
            );
        }
    }

    #[test]
    fn a_dual_stack_listener_takes_an_ipv4_client_s_address_as_origin() {
        let guard = RequestGuard::new("[::]:9464".parse().unwrap());
        let uri: Uri = "/".parse().unwrap();
        let check = |local: &str, origin: &str| {
            let connection = ConnectionHandle::new(local.parse().unwrap());
            guard
                .check_site(
                    &uri,
                    &headers(&[("host", "admin.example"), ("origin", origin)]),
                    Some(&connection),
                )
                .map_err(|e| e.code().as_str().to_owned())
        };
        assert_eq!(
            check("[::ffff:10.1.2.3]:9464", "http://10.1.2.3:9464"),
            Ok(())
        );
        assert_eq!(check("[fd00::5]:9464", "http://[fd00::5]:9464"), Ok(()));
        for origin in ["http://10.1.2.4:9464", "http://10.1.2.3:9465"] {
            assert_eq!(
                check("[::ffff:10.1.2.3]:9464", origin),
                Err("forbidden_origin".to_owned()),
                "{origin}"
            );
        }
    }

    #[test]
    fn posts_must_declare_json() {
        let ok = |pairs: &[(&str, &str)]| {
            RequestGuard::check_media_type(&Method::POST, &headers(pairs)).is_ok()
        };
        assert!(ok(&[("content-type", "application/json")]));
        assert!(ok(&[("content-type", "Application/JSON; charset=utf-8")]));
        assert!(ok(&[("content-type", " application/json ;charset=UTF-8")]));
        assert!(!ok(&[]));
        assert!(!ok(&[("content-type", "text/plain")]));
        assert!(!ok(&[("content-type", "text/plain; application/json")]));
        assert!(!ok(&[("content-type", "application/json-patch+json")]));
        assert!(!ok(&[(
            "content-type",
            "application/x-www-form-urlencoded"
        )]));
        assert!(!ok(&[("content-type", "multipart/form-data; boundary=x")]));
        assert!(!ok(&[
            ("content-type", "application/json"),
            ("content-type", "text/plain")
        ]));
        assert!(RequestGuard::check_media_type(&Method::GET, &HeaderMap::new()).is_ok());
        assert!(RequestGuard::check_media_type(&Method::DELETE, &HeaderMap::new()).is_ok());
    }
}
