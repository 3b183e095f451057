//! [`EventLine`]: an event line of CONTRACTS §3 as a reader parses it.

use provisioning_provider_api::{
    ClusterNode, NodeId, ProviderHealth, ProviderId, ProviderTermination, RemoteTopologyEvent,
    SwitchReason,
};
use serde::Deserialize;

use crate::provisioning_event::ProvisioningEvent;
use crate::run_id::RunId;

/// An event line of CONTRACTS §3 as a reader parses it (`watch --json`, the
/// admin API's `/events`): owned data, no sharing. The hub publishes
/// [`ProvisioningEvent`]s; this is the other end of the wire. Unknown fields
/// are ignored, since the contract lets objects gain fields.
///
/// ```
/// use provisioning_watch_hub::wire::EventLine;
/// let line: EventLine = serde_json::from_str(
///     r#"{"type":"provisioning_unavailable","run_id":"5d41402abc4b2a76","seq_no":9,"epoch":2,"since_ms":1764230400000}"#,
/// )?;
/// assert_eq!(line.seq_no(), 9);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventLine {
    /// `snapshot`.
    Snapshot {
        /// The run.
        run_id: RunId,
        /// This line's number.
        seq_no: u64,
        /// The epoch.
        epoch: u64,
        /// The provider whose view it is.
        provider_id: ProviderId,
        /// The content hash.
        #[serde(with = "hex_hash")]
        hash: u64,
        /// The provider's health with this view.
        health: ProviderHealth,
        /// The backend position, if any.
        revision: Option<String>,
        /// Members, sorted by id.
        members: Vec<ClusterNode>,
        /// Blocked ids, sorted.
        blocked: Vec<NodeId>,
    },
    /// `remote_topology`.
    RemoteTopology {
        /// The run.
        run_id: RunId,
        /// This line's number.
        seq_no: u64,
        /// The epoch.
        epoch: u64,
        /// `join`, `leave`, `serving`, `draining`, `blocked` or `unblocked`.
        event: TopologyChange,
        /// The member the change is about.
        node_id: NodeId,
        /// The member, for a `join`, `serving` or `draining`.
        #[serde(default)]
        member: Option<ClusterNode>,
        /// The provider of the snapshot the change leads to.
        provider_id: ProviderId,
        /// The hash of that snapshot.
        #[serde(with = "hex_hash")]
        snapshot_hash: u64,
    },
    /// `provider_health`.
    ProviderHealth {
        /// The run.
        run_id: RunId,
        /// This line's number.
        seq_no: u64,
        /// The epoch.
        epoch: u64,
        /// The provider.
        provider_id: ProviderId,
        /// Its health.
        health: ProviderHealth,
        /// The error code; `None` when healthy.
        code: Option<String>,
        /// Free text.
        detail: String,
    },
    /// `provider_changed`.
    ProviderChanged {
        /// The run.
        run_id: RunId,
        /// This line's number.
        seq_no: u64,
        /// The new epoch.
        epoch: u64,
        /// The previously active provider.
        from_provider_id: Option<ProviderId>,
        /// The provider now active.
        to_provider_id: ProviderId,
        /// Why.
        reason: SwitchReason,
        /// The hash of the snapshot that follows.
        #[serde(with = "hex_hash")]
        snapshot_hash: u64,
    },
    /// `provisioning_unavailable`.
    ProvisioningUnavailable {
        /// The run.
        run_id: RunId,
        /// This line's number.
        seq_no: u64,
        /// The epoch.
        epoch: u64,
        /// Since when, in milliseconds since the Unix epoch.
        since_ms: u64,
    },
    /// `terminated`.
    Terminated {
        /// The run.
        run_id: RunId,
        /// This line's number.
        seq_no: u64,
        /// The epoch.
        epoch: u64,
        /// The provider.
        provider_id: ProviderId,
        /// `ended` or `errored`.
        reason: TerminationReason,
        /// Free text (empty for `ended`).
        detail: String,
    },
    /// `resync`: no `seq_no` of its own (the line has no such key).
    Resync {
        /// The run.
        run_id: RunId,
        /// The re-sent snapshot's epoch.
        epoch: u64,
        /// The consumer's new high-water mark.
        as_of_seq_no: u64,
    },
}

