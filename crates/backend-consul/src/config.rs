//! [`ConsulConfig`]: a `consul` descriptor resolved into what the client
//! needs — endpoints, the typed `watch` (from `provisioning-registry`),
//! credentials as references and TLS material — with the `CONSUL_HTTP_*`
//! variables filling the fields the descriptor leaves out.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use provisioning_provider_api::{ProviderDescriptor, ProviderId, ProviderKind, SecretRef};
use provisioning_registry::{ProvisioningError, SecretResolver, read_bounded_file};

use crate::ConsulWatch;
use reqwest::Url;

/// Looks up a (non-secret) environment variable; `None` when unset or empty.
pub(crate) type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The process environment as an [`EnvLookup`].
pub(crate) fn process_env() -> EnvLookup {
    Arc::new(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
}

/// How requests authenticate. Only references are kept; values are
/// resolved on every request, so a rotated token or file is picked up on
/// the next reconnect without a restart.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Credentials {
    /// No token: Consul's anonymous token applies.
    None,
    /// `X-Consul-Token` from this reference.
    Token(SecretRef),
    /// HTTP basic authentication (a proxy in front of Consul).
    Basic(SecretRef, SecretRef),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // References are not secrets; showing them helps operators.
        match self {
            Self::None => f.write_str("None"),
            Self::Token(r) => write!(f, "Token({r})"),
            Self::Basic(u, p) => write!(f, "Basic({u}, {p})"),
        }
    }
}

/// TLS material read when the provider is built.
#[derive(Clone, Default)]
pub(crate) struct TlsMaterial {
    /// PEM bundle to trust in addition to the built-in roots.
    pub(crate) ca_pem: Option<Vec<u8>>,
    /// Client certificate chain and key, concatenated PEM.
    pub(crate) identity_pem: Option<Vec<u8>>,
    /// Verify the server certificate.
    pub(crate) verify: bool,
}

impl fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("ca", &self.ca_pem.as_ref().map(|_| "[pem]"))
            .field(
                "identity",
                &self.identity_pem.as_ref().map(|_| "[redacted]"),
            )
            .field("verify", &self.verify)
            .finish()
    }
}

/// A `consul` descriptor, resolved.
#[derive(Clone, Debug)]
pub(crate) struct ConsulConfig {
    pub(crate) provider: ProviderId,
    /// Agent or server base URLs, tried in order on connection errors.
    pub(crate) endpoints: Vec<Url>,
    pub(crate) watch: ConsulWatch,
    pub(crate) credentials: Credentials,
    pub(crate) tls: TlsMaterial,
}

impl ConsulConfig {
    /// Resolves `descriptor`. Relative TLS paths are relative to the
    /// resolver's base directory (the store's directory).
    pub(crate) fn resolve(
        descriptor: &ProviderDescriptor,
        secrets: &SecretResolver,
        env: &EnvLookup,
    ) -> Result<Self, ProvisioningError> {
        let id = &descriptor.id;
        if descriptor.kind != ProviderKind::Consul {
            return Err(invalid(
                id,
                "kind",
                format!("is {:?}, expected \"consul\"", descriptor.kind.as_str()),
            ));
        }
        let watch = ConsulWatch::from_descriptor(descriptor)?;
        let ssl = env("CONSUL_HTTP_SSL").is_some_and(|v| parse_bool(&v) == Some(true));
        let ambient_addr = env("CONSUL_HTTP_ADDR").map(|addr| with_scheme(&addr, ssl));
        let endpoints = endpoints(descriptor, ambient_addr.as_deref())?;
        let ambient = Ambient::new(descriptor, env, &endpoints, ambient_addr.as_deref());
        let credentials = credentials(descriptor, &ambient)?;
        let tls = tls_material(descriptor, &ambient, secrets)?;
        Ok(Self {
            provider: id.clone(),
            endpoints,
            watch,
            credentials,
            tls,
        })
    }

    /// How long a healthy blocking query may stay silent: `wait × 17/16`.
    pub(crate) fn quiet_period(&self) -> Duration {
        self.watch.quiet_period()
    }
}

/// An `invalid_descriptor` error of provider `id` naming `field`.
fn invalid(id: &ProviderId, field: &str, message: String) -> ProvisioningError {
    ProvisioningError::invalid(Some(id), Some(field.to_owned()), message)
}

