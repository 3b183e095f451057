//! [`ConsulWatch`]: the `watch` schema of kind `consul`.

use std::fmt;
use std::time::Duration;

use provisioning_provider_api::{ProviderDescriptor, WatchParams, duration_serde};
use serde::{Deserialize, Serialize};

use provisioning_registry::ProvisioningError;
use provisioning_registry::watch_schema::{non_empty, parse_watch, watch_error};

use crate::ConsulRegistration;

/// Consul's server-side cap on a blocking query's `wait`.
const MAX_WAIT: Duration = Duration::from_secs(600);

fn default_true() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

fn default_wait() -> Duration {
    Duration::from_secs(4)
}

/// `watch` of a `consul` provider: a health-service blocking query
/// (`GET /v1/health/service/<service>?passing&index=..&wait=..`).
///
/// | key | type | default | meaning |
/// |---|---|---|---|
/// | `service` | string | required | the Consul service whose instances are the members |
/// | `passing` | bool | `true` | only instances whose checks all pass |
/// | `tag` | string | none | only instances with this tag |
/// | `filter` | string | none | a Consul filter expression |
/// | `dc` | string | the agent's | datacenter |
/// | `ns` | string | none | namespace (Consul Enterprise) |
/// | `consistency` | `default` \| `stale` \| `consistent` | `default` | read consistency mode |
/// | `wait` | duration | `4s` | blocking-query wait, at most `10m`; the quiet period is `wait × 17/16` |
/// | `id_from` | `service_id` \| `node` \| `meta:KEY` | `service_id` | where the member id comes from |
/// | `blocked_tag` | string | none | instances with this tag are on the block list |
/// | `blocked_meta` | string | none | instances with this service-meta key set to `"true"` are blocked |
/// | `register` | [`ConsulRegistration`] | none | register this node with a TTL check |
///
/// `endpoints` are required (the agent or server URLs).
///
/// ```
/// use std::time::Duration;
/// use provisioning_backend_consul::ConsulWatch;
/// let params = serde_json::from_str(r#"{"service":"app","wait":"4s"}"#)?;
/// let watch = ConsulWatch::from_params(&params)?;
/// assert!(watch.passing);
/// assert_eq!(watch.quiet_period(), Duration::from_millis(4250));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsulWatch {
    /// The service whose instances are the members.
    pub service: String,
    /// Only instances whose checks all pass.
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub passing: bool,
    /// Only instances with this tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// A Consul filter expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// Datacenter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dc: Option<String>,
    /// Namespace (Consul Enterprise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ns: Option<String>,
    /// Read consistency mode.
    #[serde(default)]
    pub consistency: ConsulConsistency,
    /// Blocking-query wait.
    #[serde(default = "default_wait", with = "duration_serde")]
    pub wait: Duration,
    /// Where the member id comes from.
    #[serde(default)]
    pub id_from: ConsulIdFrom,
    /// Instances with this tag are blocked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_tag: Option<String>,
    /// Instances with this service-meta key set to `"true"` are blocked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_meta: Option<String>,
    /// Self-registration of this node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub register: Option<ConsulRegistration>,
}

impl ConsulWatch {
    /// Parses and checks `watch`; errors name `watch.<key>`.
    pub fn from_params(params: &WatchParams) -> Result<Self, ProvisioningError> {
        let watch: Self = parse_watch(params)?;
        watch.check()?;
        Ok(watch)
    }

    /// Parses the descriptor's `watch`; errors name the descriptor too.
    pub fn from_descriptor(descriptor: &ProviderDescriptor) -> Result<Self, ProvisioningError> {
        Self::from_params(&descriptor.watch).map_err(|e| e.with_provider(&descriptor.id))
    }

    /// How long a healthy blocking query may stay silent: `wait × 17/16`
    /// (the server adds up to `wait / 16` of jitter). The facade rejects a
    /// policy whose `timeout / 3` does not exceed it.
    pub fn quiet_period(&self) -> Duration {
        self.wait
            .checked_mul(17)
            .map_or(Duration::MAX, |scaled| scaled / 16)
    }

    /// The conflict target: service, dc, ns, tag and filter.
    pub fn target(&self) -> [Option<&str>; 5] {
        [
            Some(self.service.as_str()),
            self.dc.as_deref(),
            self.ns.as_deref(),
            self.tag.as_deref(),
            self.filter.as_deref(),
        ]
    }

