//! [`EtcdConfig`]: what an `etcd` descriptor says, checked; and
//! [`SecretSource`], how `auth` / `tls.key` references are read.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use provisioning_provider_api::{
    Labels, MemberSpec, NodeId, ProviderDescriptor, ProviderKind, SecretRef, WatchParams,
    WatchValue, parse_duration,
};

use crate::EtcdError;

/// etcd's minimum lease TTL.
const MIN_TTL: Duration = Duration::from_secs(2);
/// Default lease TTL of `watch.register`.
const DEFAULT_TTL: Duration = Duration::from_secs(10);

/// Resolves secret references (`env:NAME`, `file:PATH`) when the provider
/// connects, and again on every reconnect, so rotated credentials keep
/// working. Nothing is cached.
pub trait SecretSource: Send + Sync + 'static {
    /// Reads the secret now. The error says why, never what the value is.
    fn resolve(&self, reference: &SecretRef) -> Result<String, String>;

    /// The path a relative `tls.ca` / `tls.cert` / `file:` path is read from.
    fn path_of(&self, path: &str) -> PathBuf {
        PathBuf::from(path)
    }
}

/// The standard [`SecretSource`]: `env:NAME` reads the environment variable,
/// `file:PATH` reads the file without its trailing newline; relative paths
/// are relative to `base_dir` (the store's directory).
#[derive(Debug, Clone)]
pub struct EnvFileSecrets {
    base_dir: PathBuf,
}

impl EnvFileSecrets {
    /// Relative paths resolve against `base_dir`.
    pub fn new(base_dir: impl Into<PathBuf>) -> Self {
        Self {
            base_dir: base_dir.into(),
        }
    }
}

impl SecretSource for EnvFileSecrets {
    fn resolve(&self, reference: &SecretRef) -> Result<String, String> {
        let value = match reference {
            SecretRef::Env(name) => std::env::var(&**name).map_err(|e| match e {
                std::env::VarError::NotPresent => "environment variable is not set".to_owned(),
                std::env::VarError::NotUnicode(_) => {
                    "environment variable is not valid UTF-8".to_owned()
                }
            })?,
            SecretRef::File(path) => {
                let path = self.path_of(path);
                let mut text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                if text.ends_with('\n') {
                    text.pop();
                    if text.ends_with('\r') {
                        text.pop();
                    }
                }
                text
            }
        };
        if value.is_empty() {
            return Err("the value is empty".into());
        }
        Ok(value)
    }

    fn path_of(&self, path: &str) -> PathBuf {
        let path = Path::new(path);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }
}

/// `watch.register`: this node's member value, put under `prefix + id` with
/// a lease that is kept alive.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Registration {
    /// Member id, the last key segment (no `/`).
    pub id: String,
    /// Advertised host.
    pub host: String,
    /// Advertised port (1..65535).
    pub port: u16,
    /// Lease TTL, at least 2 s (etcd's minimum); default 10 s.
    pub ttl: Duration,
    /// Member labels.
    pub labels: Labels,
}

impl Registration {
    /// The member value written under the key (CONTRACTS §1 schema).
    pub fn member(&self) -> MemberSpec {
        MemberSpec {
            id: NodeId::from(self.id.as_str()),
            host: self.host.clone(),
            port: self.port,
            labels: self.labels.clone(),
            blocked: false,
        }
    }
}

/// Credentials by reference.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub(crate) username: SecretRef,
    pub(crate) password: SecretRef,
}

/// TLS settings, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tls {
    pub(crate) ca: Option<String>,
    pub(crate) identity: Option<(String, SecretRef)>,
}

/// A checked `etcd` descriptor.
///
/// | `watch` key | type | default | meaning |
/// |---|---|---|---|
/// | `prefix` | string | required | key prefix; starts and ends with `/` |
/// | `register` | object | none | `{id, host, port, ttl, labels}`: self-registration |
///
/// `endpoints` (`http://` or `https://`, all of one scheme) are required;
/// `auth` is `{"username": REF, "password": REF}` (etcd has no bearer
/// tokens); `tls` needs `https` endpoints and `verify: true` (the etcd client
/// cannot switch verification off).
#[derive(Clone, PartialEq, Eq)]
pub struct EtcdConfig {
    pub(crate) id: String,
    pub(crate) endpoints: Vec<String>,
    pub(crate) prefix: String,
    pub(crate) register: Option<Registration>,
    pub(crate) credentials: Option<Credentials>,
    pub(crate) tls: Option<Tls>,
    pub(crate) https: bool,
}

