//! [`ConsulOrigin`]: the scheme, host and port an injected client is bound
//! to.

use std::fmt;
use std::str::FromStr;

use reqwest::Url;

use crate::ConsulError;

/// The one server (scheme, host and port) a client the program built may
/// be sent to. Whatever the program put in that client — a default
/// `X-Consul-Token` header, a client certificate, a proxy's credentials —
/// belongs to that server, so the provider uses the client only when every
/// endpoint of its descriptor has this origin: a descriptor names its
/// endpoints, and whoever wrote it (an admin API caller, a store edit) must
/// not be able to send the program's credentials elsewhere. A missing port
/// is the scheme's default, host names compare without case.
///
/// ```
/// use provisioning_backend_consul::ConsulOrigin;
/// let origin = ConsulOrigin::parse("https://Consul.internal:8501")?;
/// assert_eq!(origin.to_string(), "https://consul.internal:8501");
/// assert_eq!(ConsulOrigin::parse("http://consul")?.to_string(), "http://consul:80");
/// assert!(ConsulOrigin::parse("consul:8500").is_err());
/// assert!(ConsulOrigin::parse("http://consul:8500/v1").is_err());
/// # Ok::<(), provisioning_backend_consul::ConsulError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ConsulOrigin {
    /// `scheme://host/` or `scheme://host:port/`.
    url: Url,
}

impl ConsulOrigin {
    /// Parses `scheme://host[:port]` (a trailing `/` allowed): http or
    /// https, a host, no path, query, fragment or credentials. The error
    /// never quotes `origin`, which may hold a secret written by mistake.
    pub fn parse(origin: &str) -> Result<Self, ConsulError> {
        let refuse = |reason: &str| ConsulError::InvalidOrigin {
            reason: reason.to_owned(),
        };
        let url = Url::parse(origin).map_err(|e| refuse(&format!("not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(refuse("must be an http or https URL"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(refuse("must not carry credentials"));
        }
        if url.host().is_none() {
            return Err(refuse("has no host"));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(refuse(
                "is a scheme, host and port only (no path, query or fragment)",
            ));
        }
        let port = url
            .port_or_known_default()
            .ok_or_else(|| refuse("has no port"))?;
        let host = url.host_str().unwrap_or_default();
        let url = Url::parse(&format!("{}://{host}:{port}/", url.scheme()))
            .map_err(|e| refuse(&format!("not a URL: {e}")))?;
        Ok(Self { url })
    }

    /// Whether `url` is at this origin (same scheme, host and port).
    pub(crate) fn contains(&self, url: &Url) -> bool {
        crate::config::same_origin(&self.url, url)
    }
}

impl FromStr for ConsulOrigin {
    type Err = ConsulError;

    fn from_str(origin: &str) -> Result<Self, Self::Err> {
        Self::parse(origin)
    }
}

impl fmt::Display for ConsulOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The port always, even the scheme's default: it is compared.
        let port = self.url.port_or_known_default().unwrap_or_default();
        let host = self.url.host_str().unwrap_or_default();
        write!(f, "{}://{host}:{port}", self.url.scheme())
    }
}

impl fmt::Debug for ConsulOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConsulOrigin({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        for (text, shown) in [
            ("http://127.0.0.1:8500", "http://127.0.0.1:8500"),
            ("http://127.0.0.1:8500/", "http://127.0.0.1:8500"),
            ("https://consul", "https://consul:443"),
            ("http://[::1]:8500", "http://[::1]:8500"),
        ] {
            let origin = ConsulOrigin::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(origin.to_string(), shown);
        }
        for text in [
            "127.0.0.1:8500",
            "ftp://h",
            "http://u:cnry-secret@h:8500",
            "http://h:8500/consul",
            "http://h:8500/?dc=x",
            "http://h:8500#f",
            "not a url",
        ] {
            let e = ConsulOrigin::parse(text)
                .err()
                .unwrap_or_else(|| panic!("{text}: accepted"));
            println!("{text}: {e}");
            assert_eq!(e.code(), "invalid_config", "{text}: {e}");
            assert!(!e.to_string().contains("cnry"), "{text}: {e}");
        }
    }

    #[test]
    fn an_origin_contains_urls_compared_like_the_environment_address() {
        let origin = ConsulOrigin::parse("http://consul:8500").unwrap_or_else(|e| panic!("{e}"));
        let url = |u: &str| Url::parse(u).unwrap_or_else(|e| panic!("{e}"));
        assert!(origin.contains(&url("http://consul:8500/")));
        assert!(origin.contains(&url("http://CONSUL:8500/prefix")));
        assert!(!origin.contains(&url("https://consul:8500/")));
        assert!(!origin.contains(&url("http://consul:8501/")));
        assert!(!origin.contains(&url("http://consul.evil:8500/")));
        let default = ConsulOrigin::parse("http://consul").unwrap_or_else(|e| panic!("{e}"));
        assert!(default.contains(&url("http://consul:80/")));
    }
}