    fn check(&self) -> Result<(), ProvisioningError> {
        non_empty("service", Some(&self.service))?;
        non_empty("tag", self.tag.as_deref())?;
        non_empty("filter", self.filter.as_deref())?;
        non_empty("dc", self.dc.as_deref())?;
        non_empty("ns", self.ns.as_deref())?;
        non_empty("blocked_tag", self.blocked_tag.as_deref())?;
        non_empty("blocked_meta", self.blocked_meta.as_deref())?;
        if self.wait.is_zero() || self.wait > MAX_WAIT {
            return Err(watch_error("wait", "must be more than 0s and at most 10m"));
        }
        if let Some(register) = &self.register {
            register.check().map_err(|e| e.within("watch.register"))?;
        }
        Ok(())
    }
}

/// Consul read consistency (`consistency`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ConsulConsistency {
    /// The leader answers, without an extra round of confirmation.
    #[default]
    Default,
    /// Any server answers (possibly stale; see `X-Consul-LastContact`).
    Stale,
    /// The leader confirms its leadership first.
    Consistent,
}

/// Where a Consul member's id comes from (`id_from`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[non_exhaustive]
pub enum ConsulIdFrom {
    /// `service_id`: the service instance id (`Service.ID`).
    #[default]
    ServiceId,
    /// `node`: the node name (`Node.Node`).
    Node,
    /// `meta:KEY`: the service-meta value under `KEY`.
    Meta(String),
}

impl TryFrom<String> for ConsulIdFrom {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.as_str() {
            "service_id" => Ok(Self::ServiceId),
            "node" => Ok(Self::Node),
            other => match other.strip_prefix("meta:") {
                Some(key) if !key.is_empty() => Ok(Self::Meta(key.to_owned())),
                _ => Err(format!(
                    "expected `service_id`, `node` or `meta:KEY`, found {other:?}"
                )),
            },
        }
    }
}

impl fmt::Display for ConsulIdFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ServiceId => f.write_str("service_id"),
            Self::Node => f.write_str("node"),
            Self::Meta(key) => write!(f, "meta:{key}"),
        }
    }
}

impl From<ConsulIdFrom> for String {
    fn from(value: ConsulIdFrom) -> Self {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<ConsulWatch, ProvisioningError> {
        ConsulWatch::from_params(&serde_json::from_str(json).unwrap())
    }

    #[test]
    fn defaults() {
        let w = parse(r#"{"service":"app"}"#).unwrap();
        assert!(w.passing);
        assert_eq!(w.wait, Duration::from_secs(4));
        assert_eq!(w.consistency, ConsulConsistency::Default);
        assert_eq!(w.id_from, ConsulIdFrom::ServiceId);
        assert_eq!(w.quiet_period(), Duration::from_millis(4250));
        let huge = ConsulWatch {
            wait: Duration::MAX,
            ..w
        };
        assert_eq!(huge.quiet_period(), Duration::MAX);
    }

    #[test]
    fn every_key_parses() {
        let w = parse(
            r#"{"service":"app","passing":false,"tag":"t","filter":"f","dc":"dc1","ns":"n",
                "consistency":"stale","wait":"2s","id_from":"meta:node_id","blocked_tag":"b",
                "blocked_meta":"m","register":{"id":"n1","name":"app","address":"10.0.0.1",
                "port":4000,"ttl":"5s","tags":["x"]}}"#,
        )
        .unwrap();
        assert_eq!(w.id_from, ConsulIdFrom::Meta("node_id".into()));
        assert_eq!(w.consistency, ConsulConsistency::Stale);
        assert_eq!(w.register.unwrap().ttl, Duration::from_secs(5));
    }

    #[test]
    fn rejections_name_the_key() {
        for (json, field) in [
            (r#"{}"#, "watch.service"),
            (r#"{"service":""}"#, "watch.service"),
            (r#"{"service":"a","wait":"4"}"#, "watch.wait"),
            (r#"{"service":"a","wait":"0s"}"#, "watch.wait"),
            (r#"{"service":"a","wait":"11m"}"#, "watch.wait"),
            (
                r#"{"service":"a","consistency":"eventual"}"#,
                "watch.consistency",
            ),
            (r#"{"service":"a","id_from":"meta:"}"#, "watch.id_from"),
            (r#"{"service":"a","passing":"yes"}"#, "watch.passing"),
            (
                r#"{"service":"a","register":{"id":"n","name":"a"}}"#,
                "watch.register.port",
            ),
            (
                r#"{"service":"a","register":{"id":"","name":"a","port":1}}"#,
                "watch.register.id",
            ),
            (r#"{"servce":"a"}"#, "watch.servce"),
            (
                r#"{"service":"a","register":{"id":"n","name":"a","port":1,"ttl":"1s","tag":[]}}"#,
                "watch.register.tag",
            ),
        ] {
            let e = parse(json).unwrap_err();
            assert_eq!(e.code(), "invalid_config", "{json}");
            assert_eq!(e.field(), Some(field), "{json}: {e}");
        }
    }
}
