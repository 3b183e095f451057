//! [`change_lines`]: the `remote_topology` changes between two views as the
//! event lines of CONTRACTS §3 write them, for tests that assert exact lines
//! without running the hub.

use provisioning_provider_api::{ProviderSnapshot, diff, format_hash};

/// The `remote_topology` lines that turn `before` into `after`, in contract
/// order, each as the JSON object of CONTRACTS §3 without the fields the hub
/// adds when it publishes (`type`, `run_id`, `seq_no`, `epoch`,
/// `provider_id`): `event`, `node_id`, `member` (for `join`, `serving` and
/// `draining`; with `incarnation` only when the member has one and `state`
/// only when draining) and `snapshot_hash`.
///
/// ```
/// use provisioning_provider_api::{ClusterNode, ProviderSnapshot};
/// use provisioning_testkit::change_lines;
/// let before = ProviderSnapshot::empty();
/// let after = ProviderSnapshot::new(vec![ClusterNode::new("n1", "127.0.0.1", 4000)], vec![])?;
/// assert_eq!(
///     change_lines(&before, &after),
///     [r#"{"event":"join","node_id":"n1","member":{"id":"n1","host":"127.0.0.1","port":4000,"labels":{}},"snapshot_hash":"8cd9924dea78c53d"}"#]
/// );
/// # Ok::<(), provisioning_provider_api::SnapshotError>(())
/// ```
pub fn change_lines(before: &ProviderSnapshot, after: &ProviderSnapshot) -> Vec<String> {
    let hash = format_hash(after.hash()).to_string();
    diff(before, after)
        .iter()
        .map(|event| {
            let text = |s: &str| serde_json::to_string(s).unwrap_or_default();
            // `ClusterNode`'s serde form is the contract's member object, in
            // its field order.
            let member = event
                .member()
                .map(|m| {
                    format!(
                        r#","member":{}"#,
                        serde_json::to_string(m).unwrap_or_default()
                    )
                })
                .unwrap_or_default();
            format!(
                r#"{{"event":{},"node_id":{}{member},"snapshot_hash":"{hash}"}}"#,
                text(event.kind().as_str()),
                text(event.node_id().as_str()),
            )
        })
        .collect()
}
