//! [`MemberMapping`]: how health entries become cluster members.

use crate::{ConsulIdFrom, ConsulWatch};
use provisioning_provider_api::{
    ClusterNode, Incarnation, Labels, MemberState, NodeId, ProviderSnapshot,
};

use crate::HealthEntry;

/// Prefix of labels made from tags. Consul meta keys are limited to
/// `[A-Za-z0-9_-]`, so `tag:` labels can never collide with meta labels.
pub const TAG_LABEL_PREFIX: &str = "tag:";

/// How a health entry becomes a member:
///
/// - id: `Service.ID` (`id_from: service_id`, the default), the node name
///   (`node`) or a service-meta value (`meta:KEY`);
/// - host: `Service.Address`, or `Node.Address` when empty;
/// - port: `Service.Port`;
/// - labels: every service-meta pair as is, and every tag `T` as the label
///   `tag:T` with an empty value — except the configured blocking tag and
///   meta key, which say "blocked" rather than describe the member;
/// - blocked: the instance carries `blocked_tag`, or its meta
///   `blocked_meta` is `"true"`;
/// - incarnation: the decimal `Service.CreateIndex` (a deregister and
///   register of the same id gets a new one), none when the answer has none;
/// - state: always serving. Consul has no draining signal: maintenance mode
///   takes an instance out of `passing` answers, so it simply leaves.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberMapping {
    /// Where the id comes from.
    pub id_from: ConsulIdFrom,
    /// A tag that puts the instance on the block list.
    pub blocked_tag: Option<String>,
    /// A meta key whose value `"true"` puts the instance on the block list.
    pub blocked_meta: Option<String>,
}

/// Why entries cannot form a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MappingError {
    /// The id source is empty for an instance.
    #[error("instance {instance:?} on node {node:?} has no {source_name}")]
    NoId {
        /// `Service.ID`.
        instance: String,
        /// `Node.Node`.
        node: String,
        /// The id source (`id_from`).
        source_name: String,
    },
    /// Neither the instance nor its node has an address.
    #[error("instance {instance:?} on node {node:?} has no address")]
    NoAddress {
        /// `Service.ID`.
        instance: String,
        /// `Node.Node`.
        node: String,
    },
    /// Two instances map to the same member id.
    #[error("duplicate member id {0:?} (check id_from)")]
    Duplicate(String),
}

impl MemberMapping {
    /// The mapping a `watch` describes.
    pub fn from_watch(watch: &ConsulWatch) -> Self {
        Self {
            id_from: watch.id_from.clone(),
            blocked_tag: watch.blocked_tag.clone(),
            blocked_meta: watch.blocked_meta.clone(),
        }
    }

    /// Maps one entry to a member and whether it is blocked.
    pub fn member(&self, entry: &HealthEntry) -> Result<(ClusterNode, bool), MappingError> {
        let service = &entry.service;
        let id = match &self.id_from {
            ConsulIdFrom::Node => entry.node.name.as_str(),
            ConsulIdFrom::Meta(key) => service.meta.get(key).map_or("", String::as_str),
            _ => service.id.as_str(),
        };
        if id.is_empty() {
            return Err(MappingError::NoId {
                instance: service.id.clone(),
                node: entry.node.name.clone(),
                source_name: self.id_from.to_string(),
            });
        }
        let host = if service.address.is_empty() {
            entry.node.address.as_str()
        } else {
            service.address.as_str()
        };
        if host.is_empty() {
            return Err(MappingError::NoAddress {
                instance: service.id.clone(),
                node: entry.node.name.clone(),
            });
        }
        let blocked_by_tag = self
            .blocked_tag
            .as_ref()
            .is_some_and(|t| service.tags.iter().any(|x| x == t));
        let blocked_by_meta = self
            .blocked_meta
            .as_ref()
            .is_some_and(|k| service.meta.get(k).is_some_and(|v| v == "true"));
        let mut labels = Labels::new();
        for (key, value) in &service.meta {
            if self.blocked_meta.as_ref() != Some(key) {
                labels.insert(key.clone(), value.clone());
            }
        }
        for tag in &service.tags {
            if self.blocked_tag.as_ref() != Some(tag) {
                labels.insert(format!("{TAG_LABEL_PREFIX}{tag}"), String::new());
            }
        }
        // A decimal u64 is 1–20 ASCII digits: always a valid incarnation.
        let incarnation = service
            .create_index
            .and_then(|index| Incarnation::new(index.to_string()).ok());
        let node = ClusterNode {
            id: NodeId::from(id),
            host: host.to_owned(),
            port: service.port,
            labels,
            incarnation,
            state: MemberState::Serving,
        };
        Ok((node, blocked_by_tag || blocked_by_meta))
    }

