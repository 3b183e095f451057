//! [`HealthAnswer`]: a decoded `/v1/health/service` answer — the header
//! metadata ([`QueryMeta`]) and the entries with their node, service
//! instance and checks. Plain data, built by [`decode_health`](crate::decode_health).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

/// A decoded `/v1/health/service` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HealthAnswer {
    /// Header metadata.
    pub meta: QueryMeta,
    /// The entries, in Consul's order.
    pub entries: Vec<HealthEntry>,
}

/// The answer metadata Consul sends in headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueryMeta {
    /// `X-Consul-Index` (required): the position to block on next.
    pub index: u64,
    /// `X-Consul-KnownLeader` (optional; absent on the streaming backend).
    pub known_leader: Option<bool>,
    /// `X-Consul-LastContact` (optional): how stale the answering server is.
    pub last_contact: Option<Duration>,
    /// `X-Consul-Results-Filtered-By-ACLs: true`: the token may not see
    /// some of the results, so the list is not the whole truth.
    pub filtered_by_acls: bool,
}

/// One entry of a `/v1/health/service` answer: a service instance with its
/// node and checks.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct HealthEntry {
    /// The node the instance runs on.
    #[serde(rename = "Node")]
    pub node: NodeInfo,
    /// The service instance.
    #[serde(rename = "Service")]
    pub service: ServiceInfo,
    /// The node's and the instance's checks.
    #[serde(rename = "Checks", default, deserialize_with = "null_default")]
    pub checks: Vec<CheckInfo>,
}

/// The `Node` of a [`HealthEntry`] (only the fields the provider uses).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct NodeInfo {
    /// Node name (`Node.Node`).
    #[serde(rename = "Node")]
    pub name: String,
    /// Node address (`Node.Address`).
    #[serde(rename = "Address", default)]
    pub address: String,
    /// Datacenter.
    #[serde(rename = "Datacenter", default)]
    pub datacenter: String,
}

/// The `Service` of a [`HealthEntry`] (only the fields the provider uses).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct ServiceInfo {
    /// Instance id (`Service.ID`).
    #[serde(rename = "ID")]
    pub id: String,
    /// Service name.
    #[serde(rename = "Service", default)]
    pub name: String,
    /// Tags (`null` is read as empty).
    #[serde(rename = "Tags", default, deserialize_with = "null_default")]
    pub tags: Vec<String>,
    /// Instance address; empty means "the node's address".
    #[serde(rename = "Address", default)]
    pub address: String,
    /// Service meta (`null` is read as empty).
    #[serde(rename = "Meta", default, deserialize_with = "null_default")]
    pub meta: BTreeMap<String, String>,
    /// Port.
    #[serde(rename = "Port", default)]
    pub port: u16,
    /// The raft index at which the instance was registered: a deregister
    /// and register of the same id gets a new one (the member's
    /// incarnation). Absent in answers of very old agents.
    #[serde(rename = "CreateIndex", default)]
    pub create_index: Option<u64>,
}

/// One check of a [`HealthEntry`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct CheckInfo {
    /// Check id.
    #[serde(rename = "CheckID", default)]
    pub check_id: String,
    /// `passing`, `warning`, `critical` or `maintenance`.
    #[serde(rename = "Status", default)]
    pub status: String,
    /// The instance the check belongs to; empty for a node check.
    #[serde(rename = "ServiceID", default)]
    pub service_id: String,
}

fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}