impl EtcdConfig {
    /// Checks an `etcd` descriptor. Errors name the field.
    pub fn from_descriptor(descriptor: &ProviderDescriptor) -> Result<Self, EtcdError> {
        let id = descriptor.id.as_str();
        if descriptor.kind != ProviderKind::Etcd {
            return Err(EtcdError::invalid(
                id,
                "kind",
                format!("is {:?}, expected \"etcd\"", descriptor.kind.as_str()),
            ));
        }
        let (endpoints, https) = check_endpoints(id, &descriptor.endpoints)?;
        let (prefix, register) = parse_watch(id, &descriptor.watch)?;
        let credentials = match &descriptor.auth {
            None => None,
            Some(auth) => match (&auth.token, &auth.username, &auth.password) {
                (None, Some(username), Some(password)) => Some(Credentials {
                    username: username.clone(),
                    password: password.clone(),
                }),
                (Some(_), _, _) => {
                    return Err(EtcdError::invalid(
                        id,
                        "auth.token",
                        "etcd authenticates with `username` + `password`, not a token",
                    ));
                }
                (None, Some(_), None) => {
                    return Err(EtcdError::invalid(
                        id,
                        "auth.password",
                        "`username` needs `password`",
                    ));
                }
                (None, None, _) => {
                    return Err(EtcdError::invalid(
                        id,
                        "auth.username",
                        "needs `username` + `password`",
                    ));
                }
            },
        };
        let tls = match &descriptor.tls {
            None => None,
            Some(tls) => {
                if !tls.verify {
                    return Err(EtcdError::invalid(
                        id,
                        "tls.verify",
                        "the etcd backend always verifies the server certificate; give `tls.ca` instead",
                    ));
                }
                if !https {
                    return Err(EtcdError::invalid(
                        id,
                        "tls",
                        "TLS settings need https:// endpoints",
                    ));
                }
                let identity = match (&tls.cert, &tls.key) {
                    (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
                    (None, None) => None,
                    (Some(_), None) => {
                        return Err(EtcdError::invalid(id, "tls.key", "`cert` needs `key`"));
                    }
                    (None, Some(_)) => {
                        return Err(EtcdError::invalid(id, "tls.cert", "`key` needs `cert`"));
                    }
                };
                Some(Tls {
                    ca: tls.ca.clone(),
                    identity,
                })
            }
        };
        Ok(Self {
            id: id.to_owned(),
            endpoints,
            prefix,
            register,
            credentials,
            tls,
            https,
        })
    }

    /// The provider id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The endpoint URLs.
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// The watched key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The self-registration, if configured.
    pub fn registration(&self) -> Option<&Registration> {
        self.register.as_ref()
    }

    /// The key a member id lives under: prefix + id.
    pub fn member_key(&self, id: &str) -> String {
        format!("{}{id}", self.prefix)
    }
}

impl fmt::Debug for EtcdConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // References are not secrets, but keep the output short and obvious.
        f.debug_struct("EtcdConfig")
            .field("id", &self.id)
            .field("endpoints", &self.endpoints)
            .field("prefix", &self.prefix)
            .field("register", &self.register)
            .field("auth", &self.credentials.as_ref().map(|c| &c.username))
            .field("tls", &self.tls)
            .finish()
    }
}

fn check_endpoints(id: &str, endpoints: &[String]) -> Result<(Vec<String>, bool), EtcdError> {
    if endpoints.is_empty() {
        return Err(EtcdError::invalid(
            id,
            "endpoints",
            "at least one http:// or https:// URL is required",
        ));
    }
    let mut https = None;
    for (i, url) in endpoints.iter().enumerate() {
        let field = format!("endpoints[{i}]");
        let (secure, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(EtcdError::invalid(
                id,
                field,
                format!("{url:?} is not an http:// or https:// URL"),
            ));
        };
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') {
            return Err(EtcdError::invalid(
                id,
                field,
                format!("{url:?} must be scheme://host:port without a path"),
            ));
        }
        match https {
            None => https = Some(secure),
            Some(previous) if previous != secure => {
                return Err(EtcdError::invalid(
                    id,
                    field,
                    "all endpoints must use the same scheme",
                ));
            }
            Some(_) => {}
        }
    }
    let endpoints = endpoints
        .iter()
        .map(|u| u.trim_end_matches('/').to_owned())
        .collect();
    Ok((endpoints, https.unwrap_or(false)))
}

