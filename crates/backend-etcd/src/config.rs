//! [`EtcdConfig`]: what an `etcd` descriptor says, checked. The `watch`
//! schema is the registry's [`EtcdWatch`]; endpoints, `auth` and `tls` are
//! checked here.

use std::fmt;

use provisioning_provider_api::{ProviderDescriptor, ProviderId, ProviderKind, SecretRef};
use provisioning_registry::{EtcdRegistration, EtcdWatch};

use crate::EtcdError;

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
/// `watch` is [`EtcdWatch`] (`prefix`, required, starts and ends with `/`;
/// `register`, optional: `{id, host, port, ttl ≥ 2s, labels}`). `endpoints`
/// (`http://` or `https://`, all of one scheme) are required; `auth` is
/// `{"username": REF, "password": REF}` (etcd has no bearer tokens); `tls`
/// needs `https` endpoints and `verify: true` (the etcd client cannot switch
/// verification off).
#[derive(Clone, PartialEq, Eq)]
pub struct EtcdConfig {
    pub(crate) id: ProviderId,
    pub(crate) endpoints: Vec<String>,
    pub(crate) watch: EtcdWatch,
    pub(crate) credentials: Option<Credentials>,
    pub(crate) tls: Option<Tls>,
    pub(crate) https: bool,
}

impl EtcdConfig {
    /// Checks an `etcd` descriptor. Errors name the field.
    pub fn from_descriptor(descriptor: &ProviderDescriptor) -> Result<Self, EtcdError> {
        let id = &descriptor.id;
        if descriptor.kind != ProviderKind::Etcd {
            return Err(EtcdError::invalid(
                id,
                "kind",
                format!("is {:?}, expected \"etcd\"", descriptor.kind.as_str()),
            ));
        }
        let (endpoints, https) = check_endpoints(id, &descriptor.endpoints)?;
        let watch = EtcdWatch::from_descriptor(descriptor).map_err(EtcdError::Config)?;
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
            id: id.clone(),
            endpoints,
            watch,
            credentials,
            tls,
            https,
        })
    }

    /// The provider id.
    pub fn id(&self) -> &ProviderId {
        &self.id
    }

    /// The endpoint URLs.
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// The watched key prefix.
    pub fn prefix(&self) -> &str {
        &self.watch.prefix
    }

    /// The self-registration, if configured.
    pub fn registration(&self) -> Option<&EtcdRegistration> {
        self.watch.register.as_ref()
    }

    /// The key a member id lives under: prefix + id.
    pub fn member_key(&self, id: &str) -> String {
        self.watch.member_key(id)
    }
}

impl fmt::Debug for EtcdConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // References are not secrets; the password reference is left out to
        // keep the output short.
        f.debug_struct("EtcdConfig")
            .field("id", &self.id)
            .field("endpoints", &self.endpoints)
            .field("watch", &self.watch)
            .field("auth", &self.credentials.as_ref().map(|c| &c.username))
            .field("tls", &self.tls)
            .finish()
    }
}

fn check_endpoints(
    id: &ProviderId,
    endpoints: &[String],
) -> Result<(Vec<String>, bool), EtcdError> {
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn config(json: &str) -> Result<EtcdConfig, EtcdError> {
        let descriptor: ProviderDescriptor = serde_json::from_str(json).expect("descriptor json");
        EtcdConfig::from_descriptor(&descriptor)
    }

    fn field_of(json: &str) -> String {
        match config(json) {
            Err(EtcdError::Config(e)) => {
                assert_eq!(e.code(), "invalid_config", "{e}");
                e.field().unwrap_or_default().to_owned()
            }
            other => panic!("{json}: expected a config error, got {other:?}"),
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
        assert_eq!(r.labels.get("zone").map(String::as_str), Some("a"));
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
            (base(r#"{"prefix":"/a/","prefx":1}"#), "watch.prefx"),
            (
                base(r#"{"prefix":"/a/","register":{"id":"n","host":"h","port":1,"ttl":"1999ms"}}"#),
                "watch.register.ttl",
            ),
            (
                base(r#"{"prefix":"/a/","register":{"id":"a/b","host":"h","port":1}}"#),
                "watch.register.id",
            ),
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
    fn debug_shows_references_only() {
        let c = config(
            r#"{"id":"e","kind":"etcd","priority":1,"endpoints":["http://h:1"],"auth":{"username":"env:U","password":"file:pw"},"watch":{"prefix":"/a/"}}"#,
        )
        .unwrap();
        let text = format!("{c:?}");
        assert!(
            text.contains("env:U") && !text.contains("file:pw"),
            "{text}"
        );
    }
}
