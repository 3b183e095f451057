//! [`EtcdRegistration`]: optional lease-based self-registration of an etcd
//! provider.

use std::time::Duration;

use provisioning_provider_api::{Labels, duration_serde};
use serde::{Deserialize, Serialize};

use provisioning_registry::ProvisioningError;

/// etcd's minimum lease TTL.
const MIN_TTL: Duration = Duration::from_secs(2);

fn default_ttl() -> Duration {
    Duration::from_secs(10)
}

/// `watch.register` of an `etcd` provider: put this node's member value
/// under `prefix + id`, attached to a lease that is kept alive.
///
/// | key | type | default | meaning |
/// |---|---|---|---|
/// | `id` | string | required | member id and last key segment (no `/`) |
/// | `host` | string | required | host other members connect to |
/// | `port` | 1..65535 | required | port other members connect to |
/// | `ttl` | duration | `10s` | lease TTL, at least `2s` (etcd's minimum) |
/// | `labels` | object of strings | `{}` | member labels |
/// | `drain` | duration | `0s` | graceful leave: on shutdown the value is first rewritten with `"state": "draining"` and the lease kept this long, then revoked, so other services see `draining` before `leave` |
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EtcdRegistration {
    /// Member id.
    pub id: String,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: u16,
    /// Lease TTL.
    #[serde(default = "default_ttl", with = "duration_serde")]
    pub ttl: Duration,
    /// Member labels.
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    pub labels: Labels,
    /// How long the member is announced draining before it leaves on
    /// shutdown; zero (the default) revokes at once.
    #[serde(
        default,
        with = "duration_serde",
        skip_serializing_if = "Duration::is_zero"
    )]
    pub drain: Duration,
}

impl EtcdRegistration {
    /// Checks values serde cannot; field paths are relative (`id`, `ttl`).
    pub(crate) fn check(&self) -> Result<(), ProvisioningError> {
        let field = |name: &str, message: &str| {
            Err(ProvisioningError::invalid(
                None,
                Some(name.to_owned()),
                message,
            ))
        };
        if self.id.is_empty() || self.id.contains('/') {
            return field("id", "must be non-empty and contain no '/'");
        }
        if self.host.trim().is_empty() {
            return field("host", "must not be empty");
        }
        if self.port == 0 {
            return field("port", "must be 1..65535");
        }
        if self.ttl < MIN_TTL {
            return field("ttl", "must be at least 2s (etcd's minimum lease TTL)");
        }
        Ok(())
    }
}