    /// Maps every entry into one snapshot.
    pub fn snapshot(&self, entries: &[HealthEntry]) -> Result<ProviderSnapshot, MappingError> {
        let mut members = Vec::with_capacity(entries.len());
        let mut blocked = Vec::new();
        for entry in entries {
            let (node, is_blocked) = self.member(entry)?;
            if is_blocked {
                blocked.push(node.id.clone());
            }
            members.push(node);
        }
        ProviderSnapshot::new(members, blocked).map_err(|e| match e {
            provisioning_provider_api::SnapshotError::DuplicateMember(id) => {
                MappingError::Duplicate(id.to_string())
            }
            other => MappingError::Duplicate(other.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode_health;
    use http::header::{HeaderMap, HeaderValue};

    fn entries(json: &str) -> Vec<HealthEntry> {
        let mut h = HeaderMap::new();
        h.insert("X-Consul-Index", HeaderValue::from_static("1"));
        decode_health(200, &h, json.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"))
            .entries
    }

    const TWO: &str = r#"[
      {"Node":{"Node":"node-1","Address":"10.0.0.1"},
       "Service":{"ID":"app-1","Tags":["primary","drain"],"Address":"","Meta":{"zone":"eu","node_id":"m1"},"Port":4001}},
      {"Node":{"Node":"node-2","Address":"10.0.0.2"},
       "Service":{"ID":"app-2","Tags":[],"Address":"192.168.0.2","Meta":{"blocked":"true","node_id":"m2"},"Port":4002}}
    ]"#;

    #[test]
    fn default_mapping() {
        let m = MemberMapping::default();
        let s = m.snapshot(&entries(TWO)).unwrap_or_else(|e| panic!("{e}"));
        let a = s.member("app-1").unwrap_or_else(|| panic!("app-1"));
        assert_eq!((a.host.as_str(), a.port), ("10.0.0.1", 4001));
        assert_eq!(a.labels.get("zone").map(String::as_str), Some("eu"));
        assert_eq!(a.labels.get("tag:primary").map(String::as_str), Some(""));
        let b = s.member("app-2").unwrap_or_else(|| panic!("app-2"));
        assert_eq!(b.host, "192.168.0.2");
        assert!(s.blocked().is_empty());
    }

    #[test]
    fn ids_and_blocking_are_configurable() {
        let m = MemberMapping {
            id_from: ConsulIdFrom::Meta("node_id".into()),
            blocked_tag: Some("drain".into()),
            blocked_meta: Some("blocked".into()),
        };
        let s = m.snapshot(&entries(TWO)).unwrap_or_else(|e| panic!("{e}"));
        let ids: Vec<_> = s.members().iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["m1", "m2"]);
        assert!(s.is_blocked("m1") && s.is_blocked("m2"));
        let m1 = s.member("m1").unwrap_or_else(|| panic!("m1"));
        assert!(!m1.labels.contains_key("tag:drain"));
        let m2 = s.member("m2").unwrap_or_else(|| panic!("m2"));
        assert!(!m2.labels.contains_key("blocked"));

        let by_node = MemberMapping {
            id_from: ConsulIdFrom::Node,
            ..MemberMapping::default()
        };
        let s = by_node
            .snapshot(&entries(TWO))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(s.member("node-2").is_some());
    }

    #[test]
    fn unusable_entries_are_named() {
        let same_node = r#"[
          {"Node":{"Node":"n","Address":"10.0.0.1"},"Service":{"ID":"a","Port":1}},
          {"Node":{"Node":"n","Address":"10.0.0.1"},"Service":{"ID":"b","Port":2}}]"#;
        let by_node = MemberMapping {
            id_from: ConsulIdFrom::Node,
            ..MemberMapping::default()
        };
        assert_eq!(
            by_node.snapshot(&entries(same_node)),
            Err(MappingError::Duplicate("n".into()))
        );
        let no_addr = r#"[{"Node":{"Node":"n","Address":""},"Service":{"ID":"a","Port":1}}]"#;
        assert!(matches!(
            MemberMapping::default().snapshot(&entries(no_addr)),
            Err(MappingError::NoAddress { .. })
        ));
        let by_meta = MemberMapping {
            id_from: ConsulIdFrom::Meta("k".into()),
            ..MemberMapping::default()
        };
        let e = by_meta.snapshot(&entries(no_addr)).err();
        assert!(e.is_some_and(|e| e.to_string().contains("meta:k")));
    }
}