/// The descriptor's endpoints, else `CONSUL_HTTP_ADDR` (`ambient_addr`,
/// with its scheme): http or https URLs, without credentials in them.
fn endpoints(
    descriptor: &ProviderDescriptor,
    ambient_addr: Option<&str>,
) -> Result<Vec<Url>, ProvisioningError> {
    let id = &descriptor.id;
    let raw: Vec<(String, String)> = if descriptor.endpoints.is_empty() {
        match ambient_addr {
            Some(addr) => vec![("CONSUL_HTTP_ADDR".to_owned(), addr.to_owned())],
            None => {
                return Err(invalid(
                    id,
                    "endpoints",
                    "required (or set CONSUL_HTTP_ADDR)".to_owned(),
                ));
            }
        }
    } else {
        descriptor
            .endpoints
            .iter()
            .enumerate()
            .map(|(i, e)| (format!("endpoints[{i}]"), e.clone()))
            .collect()
    };
    let mut endpoints = Vec::with_capacity(raw.len());
    for (field, text) in raw {
        let url = Url::parse(&text).map_err(|e| invalid(id, &field, format!("not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
            return Err(invalid(
                id,
                &field,
                "must be an http or https URL".to_owned(),
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            // Credentials in a URL would end up in logs and errors.
            return Err(ProvisioningError::InlineSecret {
                provider: Some(id.clone()),
                field,
            });
        }
        endpoints.push(url);
    }
    Ok(endpoints)
}

/// The `CONSUL_HTTP_*` variables as one descriptor may use them: trust
/// settings (`CONSUL_CACERT`, `CONSUL_HTTP_SSL_VERIFY`) apply to every
/// endpoint, credentials only under CONTRACTS §4a rule 3.
struct Ambient<'a> {
    env: &'a EnvLookup,
    id: &'a ProviderId,
    /// Every endpoint is `CONSUL_HTTP_ADDR` (same scheme, host and port).
    at_addr: bool,
    /// The descriptor's `tls` turns verification off or names its own CA.
    own_trust: bool,
}

impl<'a> Ambient<'a> {
    fn new(
        descriptor: &'a ProviderDescriptor,
        env: &'a EnvLookup,
        endpoints: &[Url],
        ambient_addr: Option<&str>,
    ) -> Self {
        let origin = ambient_addr.and_then(|addr| Url::parse(addr).ok());
        let at_addr = origin
            .as_ref()
            .is_some_and(|origin| endpoints.iter().all(|url| same_origin(url, origin)));
        let own_trust = descriptor
            .tls
            .as_ref()
            .is_some_and(|t| !t.verify || t.ca.is_some());
        Self {
            env,
            id: &descriptor.id,
            at_addr,
            own_trust,
        }
    }

    /// A trust setting: used whatever the endpoints.
    fn setting(&self, name: &str) -> Option<String> {
        (self.env)(name)
    }

    /// A credential variable, or `None` with a warning when it may not be
    /// used. The environment's credentials belong to the Consul at
    /// CONSUL_HTTP_ADDR: they go nowhere else, whoever wrote the
    /// descriptor. Nor do they go to a server whose certificate the
    /// descriptor does not verify, or verifies against a CA of its own
    /// choosing: that server may not be the operator's Consul at all.
    fn credential(&self, name: &str) -> Option<String> {
        let value = (self.env)(name);
        if value.is_some() && !self.at_addr {
            tracing::warn!(
                provider = %self.id,
                variable = name,
                "not used: the descriptor's endpoints are not CONSUL_HTTP_ADDR (same scheme, host and port), and the environment's credentials are sent only there"
            );
            return None;
        }
        if value.is_some() && self.own_trust {
            tracing::warn!(
                provider = %self.id,
                variable = name,
                "not used: the descriptor's `tls` turns verification off or names its own `ca`, and the environment's credentials are sent only to a server verified as usual"
            );
            return None;
        }
        value
    }
}

/// The descriptor's `auth`, else the Consul CLI's order: a token file,
/// else the token variable.
fn credentials(
    descriptor: &ProviderDescriptor,
    ambient: &Ambient<'_>,
) -> Result<Credentials, ProvisioningError> {
    let id = &descriptor.id;
    if let Some(auth) = &descriptor.auth {
        auth.check_shape()
            .map_err(|(field, message)| invalid(id, field, message.to_owned()))?;
        return Ok(match (&auth.token, &auth.username, &auth.password) {
            (Some(token), _, _) => Credentials::Token(token.clone()),
            (None, Some(u), Some(p)) => Credentials::Basic(u.clone(), p.clone()),
            _ => Credentials::None,
        });
    }
    Ok(match ambient.credential("CONSUL_HTTP_TOKEN_FILE") {
        Some(path) => Credentials::Token(
            SecretRef::parse(&format!("file:{path}"))
                .map_err(|e| invalid(id, "auth.token", format!("CONSUL_HTTP_TOKEN_FILE: {e}")))?,
        ),
        None if ambient.credential("CONSUL_HTTP_TOKEN").is_some() => {
            Credentials::Token(SecretRef::Env("CONSUL_HTTP_TOKEN".into()))
        }
        None => Credentials::None,
    })
}

/// The TLS material: the descriptor's `tls`, the rest from the variables
/// (`CONSUL_CACERT`, `CONSUL_CLIENT_CERT/KEY`, `CONSUL_HTTP_SSL_VERIFY`),
/// the named files read now.
fn tls_material(
    descriptor: &ProviderDescriptor,
    ambient: &Ambient<'_>,
    secrets: &SecretResolver,
) -> Result<TlsMaterial, ProvisioningError> {
    let id = &descriptor.id;
    let tls = descriptor.tls.as_ref();
    let ca = tls
        .and_then(|t| t.ca.clone())
        .or_else(|| ambient.setting("CONSUL_CACERT"));
    let cert = tls
        .and_then(|t| t.cert.clone())
        .or_else(|| ambient.credential("CONSUL_CLIENT_CERT"));
    let key = match tls.and_then(|t| t.key.clone()) {
        Some(key) => Some(key),
        None => match ambient.credential("CONSUL_CLIENT_KEY") {
            Some(path) => Some(
                SecretRef::parse(&format!("file:{path}"))
                    .map_err(|e| invalid(id, "tls.key", format!("CONSUL_CLIENT_KEY: {e}")))?,
            ),
            None => None,
        },
    };
    let verify = verify(descriptor, ambient)?;
    let ca_pem = ca
        .as_deref()
        .map(|p| read_named(secrets, id, "tls.ca", p))
        .transpose()?;
    let identity_pem = identity(id, cert, key, secrets)?;
    Ok(TlsMaterial {
        ca_pem,
        identity_pem,
        verify,
    })
}

/// `tls.verify`, else `CONSUL_HTTP_SSL_VERIFY` (turning verification off
/// is logged at warn), else verify.
fn verify(
    descriptor: &ProviderDescriptor,
    ambient: &Ambient<'_>,
) -> Result<bool, ProvisioningError> {
    let id = &descriptor.id;
    if let Some(t) = &descriptor.tls {
        return Ok(t.verify);
    }
    let Some(v) = ambient.setting("CONSUL_HTTP_SSL_VERIFY") else {
        return Ok(true);
    };
    let verify = parse_bool(&v).ok_or_else(|| {
        invalid(
            id,
            "tls.verify",
            format!("CONSUL_HTTP_SSL_VERIFY={v:?} is not a bool"),
        )
    })?;
    if !verify {
        tracing::warn!(
            provider = %id,
            "CONSUL_HTTP_SSL_VERIFY={v}: the Consul server's TLS certificate is not verified"
        );
    }
    Ok(verify)
}

/// The client certificate chain and key as one PEM, both or neither.
fn identity(
    id: &ProviderId,
    cert: Option<String>,
    key: Option<SecretRef>,
    secrets: &SecretResolver,
) -> Result<Option<Vec<u8>>, ProvisioningError> {
    match (cert, key) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => {
            // Only the certificates of `tls.cert`: the key must come
            // from `tls.key`, the field the secret-reference policy
            // checks, never from a plain path that happens to hold one.
            let mut pem = certificates_only(&read_named(secrets, id, "tls.cert", &cert)?)
                .map_err(|message| invalid(id, "tls.cert", message.to_owned()))?;
            pem.extend_from_slice(secrets.resolve(&key)?.expose().as_bytes());
            Ok(Some(pem))
        }
        (Some(_), None) => Err(invalid(id, "tls.key", "`cert` needs `key`".to_owned())),
        (None, Some(_)) => Err(invalid(id, "tls.cert", "`key` needs `cert`".to_owned())),
    }
}

/// Reads a file the descriptor or the environment names, relative to the
/// resolver's base directory. Bounded: a FIFO or a device named here would
/// block the reader.
fn read_named(
    secrets: &SecretResolver,
    id: &ProviderId,
    field: &str,
    path: &str,
) -> Result<Vec<u8>, ProvisioningError> {
    let path = secrets.path_of(path);
    read_bounded_file(&path).map_err(|e| e.into_error(&path).within(field).with_provider(id))
}

/// The `CERTIFICATE` sections of a PEM file, each ending in a newline.
/// Refuses a file holding a private key, or no certificate; the message
/// never quotes the file.
fn certificates_only(pem: &[u8]) -> Result<Vec<u8>, &'static str> {
    let text = std::str::from_utf8(pem).map_err(|_| "is not PEM text")?;
    let mut out = Vec::new();
    let mut in_certificate = false;
    for line in text.lines() {
        let line = line.trim();
        if let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|rest| rest.strip_suffix("-----"))
        {
            if label.contains("PRIVATE KEY") {
                return Err("holds a private key; the key belongs in `tls.key`");
            }
            in_certificate = label == "CERTIFICATE";
        }
        if in_certificate {
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
            if line == "-----END CERTIFICATE-----" {
                in_certificate = false;
            }
        }
    }
    if out.is_empty() {
        return Err("holds no PEM certificate");
    }
    Ok(out)
}

