//! [`ConsulRegistration`]: optional self-registration of a Consul provider.

use std::time::Duration;

use provisioning_provider_api::duration_serde;
use serde::{Deserialize, Serialize};

use provisioning_registry::ProvisioningError;

fn default_ttl() -> Duration {
    Duration::from_secs(10)
}

/// `watch.register` of a `consul` provider: register this node as a service
/// instance through the agent API with a TTL check, pass the check
/// periodically, deregister on shutdown.
///
/// | key | type | default | meaning |
/// |---|---|---|---|
/// | `id` | string | required | service instance id (the member id under `id_from: service_id`) |
/// | `name` | string | required | service name (normally the watched `service`) |
/// | `address` | string | the agent's node address | address other members connect to |
/// | `port` | 1..65535 | required | port other members connect to |
/// | `ttl` | duration | `10s` | TTL of the check, at least `1s`; passed every third of it |
/// | `tags` | array of strings | `[]` | service tags |
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsulRegistration {
    /// Service instance id.
    pub id: String,
    /// Service name.
    pub name: String,
    /// Advertised address; the agent's node address when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Advertised port.
    pub port: u16,
    /// TTL of the health check.
    #[serde(default = "default_ttl", with = "duration_serde")]
    pub ttl: Duration,
    /// Service tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

impl ConsulRegistration {
    /// Checks values serde cannot; field paths are relative (`id`, `ttl`).
    pub(crate) fn check(&self) -> Result<(), ProvisioningError> {
        let field = |name: &str, message: &str| {
            Err(ProvisioningError::invalid(
                None,
                Some(name.to_owned()),
                message,
            ))
        };
        if self.id.trim().is_empty() {
            return field("id", "must not be empty");
        }
        if self.name.trim().is_empty() {
            return field("name", "must not be empty");
        }
        if self.address.as_deref().is_some_and(|a| a.trim().is_empty()) {
            return field("address", "must not be empty");
        }
        if self.port == 0 {
            return field("port", "must be 1..65535");
        }
        if self.ttl < Duration::from_secs(1) {
            return field("ttl", "must be at least 1s");
        }
        Ok(())
    }
}
