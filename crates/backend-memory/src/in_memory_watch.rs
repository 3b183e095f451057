//! [`InMemoryWatch`]: the `watch` schema of kind `in_memory`.

use provisioning_provider_api::{MemberSpec, ProviderDescriptor, ProviderSnapshot, WatchParams};
use serde::{Deserialize, Serialize};

use provisioning_registry::ProvisioningError;
use provisioning_registry::watch_schema::{parse_watch, watch_error};

/// `watch` of an `in_memory` provider: a static member list.
///
/// | key | type | default | meaning |
/// |---|---|---|---|
/// | `members` | array of [`MemberSpec`] | `[]` | `{"id", "host", "port", "labels"?, "blocked"?, "incarnation"?, "state"?}`; ids unique and non-empty |
///
/// `in_memory` providers take no `endpoints`.
///
/// ```
/// use provisioning_backend_memory::InMemoryWatch;
/// use provisioning_provider_api::{ProviderDescriptor, ProviderId, ProviderKind};
/// let d: ProviderDescriptor = serde_json::from_str(
///     r#"{"id":"local","kind":"in_memory","priority":0,"watch":{"members":[{"id":"n1","host":"127.0.0.1","port":4000}]}}"#,
/// )?;
/// let watch = InMemoryWatch::from_descriptor(&d)?;
/// assert_eq!(watch.snapshot()?.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InMemoryWatch {
    /// The members, in any order.
    #[serde(default)]
    pub members: Vec<MemberSpec>,
}

impl InMemoryWatch {
    /// Parses and checks `watch`; errors name `watch.<key>`.
    pub fn from_params(params: &WatchParams) -> Result<Self, ProvisioningError> {
        let watch: Self = parse_watch(params)?;
        watch.snapshot()?;
        Ok(watch)
    }

    /// Parses the descriptor's `watch`; errors name the descriptor too.
    pub fn from_descriptor(descriptor: &ProviderDescriptor) -> Result<Self, ProvisioningError> {
        Self::from_params(&descriptor.watch).map_err(|e| e.with_provider(&descriptor.id))
    }

    /// The members as a snapshot (duplicate or empty ids are errors).
    pub fn snapshot(&self) -> Result<ProviderSnapshot, ProvisioningError> {
        ProviderSnapshot::from_specs(self.members.iter().cloned())
            .map_err(|e| watch_error("members", e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use provisioning_provider_api::WatchValue;

    fn params(json: &str) -> WatchParams {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn members_default_empty_and_are_checked() {
        assert!(
            InMemoryWatch::from_params(&WatchParams::new())
                .unwrap()
                .members
                .is_empty()
        );
        let dup = params(
            r#"{"members":[{"id":"n1","host":"a","port":1},{"id":"n1","host":"b","port":2}]}"#,
        );
        let e = InMemoryWatch::from_params(&dup).unwrap_err();
        assert_eq!(e.field(), Some("watch.members"));
        let bad = params(r#"{"members":[{"id":"n1","host":"a","port":1,"zone":"x"}]}"#);
        let e = InMemoryWatch::from_params(&bad).unwrap_err();
        assert_eq!(e.field(), Some("watch.members[0].zone"));
        let mut unknown = WatchParams::new();
        unknown.insert("member".into(), WatchValue::Array(vec![]));
        let e = InMemoryWatch::from_params(&unknown).unwrap_err();
        assert_eq!(e.to_string(), r#"unknown field "watch.member""#);
    }
}