fn parse_watch(id: &str, watch: &WatchParams) -> Result<(String, Option<Registration>), EtcdError> {
    if let Some(key) = watch
        .keys()
        .find(|k| !matches!(k.as_str(), "prefix" | "register"))
    {
        return Err(EtcdError::invalid(
            id,
            format!("watch.{key}"),
            "unknown field (known: prefix, register)",
        ));
    }
    let prefix = match watch.get("prefix") {
        None => return Err(EtcdError::invalid(id, "watch.prefix", "is required")),
        Some(WatchValue::String(prefix)) => prefix.clone(),
        Some(other) => {
            return Err(EtcdError::invalid(
                id,
                "watch.prefix",
                format!("expected a string, found {}", other.type_name()),
            ));
        }
    };
    if !prefix.starts_with('/') || !prefix.ends_with('/') {
        return Err(EtcdError::invalid(
            id,
            "watch.prefix",
            "must start and end with '/'",
        ));
    }
    let register = match watch.get("register") {
        None | Some(WatchValue::Null) => None,
        Some(WatchValue::Object(map)) => Some(parse_register(id, map)?),
        Some(other) => {
            return Err(EtcdError::invalid(
                id,
                "watch.register",
                format!("expected an object, found {}", other.type_name()),
            ));
        }
    };
    Ok((prefix, register))
}