/// `remote_topology.event`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TopologyChange {
    /// `join`.
    Join,
    /// `leave`.
    Leave,
    /// `serving`: a draining member serves again.
    Serving,
    /// `draining`: a member is about to go.
    Draining,
    /// `blocked`.
    Blocked,
    /// `unblocked`.
    Unblocked,
}

/// `terminated.reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TerminationReason {
    /// `ended`.
    Ended,
    /// `errored`.
    Errored,
}

impl EventLine {
    /// The line's `seq_no`.
    pub fn seq_no(&self) -> u64 {
        match self {
            Self::Snapshot { seq_no, .. }
            | Self::RemoteTopology { seq_no, .. }
            | Self::ProviderHealth { seq_no, .. }
            | Self::ProviderChanged { seq_no, .. }
            | Self::ProvisioningUnavailable { seq_no, .. }
            | Self::Terminated { seq_no, .. }
            | Self::Resync {
                as_of_seq_no: seq_no,
                ..
            } => *seq_no,
        }
    }

    /// The line's `run_id`.
    pub fn run_id(&self) -> RunId {
        match self {
            Self::Snapshot { run_id, .. }
            | Self::RemoteTopology { run_id, .. }
            | Self::ProviderHealth { run_id, .. }
            | Self::ProviderChanged { run_id, .. }
            | Self::ProvisioningUnavailable { run_id, .. }
            | Self::Terminated { run_id, .. }
            | Self::Resync { run_id, .. } => *run_id,
        }
    }

    /// The change of a `remote_topology` line, as the provider API models it.
    pub fn topology_event(&self) -> Option<RemoteTopologyEvent> {
        let Self::RemoteTopology {
            event,
            node_id,
            member,
            ..
        } = self
        else {
            return None;
        };
        Some(match event {
            TopologyChange::Join => RemoteTopologyEvent::Join(member.clone()?),
            TopologyChange::Leave => RemoteTopologyEvent::Leave(node_id.clone()),
            TopologyChange::Serving => RemoteTopologyEvent::Serving(member.clone()?),
            TopologyChange::Draining => RemoteTopologyEvent::Draining(member.clone()?),
            TopologyChange::Blocked => RemoteTopologyEvent::Blocked(node_id.clone()),
            TopologyChange::Unblocked => RemoteTopologyEvent::Unblocked(node_id.clone()),
        })
    }
}

