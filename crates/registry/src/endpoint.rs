//! Checks of endpoint URLs: `http://HOST[:PORT][/PATH]` or `https://...`.
//!
//! A small strict parser instead of a URL crate: endpoints only need a
//! scheme, a host and a port, and anything unusual (credentials, spaces,
//! another scheme) is better rejected than normalised.

use std::net::Ipv6Addr;

/// Why an endpoint is rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EndpointProblem {
    /// `user:password@` in the authority: credentials belong in `auth`.
    Credentials,
    /// Not an http/https URL; the text says why.
    Invalid(String),
}

fn invalid(message: impl Into<String>) -> EndpointProblem {
    EndpointProblem::Invalid(message.into())
}

/// Checks one endpoint URL.
pub(crate) fn check_endpoint(url: &str) -> Result<(), EndpointProblem> {
    if let Some(bad) = url.chars().find(|c| {
        !c.is_ascii_graphic() || matches!(c, '"' | '<' | '>' | '\\' | '^' | '`' | '{' | '|' | '}')
    }) {
        return Err(invalid(format!("URL contains {bad:?}")));
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(invalid(
            "not a URL: expected http://HOST[:PORT] or https://HOST[:PORT]",
        ));
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(invalid(format!(
            "scheme {:?} is not http or https",
            scheme.to_ascii_lowercase()
        )));
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    if authority.contains('@') {
        return Err(EndpointProblem::Credentials);
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let Some((addr, after)) = v6.split_once(']') else {
            return Err(invalid("unclosed '[' in IPv6 host"));
        };
        if addr.parse::<Ipv6Addr>().is_err() {
            return Err(invalid(format!("{addr:?} is not an IPv6 address")));
        }
        match after {
            "" => (addr, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (addr, Some(port)),
                None => return Err(invalid("unexpected text after the IPv6 host")),
            },
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(invalid("missing host"));
    }
    if !authority.starts_with('[') {
        let label_ok = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if host.len() > 253 || !host.trim_end_matches('.').split('.').all(label_ok) {
            return Err(invalid(format!(
                "{host:?} is not a valid host name or address"
            )));
        }
    }
    if let Some(port) = port {
        let valid = !port.is_empty()
            && port.len() <= 5
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p));
        if !valid {
            return Err(invalid(format!("port {port:?} is not 1..65535")));
        }
    }
    Ok(())
}

/// The endpoint in the form used to compare endpoint sets: lower-case
/// scheme and host, no trailing `/`.
pub(crate) fn normalize_endpoint(url: &str) -> String {
    let trimmed = url.trim_end_matches('/');
    match trimmed.split_once("://") {
        Some((scheme, rest)) => {
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            format!(
                "{}://{}{}",
                scheme.to_ascii_lowercase(),
                rest[..end].to_ascii_lowercase(),
                &rest[end..]
            )
        }
        None => trimmed.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_http_and_https() {
        for url in [
            "http://127.0.0.1:8500",
            "https://consul.service.consul",
            "http://[::1]:2379",
            "http://[fe80::1]",
            "HTTP://Example.COM:80/v1/?x=1",
            "http://a_b.local.:1",
        ] {
            assert_eq!(check_endpoint(url), Ok(()), "{url}");
        }
    }

    #[test]
    fn rejects_everything_else() {
        for url in [
            "",
            "127.0.0.1:8500",
            "ftp://host",
            "unix:///var/run/consul.sock",
            "http://",
            "http://:80",
            "http://host:",
            "http://host:0",
            "http://host:65536",
            "http://host:8a",
            "http://ho st",
            "http://host\n",
            "http://[::1",
            "http://[zz::1]:80",
            "http://[::1]x",
            "http://a..b",
            "http://-a-.b:1/\u{e9}",
        ] {
            assert!(
                matches!(check_endpoint(url), Err(EndpointProblem::Invalid(_))),
                "{url:?}"
            );
        }
        assert_eq!(
            check_endpoint("https://user:hunter2@host"),
            Err(EndpointProblem::Credentials)
        );
    }

    #[test]
    fn normalizes_for_comparison() {
        assert_eq!(normalize_endpoint("HTTP://Host:1/"), "http://host:1");
        assert_eq!(normalize_endpoint("http://h/Path"), "http://h/Path");
    }
}
