//! [`EtcdConfig`]: what an `etcd` descriptor says, checked. The `watch`
//! schema is the registry's [`EtcdWatch`]; endpoints, `auth` and `tls` are
//! checked here.

use std::fmt;

use crate::{EtcdRegistration, EtcdWatch};
use provisioning_provider_api::{ProviderDescriptor, ProviderId, ProviderKind, SecretRef};

use crate::EtcdError;
use crate::client::InjectedClient;

/// Credentials by reference.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub(crate) username: SecretRef,
    pub(crate) password: SecretRef,
    /// etcdctl's `ETCDCTL_USER=name:password`: `username` names that one
    /// variable, which holds both (split at the first `:` when connecting).
    pub(crate) joined: bool,
}

/// The environment variables the etcd backend honours, as etcdctl does.
/// Credentials (`ETCDCTL_USER`, `ETCDCTL_PASSWORD`, `ETCDCTL_CERT`,
/// `ETCDCTL_KEY`) go only to endpoints listed in `ETCDCTL_ENDPOINTS`.
pub const ENV_VARIABLES: [&str; 6] = [
    "ETCDCTL_ENDPOINTS",
    "ETCDCTL_CACERT",
    "ETCDCTL_CERT",
    "ETCDCTL_KEY",
    "ETCDCTL_USER",
    "ETCDCTL_PASSWORD",
];

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
    /// A client the program built, used instead of connecting to
    /// `endpoints` with `credentials` and `tls` (set by the provider's
    /// builder, never by a descriptor).
    pub(crate) client: Option<InjectedClient>,
}

impl EtcdConfig {
    /// Checks an `etcd` descriptor. Errors name the field.
    ///
    /// What the descriptor leaves out comes from the environment, as
    /// etcdctl reads it ([`ENV_VARIABLES`]): `ETCDCTL_CACERT` is the CA of
    /// `https` endpoints; `ETCDCTL_USER` (`name` or `name:password`) with
    /// `ETCDCTL_PASSWORD`, and `ETCDCTL_CERT` + `ETCDCTL_KEY`, are used only
    /// when every endpoint is one of `ETCDCTL_ENDPOINTS` (same scheme, host
    /// and port) and the descriptor's `tls` names no CA of its own: the
    /// environment's credentials go to the etcd it names and nowhere a
    /// descriptor chose (CONTRACTS §4a rule 3). Variables left unused for
    /// that reason are named in a warning.
    pub fn from_descriptor(descriptor: &ProviderDescriptor) -> Result<Self, EtcdError> {
        Self::from_descriptor_in(descriptor, &|name| std::env::var(name).ok())
    }