impl From<&ProvisioningEvent> for EventLine {
    /// The owned copy of a published line (copies a snapshot's members).
    fn from(event: &ProvisioningEvent) -> Self {
        match event {
            ProvisioningEvent::Snapshot(s) => Self::Snapshot {
                run_id: s.run_id(),
                seq_no: s.seq_no(),
                epoch: s.epoch(),
                provider_id: s.provider_id().clone(),
                hash: s.hash(),
                health: s.snapshot().health(),
                revision: s.snapshot().revision().map(str::to_owned),
                members: s.members().to_vec(),
                blocked: s.blocked().to_vec(),
            },
            ProvisioningEvent::RemoteTopology(e) => Self::RemoteTopology {
                run_id: e.snapshot.run_id(),
                seq_no: e.seq_no,
                epoch: e.epoch(),
                event: match &e.event {
                    RemoteTopologyEvent::Join(_) => TopologyChange::Join,
                    RemoteTopologyEvent::Leave(_) => TopologyChange::Leave,
                    RemoteTopologyEvent::Serving(_) => TopologyChange::Serving,
                    RemoteTopologyEvent::Draining(_) => TopologyChange::Draining,
                    RemoteTopologyEvent::Blocked(_) => TopologyChange::Blocked,
                    RemoteTopologyEvent::Unblocked(_) => TopologyChange::Unblocked,
                },
                node_id: e.event.node_id().clone(),
                member: e.event.member().cloned(),
                provider_id: e.provider_id().clone(),
                snapshot_hash: e.snapshot_hash(),
            },
            ProvisioningEvent::ProviderHealth(l) => Self::ProviderHealth {
                run_id: l.run_id,
                seq_no: l.seq_no,
                epoch: l.epoch,
                provider_id: l.provider_id.clone(),
                health: l.health,
                code: l.code.clone(),
                detail: l.detail.clone(),
            },
            ProvisioningEvent::ProviderChanged(l) => Self::ProviderChanged {
                run_id: l.run_id,
                seq_no: l.seq_no,
                epoch: l.epoch,
                from_provider_id: l.from_provider_id.clone(),
                to_provider_id: l.to_provider_id.clone(),
                reason: l.reason,
                snapshot_hash: l.snapshot_hash,
            },
            ProvisioningEvent::ProvisioningUnavailable(l) => Self::ProvisioningUnavailable {
                run_id: l.run_id,
                seq_no: l.seq_no,
                epoch: l.epoch,
                since_ms: l.since_ms,
            },
            ProvisioningEvent::Terminated(l) => Self::Terminated {
                run_id: l.run_id,
                seq_no: l.seq_no,
                epoch: l.epoch,
                provider_id: l.provider_id.clone(),
                reason: match l.termination {
                    ProviderTermination::Ended => TerminationReason::Ended,
                    ProviderTermination::Errored { .. } => TerminationReason::Errored,
                },
                detail: l.detail().to_owned(),
            },
            ProvisioningEvent::Resync(l) => Self::Resync {
                run_id: l.run_id,
                epoch: l.epoch,
                as_of_seq_no: l.as_of_seq_no,
            },
        }
    }
}