/// Go's `strconv.ParseBool`, which the Consul CLI uses for its variables.
fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Same scheme, host and port (a missing port is the scheme's default).
pub(crate) fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host() == b.host()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// `CONSUL_HTTP_ADDR` may omit the scheme (`127.0.0.1:8500`).
fn with_scheme(addr: &str, ssl: bool) -> String {
    if addr.contains("://") {
        addr.to_owned()
    } else if ssl {
        format!("https://{addr}")
    } else {
        format!("http://{addr}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn env_of(pairs: &[(&str, &str)]) -> EnvLookup {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Arc::new(move |name| map.get(name).cloned())
    }

    fn descriptor(json: &str) -> ProviderDescriptor {
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}"))
    }

    fn resolver() -> SecretResolver {
        SecretResolver::new(std::env::temp_dir())
    }

    #[test]
    fn descriptor_fields_win_over_variables() {
        let d = descriptor(
            r#"{"id":"c","kind":"consul","priority":1,"endpoints":["http://10.0.0.1:8500"],
                "auth":{"token":"env:MY_TOKEN"},"watch":{"service":"app","wait":"2s"}}"#,
        );
        let env = env_of(&[
            ("CONSUL_HTTP_ADDR", "10.9.9.9:8500"),
            ("CONSUL_HTTP_TOKEN", "x"),
        ]);
        let c = ConsulConfig::resolve(&d, &resolver(), &env).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.endpoints[0].as_str(), "http://10.0.0.1:8500/");
        assert_eq!(
            c.credentials,
            Credentials::Token(SecretRef::Env("MY_TOKEN".into()))
        );
        assert_eq!(c.quiet_period(), Duration::from_millis(2125));
        assert!(c.tls.verify);
    }

    #[test]
    fn variables_fill_what_the_descriptor_leaves_out() {
        let d = descriptor(r#"{"id":"c","kind":"consul","priority":1,"watch":{"service":"app"}}"#);
        let env = env_of(&[
            ("CONSUL_HTTP_ADDR", "127.0.0.1:8501"),
            ("CONSUL_HTTP_SSL", "true"),
            ("CONSUL_HTTP_TOKEN", "s3cr3t"),
            ("CONSUL_HTTP_SSL_VERIFY", "false"),
        ]);
        let c = ConsulConfig::resolve(&d, &resolver(), &env).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.endpoints[0].as_str(), "https://127.0.0.1:8501/");
        assert_eq!(
            c.credentials,
            Credentials::Token(SecretRef::Env("CONSUL_HTTP_TOKEN".into()))
        );
        assert!(!c.tls.verify);
        assert!(!format!("{c:?}").contains("s3cr3t"));

        let env = env_of(&[
            ("CONSUL_HTTP_ADDR", "http://h:8500"),
            ("CONSUL_HTTP_TOKEN_FILE", "/run/consul/token"),
            ("CONSUL_HTTP_TOKEN", "ignored"),
        ]);
        let c = ConsulConfig::resolve(&d, &resolver(), &env).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.credentials,
            Credentials::Token(SecretRef::File("/run/consul/token".into()))
        );
    }

    #[test]
    fn ambient_credentials_go_only_to_consul_http_addr() {
        let token = Credentials::Token(SecretRef::Env("CONSUL_HTTP_TOKEN".into()));
        let consul = |endpoints: &str| {
            descriptor(&format!(
                r#"{{"id":"c","kind":"consul","priority":1{endpoints},"watch":{{"service":"app"}}}}"#
            ))
        };
        let resolve = |d: &ProviderDescriptor, addr: &str| {
            let env = env_of(&[("CONSUL_HTTP_ADDR", addr), ("CONSUL_HTTP_TOKEN", "s3cr3t")]);
            ConsulConfig::resolve(d, &resolver(), &env)
                .unwrap_or_else(|e| panic!("{e}"))
                .credentials
        };
        // The same scheme, host and port: the token goes there.
        for (endpoints, addr) in [
            ("", "127.0.0.1:8500"),
            (
                r#","endpoints":["http://127.0.0.1:8500"]"#,
                "127.0.0.1:8500",
            ),
            (
                r#","endpoints":["http://127.0.0.1:8500/"]"#,
                "http://127.0.0.1:8500",
            ),
            (r#","endpoints":["http://consul"]"#, "consul:80"),
            (r#","endpoints":["https://Consul:443"]"#, "https://consul"),
            (
                r#","endpoints":["http://127.0.0.1:8500/","http://127.0.0.1:8500/x"]"#,
                "127.0.0.1:8500",
            ),
        ] {
            assert_eq!(
                resolve(&consul(endpoints), addr),
                token,
                "{endpoints} {addr}"
            );
        }
        // Anywhere else it does not, whoever wrote the descriptor.
        for (endpoints, addr) in [
            (
                r#","endpoints":["http://127.0.0.1:18500"]"#,
                "127.0.0.1:8500",
            ),
            (
                r#","endpoints":["http://localhost:8500"]"#,
                "127.0.0.1:8500",
            ),
            (
                r#","endpoints":["https://127.0.0.1:8500"]"#,
                "127.0.0.1:8500",
            ),
            (
                r#","endpoints":["http://127.0.0.1:8500"]"#,
                "https://127.0.0.1:8500",
            ),
            (
                r#","endpoints":["http://127.0.0.1:8500","http://127.0.0.1:18500"]"#,
                "127.0.0.1:8500",
            ),
        ] {
            assert_eq!(
                resolve(&consul(endpoints), addr),
                Credentials::None,
                "{endpoints} {addr}"
            );
        }
        // Without CONSUL_HTTP_ADDR no endpoint is the ambient one.
        let env = env_of(&[
            ("CONSUL_HTTP_TOKEN", "s3cr3t"),
            ("CONSUL_HTTP_TOKEN_FILE", "/t"),
        ]);
        let d = consul(r#","endpoints":["http://127.0.0.1:8500"]"#);
        let c = ConsulConfig::resolve(&d, &resolver(), &env).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.credentials, Credentials::None);
        // The descriptor's own reference goes to the descriptor's endpoint.
        let d = descriptor(
            r#"{"id":"c","kind":"consul","priority":1,"endpoints":["http://127.0.0.1:18500"],"auth":{"token":"env:PROVISIONING_T"},"watch":{"service":"app"}}"#,
        );
        assert_eq!(
            resolve(&d, "127.0.0.1:8500"),
            Credentials::Token(SecretRef::Env("PROVISIONING_T".into()))
        );
    }

    #[test]
    fn ambient_client_certificates_are_not_read_for_another_endpoint() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let cert = dir.path().join("client.pem");
        std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\n").unwrap_or_else(|e| panic!("{e}"));
        let cert = cert.display().to_string();
        let key = dir.path().join("client.key");
        std::fs::write(&key, "cnry-ambient-key").unwrap_or_else(|e| panic!("{e}"));
        let key = key.display().to_string();
        let env = env_of(&[
            ("CONSUL_HTTP_ADDR", "127.0.0.1:8500"),
            ("CONSUL_CLIENT_CERT", &cert),
            ("CONSUL_CLIENT_KEY", &key),
        ]);
        let at = |endpoint: &str| {
            descriptor(&format!(
                r#"{{"id":"c","kind":"consul","priority":1,"endpoints":["{endpoint}"],"watch":{{"service":"app"}}}}"#
            ))
        };
        let c = ConsulConfig::resolve(&at("http://127.0.0.1:8500"), &resolver(), &env)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(c.tls.identity_pem.is_some(), "the ambient Consul gets them");
        let c = ConsulConfig::resolve(&at("http://127.0.0.1:18500"), &resolver(), &env)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(c.tls.identity_pem.is_none(), "another endpoint does not");
    }

    #[test]
    fn the_client_key_comes_only_from_tls_key() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
            path.display().to_string()
        };
        let certificate = "-----BEGIN CERTIFICATE-----\nY2VydA==\n-----END CERTIFICATE-----\n";
        let key = write(
            "client.key",
            "-----BEGIN PRIVATE KEY-----\ncnry-allowed-key\n-----END PRIVATE KEY-----\n",
        );
        let with_cert = |cert: &str| {
            descriptor(&format!(
                r#"{{"id":"c","kind":"consul","priority":1,"endpoints":["https://h"],"tls":{{"cert":"{cert}","key":"file:{key}"}},"watch":{{"service":"app"}}}}"#
            ))
        };
        let env = env_of(&[]);

        // A certificate file that also holds a key (or is one) is refused,
        // without quoting it.
        for (name, text) in [
            (
                "bundle.pem",
                format!(
                    "{certificate}-----BEGIN EC PRIVATE KEY-----\ncnry-unchecked-key\n-----END EC PRIVATE KEY-----\n"
                ),
            ),
            (
                "consul.key",
                "-----BEGIN PRIVATE KEY-----\ncnry-unchecked-key\n-----END PRIVATE KEY-----\n"
                    .to_owned(),
            ),
            ("empty.pem", String::new()),
        ] {
            let e = ConsulConfig::resolve(&with_cert(&write(name, &text)), &resolver(), &env)
                .err()
                .unwrap_or_else(|| panic!("{name}: accepted"));
            println!("{name}: error[{}]: {e}", e.code());
            assert_eq!(e.code(), "invalid_config", "{name}: {e}");
            assert_eq!(e.field(), Some("tls.cert"), "{name}: {e}");
            assert!(!e.to_string().contains("cnry"), "{name}: {e}");
        }

        // Only the certificate sections of `tls.cert` go into the identity,
        // the key from `tls.key`.
        let cert = write("client.pem", &format!("comment\n{certificate}trailer\n"));
        let c = ConsulConfig::resolve(&with_cert(&cert), &resolver(), &env)
            .unwrap_or_else(|e| panic!("{e}"));
        let identity = String::from_utf8(c.tls.identity_pem.unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(identity.starts_with(certificate), "{identity}");
        assert!(!identity.contains("comment") && !identity.contains("trailer"));
        assert_eq!(identity.matches("PRIVATE KEY-----").count(), 2);
        assert!(identity.contains("cnry-allowed-key"));
    }

    #[test]
    fn ambient_credentials_are_not_sent_where_the_descriptor_changes_verification() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let cert = dir.path().join("client.pem");
        std::fs::write(
            &cert,
            "-----BEGIN CERTIFICATE-----\nY2VydA==\n-----END CERTIFICATE-----\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let cert = cert.display().to_string();
        let key = dir.path().join("client.key");
        std::fs::write(&key, "cnry-ambient-key").unwrap_or_else(|e| panic!("{e}"));
        let key = key.display().to_string();
        let ca = dir.path().join("own-ca.pem");
        std::fs::write(
            &ca,
            "-----BEGIN CERTIFICATE-----\nY2E=\n-----END CERTIFICATE-----\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let ca = ca.display().to_string();
        let env = env_of(&[
            ("CONSUL_HTTP_ADDR", "https://127.0.0.1:8501"),
            ("CONSUL_HTTP_TOKEN", "s3cr3t"),
            ("CONSUL_CLIENT_CERT", &cert),
            ("CONSUL_CLIENT_KEY", &key),
        ]);
        let with_tls = |tls: &str| {
            descriptor(&format!(
                r#"{{"id":"c","kind":"consul","priority":1,"endpoints":["https://127.0.0.1:8501"],"tls":{tls},"watch":{{"service":"app"}}}}"#
            ))
        };
        let c = ConsulConfig::resolve(&with_tls(r#"{"verify":true}"#), &resolver(), &env)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.credentials,
            Credentials::Token(SecretRef::Env("CONSUL_HTTP_TOKEN".into())),
            "verified as usual: the ambient Consul gets them"
        );
        assert!(c.tls.identity_pem.is_some());
        for tls in [
            r#"{"verify":false}"#.to_owned(),
            format!(r#"{{"ca":"{ca}"}}"#),
        ] {
            let c = ConsulConfig::resolve(&with_tls(&tls), &resolver(), &env)
                .unwrap_or_else(|e| panic!("{tls}: {e}"));
            assert_eq!(c.credentials, Credentials::None, "{tls}: token sent");
            assert!(c.tls.identity_pem.is_none(), "{tls}: client key sent");
        }
    }

    #[test]
    fn named_files_are_read_bounded() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let fifo = dir.path().join("ca.fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()));
        std::fs::write(dir.path().join("big.pem"), vec![b'x'; 2 << 20])
            .unwrap_or_else(|e| panic!("{e}"));
        let secrets = SecretResolver::new(dir.path());
        for ca in [
            fifo.display().to_string(),
            "/dev/zero".into(),
            "big.pem".into(),
            ".".into(),
        ] {
            let d = descriptor(&format!(
                r#"{{"id":"c","kind":"consul","priority":1,"endpoints":["https://h"],"tls":{{"ca":"{ca}"}},"watch":{{"service":"app"}}}}"#
            ));
            // On another thread: a read that blocks fails the test instead
            // of hanging it (policy 1 s, margin 3 × 1 s + 2 s).
            let (tx, rx) = std::sync::mpsc::channel();
            let secrets = secrets.clone();
            let started = std::time::Instant::now();
            std::thread::spawn(move || {
                let _ = tx.send(ConsulConfig::resolve(&d, &secrets, &env_of(&[])).err());
            });
            let e = rx
                .recv_timeout(std::time::Duration::from_secs(5))
                .unwrap_or_else(|_| panic!("tls.ca {ca}: still reading after 5 s"))
                .unwrap_or_else(|| panic!("accepted {ca}"));
            println!("tls.ca {ca}: {e} after {:?}", started.elapsed());
            assert_eq!(e.code(), "invalid_descriptor", "{e}");
            assert_eq!(e.field(), Some("tls.ca"), "{e}");
            assert_eq!(e.provider().map(|p| p.as_str()), Some("c"), "{e}");
        }
    }

    #[test]
    fn rejections_name_the_field() {
        let env = env_of(&[]);
        for (json, field, code) in [
            (
                r#"{"id":"c","kind":"consul","priority":1,"watch":{"service":"app"}}"#,
                "endpoints",
                "invalid_config",
            ),
            (
                r#"{"id":"c","kind":"consul","priority":1,"endpoints":["ftp://h"],"watch":{"service":"app"}}"#,
                "endpoints[0]",
                "invalid_config",
            ),
            (
                r#"{"id":"c","kind":"consul","priority":1,"endpoints":["http://u:p@h:8500"],"watch":{"service":"app"}}"#,
                "endpoints[0]",
                "inline_secret",
            ),
            (
                r#"{"id":"c","kind":"consul","priority":1,"endpoints":["http://h"],"watch":{"service":"app","wiat":"1s"}}"#,
                "watch.wiat",
                "invalid_config",
            ),
            (
                r#"{"id":"c","kind":"etcd","priority":1,"endpoints":["http://h"],"watch":{"service":"app"}}"#,
                "kind",
                "invalid_config",
            ),
            (
                r#"{"id":"c","kind":"consul","priority":1,"endpoints":["http://h"],"tls":{"ca":"/surely/not/here.pem"},"watch":{"service":"app"}}"#,
                "tls.ca",
                "invalid_config",
            ),
        ] {
            let e = ConsulConfig::resolve(&descriptor(json), &resolver(), &env)
                .err()
                .unwrap_or_else(|| panic!("accepted {json}"));
            assert_eq!(e.code(), code, "{json}: {e}");
            assert_eq!(e.field(), Some(field), "{json}: {e}");
        }
    }
}
