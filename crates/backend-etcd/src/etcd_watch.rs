//! [`EtcdWatch`]: the `watch` schema of kind `etcd`.

use provisioning_provider_api::{ProviderDescriptor, WatchParams};
use serde::{Deserialize, Serialize};

use provisioning_registry::ProvisioningError;
use provisioning_registry::watch_schema::{parse_watch, watch_error};

use crate::EtcdRegistration;

/// `watch` of an `etcd` provider: members are JSON values
/// ([`MemberSpec`](provisioning_provider_api::MemberSpec)) under a key
/// prefix.
///
/// | key | type | default | meaning |
/// |---|---|---|---|
/// | `prefix` | string | required | key prefix; starts and ends with `/` |
/// | `register` | [`EtcdRegistration`] | none | put this node under the prefix with a lease |
///
/// `endpoints` are required.
///
/// ```
/// use provisioning_backend_etcd::EtcdWatch;
/// let watch = EtcdWatch::from_params(&serde_json::from_str(r#"{"prefix":"/cluster/app/"}"#)?)?;
/// assert_eq!(watch.prefix, "/cluster/app/");
/// assert!(EtcdWatch::from_params(&serde_json::from_str(r#"{"prefix":"cluster"}"#)?).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EtcdWatch {
    /// Key prefix, `/`-delimited on both ends.
    pub prefix: String,
    /// Lease-based self-registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub register: Option<EtcdRegistration>,
}

impl EtcdWatch {
    /// Parses and checks `watch`; errors name `watch.<key>`.
    pub fn from_params(params: &WatchParams) -> Result<Self, ProvisioningError> {
        let watch: Self = parse_watch(params)?;
        if !watch.prefix.starts_with('/') || !watch.prefix.ends_with('/') {
            return Err(watch_error("prefix", "must start and end with '/'"));
        }
        if let Some(register) = &watch.register {
            register.check().map_err(|e| e.within("watch.register"))?;
        }
        Ok(watch)
    }

    /// Parses the descriptor's `watch`; errors name the descriptor too.
    pub fn from_descriptor(descriptor: &ProviderDescriptor) -> Result<Self, ProvisioningError> {
        Self::from_params(&descriptor.watch).map_err(|e| e.with_provider(&descriptor.id))
    }

    /// The key a registered member is put under: prefix + id.
    pub fn member_key(&self, id: &str) -> String {
        format!("{}{id}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn parse(json: &str) -> Result<EtcdWatch, ProvisioningError> {
        EtcdWatch::from_params(&serde_json::from_str(json).unwrap())
    }

    #[test]
    fn register_parses_with_defaults() {
        let w = parse(r#"{"prefix":"/c/","register":{"id":"n1","host":"h","port":1}}"#).unwrap();
        let r = w.register.unwrap();
        assert_eq!(r.ttl, Duration::from_secs(10));
        assert!(r.labels.is_empty());
        assert_eq!(parse(r#"{"prefix":"/"}"#).unwrap().member_key("n1"), "/n1");
    }

    #[test]
    fn rejections_name_the_key() {
        for (json, field) in [
            (r#"{}"#, "watch.prefix"),
            (r#"{"prefix":"/a"}"#, "watch.prefix"),
            (r#"{"prefix":"a/"}"#, "watch.prefix"),
            (r#"{"prefix":""}"#, "watch.prefix"),
            (
                r#"{"prefix":"/a/","register":{"id":"n","host":"h","port":1,"ttl":"1s"}}"#,
                "watch.register.ttl",
            ),
            (
                r#"{"prefix":"/a/","register":{"id":"n","host":"h","port":1,"ttl":"1999ms"}}"#,
                "watch.register.ttl",
            ),
            (
                r#"{"prefix":"/a/","register":{"id":"a/b","host":"h","port":1}}"#,
                "watch.register.id",
            ),
            (
                r#"{"prefix":"/a/","register":{"id":"n","port":1}}"#,
                "watch.register.host",
            ),
            (
                r#"{"prefix":"/a/","register":{"id":"n","host":"h","port":1,"labels":{"a":1}}}"#,
                "watch.register.labels.a",
            ),
            (r#"{"prefix":"/a/","prefx":"/b/"}"#, "watch.prefx"),
        ] {
            let e = parse(json).unwrap_err();
            assert_eq!(e.field(), Some(field), "{json}: {e}");
        }
        assert!(
            parse(r#"{"prefix":"/a/","register":{"id":"n","host":"h","port":1,"ttl":"2s"}}"#)
                .is_ok()
        );
    }
}