    /// [`from_descriptor`](Self::from_descriptor) with `env` as the
    /// environment (the provider passes its secret resolver's lookup).
    pub(crate) fn from_descriptor_in(
        descriptor: &ProviderDescriptor,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, EtcdError> {
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
        let ambient = Ambient::new(id, &endpoints, descriptor, env);
        let credentials = match &descriptor.auth {
            None => ambient.credentials(),
            Some(auth) => match (&auth.token, &auth.username, &auth.password) {
                (None, Some(username), Some(password)) => Some(Credentials {
                    username: username.clone(),
                    password: password.clone(),
                    joined: false,
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
            None if https => ambient.tls(id)?,
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
                let identity = match identity {
                    Some(identity) => Some(identity),
                    None => ambient.identity(id)?,
                };
                Some(Tls {
                    ca: tls.ca.clone().or_else(|| env("ETCDCTL_CACERT")),
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
            client: None,
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

    /// How many connection attempts make one round of the endpoints: one
    /// per endpoint, or one with an injected client, which picks among its
    /// own endpoints — another attempt would be the same channel again.
    pub(crate) fn connect_attempts(&self) -> usize {
        if self.client.is_some() {
            1
        } else {
            self.endpoints.len()
        }
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
            .field("injected_client", &self.client.is_some())
            .finish()
    }
}

/// The environment's etcdctl settings, and whether its credentials may go
/// to this descriptor's endpoints.
struct Ambient<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    /// Every endpoint is in `ETCDCTL_ENDPOINTS` and the descriptor trusts
    /// no CA of its own.
    credentials_allowed: bool,
    id: &'a ProviderId,
}

impl<'a> Ambient<'a> {
    fn new(
        id: &'a ProviderId,
        endpoints: &[String],
        descriptor: &ProviderDescriptor,
        env: &'a dyn Fn(&str) -> Option<String>,
    ) -> Self {
        let listed: Vec<String> = env("ETCDCTL_ENDPOINTS")
            .map(|list| {
                list.split(',')
                    .map(|e| origin_of(e.trim()))
                    .filter(|e| !e.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let own_trust = descriptor.tls.as_ref().is_some_and(|t| t.ca.is_some());
        let credentials_allowed =
            !own_trust && endpoints.iter().all(|e| listed.contains(&origin_of(e)));
        Self {
            env,
            credentials_allowed,
            id,
        }
    }

    /// A credential variable's value, if set and allowed here.
    fn credential(&self, name: &str) -> Option<String> {
        let value = (self.env)(name)?;
        if self.credentials_allowed {
            return Some(value);
        }
        tracing::warn!(
            provider = %self.id,
            variable = name,
            "not used: the descriptor's endpoints are not all in ETCDCTL_ENDPOINTS (same scheme, host and port), or its `tls` names its own `ca`, and the environment's credentials are sent only to the etcd it names"
        );
        None
    }

    fn credentials(&self) -> Option<Credentials> {
        self.credential("ETCDCTL_USER")?;
        let user = SecretRef::Env("ETCDCTL_USER".into());
        Some(match self.credential("ETCDCTL_PASSWORD") {
            Some(_) => Credentials {
                username: user,
                password: SecretRef::Env("ETCDCTL_PASSWORD".into()),
                joined: false,
            },
            None => Credentials {
                username: user.clone(),
                password: user,
                joined: true,
            },
        })
    }

    fn identity(&self, id: &ProviderId) -> Result<Option<(String, SecretRef)>, EtcdError> {
        match (
            self.credential("ETCDCTL_CERT"),
            self.credential("ETCDCTL_KEY"),
        ) {
            (Some(cert), Some(key)) => {
                let key = SecretRef::parse(&format!("file:{key}"))
                    .map_err(|e| EtcdError::invalid(id, "tls.key", format!("ETCDCTL_KEY: {e}")))?;
                Ok(Some((cert, key)))
            }
            (None, None) => Ok(None),
            (Some(_), None) => Err(EtcdError::invalid(
                id,
                "tls.key",
                "ETCDCTL_CERT is set but ETCDCTL_KEY is not",
            )),
            (None, Some(_)) => Err(EtcdError::invalid(
                id,
                "tls.cert",
                "ETCDCTL_KEY is set but ETCDCTL_CERT is not",
            )),
        }
    }

    /// TLS for `https` endpoints from the environment alone, if it says
    /// anything.
    fn tls(&self, id: &ProviderId) -> Result<Option<Tls>, EtcdError> {
        let ca = (self.env)("ETCDCTL_CACERT");
        let identity = self.identity(id)?;
        Ok((ca.is_some() || identity.is_some()).then_some(Tls { ca, identity }))
    }
}

/// `scheme://host:port` of an endpoint URL, lower-cased, without a
/// trailing slash: what "the same endpoint" compares.
fn origin_of(url: &str) -> String {
    url.trim_end_matches('/').to_ascii_lowercase()
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
        EtcdConfig::from_descriptor_in(&descriptor, &|_| None)
    }

    fn config_in(json: &str, vars: &[(&str, &str)]) -> EtcdConfig {
        let descriptor: ProviderDescriptor = serde_json::from_str(json).expect("descriptor json");
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        EtcdConfig::from_descriptor_in(&descriptor, &|name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
        .expect("valid config")
    }

    fn etcd(endpoints: &str, extra: &str) -> String {
        format!(
            r#"{{"id":"e","kind":"etcd","priority":1,"endpoints":{endpoints}{extra},"watch":{{"prefix":"/a/"}}}}"#
        )
    }

    #[tokio::test]
    async fn an_injected_client_is_one_connection_attempt() {
        let mut c = config(&etcd(
            r#"["http://10.0.0.1:2379","http://10.0.0.2:2379","http://10.0.0.3:2379"]"#,
            "",
        ))
        .expect("valid config");
        assert_eq!(c.connect_attempts(), 3);
        // Connecting builds a lazy channel: nothing listens there.
        let client = etcd_client::Client::connect(["http://127.0.0.1:9"], None)
            .await
            .expect("a lazy client");
        c.client = Some(InjectedClient::new(client));
        assert_eq!(c.connect_attempts(), 1);
    }

    #[test]
    fn the_environments_user_goes_only_to_etcdctl_endpoints() {
        let env = [
            (
                "ETCDCTL_ENDPOINTS",
                "http://10.0.0.1:2379, HTTP://10.0.0.2:2379/",
            ),
            ("ETCDCTL_USER", "app:pw"),
        ];
        let joined = Credentials {
            username: SecretRef::Env("ETCDCTL_USER".into()),
            password: SecretRef::Env("ETCDCTL_USER".into()),
            joined: true,
        };
        // Every endpoint listed (case and a trailing slash aside): used.
        let listed = config_in(
            &etcd(r#"["http://10.0.0.2:2379","http://10.0.0.1:2379"]"#, ""),
            &env,
        );
        assert!(listed.credentials == Some(joined));
        // One endpoint elsewhere, another port, another scheme: not used.
        for endpoints in [
            r#"["http://10.0.0.1:2379","http://evil.example:2379"]"#,
            r#"["http://10.0.0.1:2380"]"#,
            r#"["https://10.0.0.1:2379"]"#,
        ] {
            let c = config_in(&etcd(endpoints, ""), &env);
            assert!(c.credentials.is_none(), "{endpoints}");
        }
        // Without ETCDCTL_ENDPOINTS no endpoint is the environment's.
        let c = config_in(&etcd(r#"["http://10.0.0.1:2379"]"#, ""), &env[1..]);
        assert!(c.credentials.is_none());
    }

    #[test]
    fn a_separate_password_and_the_descriptors_auth() {
        let env = [
            ("ETCDCTL_ENDPOINTS", "http://h:1"),
            ("ETCDCTL_USER", "name:with:colons"),
            ("ETCDCTL_PASSWORD", "pw"),
        ];
        let c = config_in(&etcd(r#"["http://h:1"]"#, ""), &env);
        assert!(
            c.credentials
                == Some(Credentials {
                    username: SecretRef::Env("ETCDCTL_USER".into()),
                    password: SecretRef::Env("ETCDCTL_PASSWORD".into()),
                    joined: false,
                })
        );
        let own = r#","auth":{"username":"env:U","password":"env:P"}"#;
        let c = config_in(&etcd(r#"["http://h:1"]"#, own), &env);
        assert!(
            c.credentials
                == Some(Credentials {
                    username: SecretRef::Env("U".into()),
                    password: SecretRef::Env("P".into()),
                    joined: false,
                })
        );
    }

    #[test]
    fn client_certificates_from_the_environment_follow_the_same_rule() {
        let env = [
            ("ETCDCTL_ENDPOINTS", "https://h:1"),
            ("ETCDCTL_CACERT", "/etc/etcd/ca.pem"),
            ("ETCDCTL_CERT", "/etc/etcd/client.pem"),
            ("ETCDCTL_KEY", "/etc/etcd/client-key.pem"),
        ];
        let c = config_in(&etcd(r#"["https://h:1"]"#, ""), &env);
        let key = SecretRef::File("/etc/etcd/client-key.pem".into());
        assert_eq!(
            c.tls,
            Some(Tls {
                ca: Some("/etc/etcd/ca.pem".into()),
                identity: Some(("/etc/etcd/client.pem".into(), key)),
            })
        );
        // Another endpoint: the CA (no secret) still applies, the identity
        // does not.
        let c = config_in(&etcd(r#"["https://other:1"]"#, ""), &env);
        assert_eq!(
            c.tls,
            Some(Tls {
                ca: Some("/etc/etcd/ca.pem".into()),
                identity: None,
            })
        );
        // A descriptor trusting its own CA gets no ambient identity either.
        let own_ca = r#","tls":{"ca":"mine.pem"}"#;
        let c = config_in(&etcd(r#"["https://h:1"]"#, own_ca), &env);
        assert_eq!(
            c.tls,
            Some(Tls {
                ca: Some("mine.pem".into()),
                identity: None,
            })
        );
        // Plain http: no TLS at all.
        let c = config_in(&etcd(r#"["http://h:1"]"#, ""), &env);
        assert_eq!(c.tls, None);
    }

    #[test]
    fn half_an_identity_in_the_environment_is_an_error() {
        let descriptor: ProviderDescriptor =
            serde_json::from_str(&etcd(r#"["https://h:1"]"#, "")).expect("json");
        for (vars, field) in [
            (vec![("ETCDCTL_CERT", "c.pem")], "tls.key"),
            (vec![("ETCDCTL_KEY", "k.pem")], "tls.cert"),
        ] {
            let mut vars = vars;
            vars.push(("ETCDCTL_ENDPOINTS", "https://h:1"));
            let lookup = |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            };
            match EtcdConfig::from_descriptor_in(&descriptor, &lookup) {
                Err(EtcdError::Config(e)) => assert_eq!(e.field(), Some(field), "{e}"),
                other => panic!("expected an error naming {field}, got {other:?}"),
            }
        }
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