/// A hash as 16 lower-case hex digits.
mod hex_hash {
    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<u64, D::Error> {
        let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
        let well_formed = text.len() == 16
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !well_formed {
            return Err(serde::de::Error::custom(format!(
                "hash must be 16 lower-case hex digits, got {text:?}"
            )));
        }
        u64::from_str_radix(&text, 16).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example lines of CONTRACTS §3, with `resync` as the rules state
    /// it: no `seq_no` key.
    const CONTRACT_LINES: [&str; 7] = [
        r#"{"type":"snapshot","run_id":"5d41402abc4b2a76","seq_no":1,"epoch":1,"provider_id":"consul-a","hash":"9f0c3a1b2c3d4e5f","health":"healthy","revision":"1234","members":[{"id":"n1","host":"10.0.0.1","port":4000,"labels":{}}],"blocked":[]}"#,
        r#"{"type":"remote_topology","run_id":"5d41402abc4b2a76","seq_no":2,"epoch":1,"event":"join","node_id":"n1","member":{"id":"n1","host":"10.0.0.1","port":4000,"labels":{}},"provider_id":"consul-a","snapshot_hash":"9f0c3a1b2c3d4e5f"}"#,
        r#"{"type":"provider_health","run_id":"5d41402abc4b2a76","seq_no":6,"epoch":1,"provider_id":"consul-a","health":"unreachable","code":"backend_unavailable","detail":"3 consecutive errors: connection refused"}"#,
        r#"{"type":"provider_changed","run_id":"5d41402abc4b2a76","seq_no":7,"epoch":2,"from_provider_id":"consul-a","to_provider_id":"etcd-a","reason":"timeout","snapshot_hash":"0123456789abcdef"}"#,
        r#"{"type":"provisioning_unavailable","run_id":"5d41402abc4b2a76","seq_no":9,"epoch":2,"since_ms":1764230400000}"#,
        r#"{"type":"terminated","run_id":"5d41402abc4b2a76","seq_no":12,"epoch":3,"provider_id":"k8s","reason":"errored","detail":"watch ended: 403 forbidden"}"#,
        r#"{"type":"resync","run_id":"5d41402abc4b2a76","epoch":3,"as_of_seq_no":40}"#,
    ];

    #[test]
    fn parses_every_example_line_of_the_contract() {
        let lines: Vec<EventLine> = CONTRACT_LINES
            .iter()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        let seqs: Vec<u64> = lines.iter().map(EventLine::seq_no).collect();
        assert_eq!(seqs, [1, 2, 6, 7, 9, 12, 40]);
        assert!(
            lines
                .iter()
                .all(|l| l.run_id() == RunId::from_u64(0x5d41_402a_bc4b_2a76))
        );
        let EventLine::Snapshot { hash, members, .. } = &lines[0] else {
            panic!("snapshot");
        };
        assert_eq!(*hash, 0x9f0c_3a1b_2c3d_4e5f);
        assert_eq!(members[0], ClusterNode::new("n1", "10.0.0.1", 4000));
        assert_eq!(
            lines[1].topology_event(),
            Some(RemoteTopologyEvent::Join(ClusterNode::new(
                "n1", "10.0.0.1", 4000
            )))
        );
        assert!(matches!(
            &lines[3],
            EventLine::ProviderChanged {
                reason: SwitchReason::Timeout,
                snapshot_hash: 0x0123_4567_89ab_cdef,
                ..
            }
        ));
        assert!(matches!(
            &lines[5],
            EventLine::Terminated {
                reason: TerminationReason::Errored,
                ..
            }
        ));
    }

    #[test]
    fn rejects_malformed_hashes_and_accepts_added_fields() {
        let upper = CONTRACT_LINES[3].replace("0123456789abcdef", "0123456789ABCDEF");
        assert!(serde_json::from_str::<EventLine>(&upper).is_err());
        let short = CONTRACT_LINES[3].replace("0123456789abcdef", "abc");
        assert!(serde_json::from_str::<EventLine>(&short).is_err());
        let extended = CONTRACT_LINES[4].replace("}", r#","region":"eu"}"#);
        assert!(serde_json::from_str::<EventLine>(&extended).is_ok());
    }

    #[test]
    fn a_member_object_with_a_bad_incarnation_does_not_parse() {
        let line = |incarnation: &str| {
            format!(
                r#"{{"type":"remote_topology","run_id":"5d41402abc4b2a76","seq_no":2,"epoch":1,"event":"join","node_id":"n1","member":{{"id":"n1","host":"h","port":1,"labels":{{}},"incarnation":{incarnation}}},"provider_id":"k8s","snapshot_hash":"0123456789abcdef"}}"#
            )
        };
        assert!(serde_json::from_str::<EventLine>(&line(r#""ok""#)).is_ok());
        for bad in [
            r#""""#,
            r#""tab\u0007here""#,
            &format!("\"{}\"", "x".repeat(129)),
        ] {
            let err = serde_json::from_str::<EventLine>(&line(bad)).unwrap_err();
            assert!(err.to_string().contains("incarnation"), "{err}");
        }
    }

    #[test]
    fn draining_and_serving_lines_read_back_as_the_change_they_are() {
        use std::sync::Arc;

        use provisioning_provider_api::{Incarnation, MemberState, ProviderSnapshot};

        use crate::line_payloads::TopologyEnvelope;
        use crate::published_snapshot::PublishedSnapshot;

        let node = ClusterNode::new("n1", "127.0.0.1", 4000)
            .with_incarnation(Incarnation::new("u-1").unwrap())
            .with_state(MemberState::Draining);
        let view = ProviderSnapshot::new(vec![node.clone()], vec![]).unwrap();
        let snapshot = Arc::new(PublishedSnapshot::new(
            RunId::from_u64(1),
            4,
            1,
            ProviderId::new("k8s").unwrap(),
            view,
        ));
        let serving_node = node.clone().with_state(MemberState::Serving);
        for change in [
            RemoteTopologyEvent::Draining(node),
            RemoteTopologyEvent::Serving(serving_node),
        ] {
            let event = ProvisioningEvent::RemoteTopology(TopologyEnvelope {
                seq_no: 5,
                event: change.clone(),
                snapshot: snapshot.clone(),
            });
            let parsed: EventLine = serde_json::from_str(&event.to_json_line()).unwrap();
            assert_eq!(parsed.topology_event(), Some(change));
        }
    }
}