fn parse_register(
    id: &str,
    map: &std::collections::BTreeMap<String, WatchValue>,
) -> Result<Registration, EtcdError> {
    let field = |name: &str| format!("watch.register.{name}");
    if let Some(key) = map
        .keys()
        .find(|k| !matches!(k.as_str(), "id" | "host" | "port" | "ttl" | "labels"))
    {
        return Err(EtcdError::invalid(
            id,
            field(key),
            "unknown field (known: id, host, port, ttl, labels)",
        ));
    }
    let string = |name: &str| -> Result<String, EtcdError> {
        match map.get(name) {
            None => Err(EtcdError::invalid(id, field(name), "is required")),
            Some(WatchValue::String(s)) => Ok(s.clone()),
            Some(other) => Err(EtcdError::invalid(
                id,
                field(name),
                format!("expected a string, found {}", other.type_name()),
            )),
        }
    };
    let member_id = string("id")?;
    if member_id.is_empty() || member_id.contains('/') {
        return Err(EtcdError::invalid(
            id,
            field("id"),
            "must be non-empty and contain no '/'",
        ));
    }
    let host = string("host")?;
    if host.trim().is_empty() {
        return Err(EtcdError::invalid(id, field("host"), "must not be empty"));
    }
    let port = match map.get("port") {
        None => return Err(EtcdError::invalid(id, field("port"), "is required")),
        Some(WatchValue::Int(p)) => u16::try_from(*p).ok().filter(|p| *p > 0),
        Some(_) => None,
    }
    .ok_or_else(|| EtcdError::invalid(id, field("port"), "must be an integer in 1..65535"))?;
    let ttl = match map.get("ttl") {
        None => DEFAULT_TTL,
        Some(WatchValue::String(text)) => parse_duration(text)
            .map_err(|e| EtcdError::invalid(id, field("ttl"), format!("{e}: {text:?}")))?,
        Some(other) => {
            return Err(EtcdError::invalid(
                id,
                field("ttl"),
                format!("expected a duration string, found {}", other.type_name()),
            ));
        }
    };
    if ttl < MIN_TTL {
        return Err(EtcdError::invalid(
            id,
            field("ttl"),
            "must be at least 2s (etcd's minimum lease TTL)",
        ));
    }
    let mut labels = Labels::new();
    match map.get("labels") {
        None => {}
        Some(WatchValue::Object(entries)) => {
            for (key, value) in entries {
                match value {
                    WatchValue::String(v) => {
                        labels.insert(key.clone(), v.clone());
                    }
                    other => {
                        return Err(EtcdError::invalid(
                            id,
                            field(&format!("labels.{key}")),
                            format!("expected a string, found {}", other.type_name()),
                        ));
                    }
                }
            }
        }
        Some(other) => {
            return Err(EtcdError::invalid(
                id,
                field("labels"),
                format!("expected an object, found {}", other.type_name()),
            ));
        }
    }
    Ok(Registration {
        id: member_id,
        host,
        port,
        ttl,
        labels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> Result<EtcdConfig, EtcdError> {
        let descriptor: ProviderDescriptor = serde_json::from_str(json)
            .map_err(|e| EtcdError::invalid("t", "json", e.to_string()))?;
        EtcdConfig::from_descriptor(&descriptor)
    }

    fn field_of(json: &str) -> String {
        match config(json) {
            Err(EtcdError::InvalidConfig { field, .. }) => field,
            other => panic!("{json}: expected InvalidConfig, got {other:?}"),
        }
    }

    #[test]
    fn parses_the_contract_example() {
        let c = config(
            r#"{"id":"etcd-a","kind":"etcd","priority":10,"endpoints":["http://127.0.0.1:2379"],"watch":{"prefix":"/cluster/app/"},"enabled":true}"#,
        )
        .unwrap();
        assert_eq!(c.prefix(), "/cluster/app/");
        assert_eq!(c.endpoints(), ["http://127.0.0.1:2379"]);
        assert!(c.registration().is_none());
        assert_eq!(c.member_key("n1"), "/cluster/app/n1");
    }

    #[test]
    fn register_defaults_and_labels() {
        let c = config(
            r#"{"id":"e","kind":"etcd","priority":1,"endpoints":["http://h:1"],"watch":{"prefix":"/p/","register":{"id":"n1","host":"10.0.0.1","port":4000,"labels":{"zone":"a"}}}}"#,
        )
        .unwrap();
        let r = c.registration().unwrap();
        assert_eq!(r.ttl, Duration::from_secs(10));
        assert_eq!(r.member().labels.get("zone").map(String::as_str), Some("a"));
    }

    #[test]
    fn rejections_name_the_field() {
        let base = |watch: &str| {
            format!(
                r#"{{"id":"e","kind":"etcd","priority":1,"endpoints":["http://h:1"],"watch":{watch}}}"#
            )
        };
        for (json, field) in [
            (base("{}"), "watch.prefix"),
            (base(r#"{"prefix":"/a"}"#), "watch.prefix"),
            (base(r#"{"prefix":"a/"}"#), "watch.prefix"),
            (base(r#"{"prefix":7}"#), "watch.prefix"),
            (base(r#"{"prefix":"/a/","prefx":1}"#), "watch.prefx"),
            (base(r#"{"prefix":"/a/","register":{"id":"n","host":"h","port":1,"ttl":"1999ms"}}"#), "watch.register.ttl"),
            (base(r#"{"prefix":"/a/","register":{"id":"a/b","host":"h","port":1}}"#), "watch.register.id"),
            (base(r#"{"prefix":"/a/","register":{"id":"n","port":1}}"#), "watch.register.host"),
            (base(r#"{"prefix":"/a/","register":{"id":"n","host":"h","port":0}}"#), "watch.register.port"),
            (base(r#"{"prefix":"/a/","register":{"id":"n","host":"h","port":1,"labels":{"a":1}}}"#), "watch.register.labels.a"),
            (base(r#"{"prefix":"/a/","register":{"id":"n","host":"h","port":1,"tll":"3s"}}"#), "watch.register.tll"),
            (
                r#"{"id":"e","kind":"etcd","priority":1,"watch":{"prefix":"/a/"}}"#.into(),
                "endpoints",
            ),
            (
                r#"{"id":"e","kind":"etcd","priority":1,"endpoints":["h:1"],"watch":{"prefix":"/a/"}}"#.into(),
                "endpoints[0]",
            ),
            (
                r#"{"id":"e","kind":"etcd","priority":1,"endpoints":["http://h:1","https://h:2"],"watch":{"prefix":"/a/"}}"#.into(),
                "endpoints[1]",
            ),
            (
                r#"{"id":"e","kind":"etcd","priority":1,"endpoints":["http://h:1"],"auth":{"token":"env:T"},"watch":{"prefix":"/a/"}}"#.into(),
                "auth.token",
            ),
            (
                r#"{"id":"e","kind":"etcd","priority":1,"endpoints":["http://h:1"],"tls":{"ca":"ca.pem"},"watch":{"prefix":"/a/"}}"#.into(),
                "tls",
            ),
            (
                r#"{"id":"e","kind":"etcd","priority":1,"endpoints":["https://h:1"],"tls":{"verify":false},"watch":{"prefix":"/a/"}}"#.into(),
                "tls.verify",
            ),
            (
                r#"{"id":"e","kind":"etcd","priority":1,"endpoints":["https://h:1"],"tls":{"cert":"c.pem"},"watch":{"prefix":"/a/"}}"#.into(),
                "tls.key",
            ),
            (
                r#"{"id":"e","kind":"consul","priority":1,"endpoints":["http://h:1"],"watch":{"prefix":"/a/"}}"#.into(),
                "kind",
            ),
        ] {
            assert_eq!(field_of(&json), field, "{json}");
        }
    }

    #[test]
    fn secrets_from_files_drop_one_newline_and_never_show() {
        let dir = std::env::temp_dir().join(format!("etcd-secrets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("pw"), "s3cr3t\n").unwrap();
        let secrets = EnvFileSecrets::new(&dir);
        let pw = secrets
            .resolve(&SecretRef::parse("file:pw").unwrap())
            .unwrap();
        assert_eq!(pw, "s3cr3t");
        let missing = secrets
            .resolve(&SecretRef::parse("env:SURELY_NOT_SET_ETCD_1234").unwrap())
            .unwrap_err();
        assert!(missing.contains("not set"), "{missing}");
        let c = config(
            r#"{"id":"e","kind":"etcd","priority":1,"endpoints":["http://h:1"],"auth":{"username":"env:U","password":"file:pw"},"watch":{"prefix":"/a/"}}"#,
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("s3cr3t"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
