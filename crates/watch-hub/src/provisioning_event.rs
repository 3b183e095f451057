//! [`ProvisioningEvent`]: one event line of CONTRACTS §3.

use std::sync::Arc;

use crate::line_payloads::{
    ChangeEnvelope, HealthLine, ResyncLine, TerminatedLine, TopologyEnvelope, UnavailableLine,
};
use crate::published_snapshot::PublishedSnapshot;
use crate::run_id::RunId;

/// One event line of CONTRACTS §3.
///
/// Serialising writes the exact JSON object of the contract (`type` first,
/// then `run_id`, `seq_no`, `epoch` and the line's own fields); a snapshot
/// line streams from the shared snapshot.
///
/// ```
/// use provisioning_watch_hub::wire::{ProvisioningEvent, ResyncLine, RunId};
/// # fn resync() -> ResyncLine {
/// #     let snapshot = provisioning_watch_hub::wire::PublishedSnapshot::new(
/// #         RunId::from_u64(0x5d41402abc4b2a76), 40, 3,
/// #         provisioning_provider_api::ProviderId::new("k8s").unwrap(),
/// #         provisioning_provider_api::ProviderSnapshot::empty());
/// #     ResyncLine::for_snapshot(&snapshot)
/// # }
/// let line = ProvisioningEvent::Resync(resync());
/// assert_eq!(
///     line.to_json_line(),
///     r#"{"type":"resync","run_id":"5d41402abc4b2a76","epoch":3,"as_of_seq_no":40}"#
/// );
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ProvisioningEvent {
    /// `snapshot`: the active provider's complete view.
    Snapshot(Arc<PublishedSnapshot>),
    /// `remote_topology`: one change from the previous snapshot to this one.
    RemoteTopology(TopologyEnvelope),
    /// `provider_health`.
    ProviderHealth(HealthLine),
    /// `provider_changed`.
    ProviderChanged(ChangeEnvelope),
    /// `provisioning_unavailable`.
    ProvisioningUnavailable(UnavailableLine),
    /// `terminated`.
    Terminated(TerminatedLine),
    /// `resync`: for one consumer only, never in the history.
    Resync(ResyncLine),
}

impl ProvisioningEvent {
    /// The line's `type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Snapshot(_) => "snapshot",
            Self::RemoteTopology(_) => "remote_topology",
            Self::ProviderHealth(_) => "provider_health",
            Self::ProviderChanged(_) => "provider_changed",
            Self::ProvisioningUnavailable(_) => "provisioning_unavailable",
            Self::Terminated(_) => "terminated",
            Self::Resync(_) => "resync",
        }
    }

    /// The line's `seq_no`; for `resync`, which has none of its own (its
    /// JSON carries no `seq_no` key), the re-sent snapshot's `as_of_seq_no`.
    pub fn seq_no(&self) -> u64 {
        match self {
            Self::Snapshot(s) => s.seq_no(),
            Self::RemoteTopology(e) => e.seq_no,
            Self::ProviderHealth(l) => l.seq_no,
            Self::ProviderChanged(l) => l.seq_no,
            Self::ProvisioningUnavailable(l) => l.seq_no,
            Self::Terminated(l) => l.seq_no,
            Self::Resync(l) => l.as_of_seq_no,
        }
    }

    /// The line's `epoch`.
    pub fn epoch(&self) -> u64 {
        match self {
            Self::Snapshot(s) => s.epoch(),
            Self::RemoteTopology(e) => e.epoch(),
            Self::ProviderHealth(l) => l.epoch,
            Self::ProviderChanged(l) => l.epoch,
            Self::ProvisioningUnavailable(l) => l.epoch,
            Self::Terminated(l) => l.epoch,
            Self::Resync(l) => l.epoch,
        }
    }

    /// The line's `run_id`.
    pub fn run_id(&self) -> RunId {
        match self {
            Self::Snapshot(s) => s.run_id(),
            Self::RemoteTopology(e) => e.snapshot.run_id(),
            Self::ProviderHealth(l) => l.run_id,
            Self::ProviderChanged(l) => l.run_id,
            Self::ProvisioningUnavailable(l) => l.run_id,
            Self::Terminated(l) => l.run_id,
            Self::Resync(l) => l.run_id,
        }
    }

    /// The shared snapshot, for a `snapshot` line.
    pub fn as_snapshot(&self) -> Option<&Arc<PublishedSnapshot>> {
        match self {
            Self::Snapshot(s) => Some(s),
            _ => None,
        }
    }

    /// The line as one line of JSON, without the line end.
    pub fn to_json_line(&self) -> String {
        // Serialising these types into memory cannot fail: every map key is
        // a string and no Serialize impl here returns an error of its own.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Writes the line as JSON followed by `\n`, streaming into `writer`.
    pub fn write_json_line<W: std::io::Write>(&self, mut writer: W) -> std::io::Result<()> {
        serde_json::to_writer(&mut writer, self).map_err(std::io::Error::other)?;
        writer.write_all(b"\n")
    }
}

impl serde::Serialize for ProvisioningEvent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Snapshot(s) => s.serialize_line(serializer, true),
            Self::RemoteTopology(e) => e.serialize_line(serializer),
            Self::ProviderHealth(l) => l.serialize_line(serializer),
            Self::ProviderChanged(l) => l.serialize_line(serializer),
            Self::ProvisioningUnavailable(l) => l.serialize_line(serializer),
            Self::Terminated(l) => l.serialize_line(serializer),
            Self::Resync(l) => l.serialize_line(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use provisioning_provider_api::{
        ClusterNode, ProviderHealth, ProviderId, ProviderSnapshot, ProviderTermination,
        RemoteTopologyEvent, SwitchReason,
    };

    const RUN: RunId = RunId::from_u64(0x5d41_402a_bc4b_2a76);

    fn pid(id: &str) -> ProviderId {
        ProviderId::new(id).unwrap()
    }

    fn one_member(seq_no: u64) -> Arc<PublishedSnapshot> {
        let view = ProviderSnapshot::new(vec![ClusterNode::new("n1", "10.0.0.1", 4000)], vec![])
            .unwrap()
            .with_revision("1234");
        Arc::new(PublishedSnapshot::new(
            RUN,
            seq_no,
            1,
            pid("consul-a"),
            view,
        ))
    }

    #[test]
    fn golden_snapshot_line() {
        let snapshot = one_member(1);
        let hash = provisioning_provider_api::format_hash(snapshot.hash()).to_string();
        let expected = format!(
            r#"{{"type":"snapshot","run_id":"5d41402abc4b2a76","seq_no":1,"epoch":1,"provider_id":"consul-a","hash":"{hash}","health":"healthy","revision":"1234","members":[{{"id":"n1","host":"10.0.0.1","port":4000,"labels":{{}}}}],"blocked":[]}}"#
        );
        assert_eq!(
            ProvisioningEvent::Snapshot(snapshot).to_json_line(),
            expected
        );
    }

    #[test]
    fn golden_snapshot_line_with_labels_blocked_and_no_revision() {
        let view = ProviderSnapshot::new(
            vec![
                ClusterNode::new("n2", "10.0.0.2", 4001).with_label("zone", "a"),
                ClusterNode::new("n1", "127.0.0.1", 4000),
            ],
            vec!["n2".into()],
        )
        .unwrap();
        let snapshot = Arc::new(PublishedSnapshot::new(RUN, 3, 2, pid("etcd-a"), view));
        assert_eq!(
            ProvisioningEvent::Snapshot(snapshot.clone()).to_json_line(),
            r#"{"type":"snapshot","run_id":"5d41402abc4b2a76","seq_no":3,"epoch":2,"provider_id":"etcd-a","hash":"7eefaa892d336ceb","health":"healthy","revision":null,"members":[{"id":"n1","host":"127.0.0.1","port":4000,"labels":{}},{"id":"n2","host":"10.0.0.2","port":4001,"labels":{"zone":"a"}}],"blocked":["n2"]}"#
        );
        // `GET /topology`: the same object without `type`.
        assert!(
            serde_json::to_string(&*snapshot)
                .unwrap()
                .starts_with(r#"{"run_id":"5d41402abc4b2a76","seq_no":3,"#)
        );
    }

    #[test]
    fn golden_remote_topology_lines() {
        let snapshot = one_member(1);
        let hash = provisioning_provider_api::format_hash(snapshot.hash()).to_string();
        let join = ProvisioningEvent::RemoteTopology(TopologyEnvelope {
            seq_no: 2,
            event: RemoteTopologyEvent::Join(ClusterNode::new("n1", "10.0.0.1", 4000)),
            snapshot: snapshot.clone(),
        });
        assert_eq!(
            join.to_json_line(),
            format!(
                r#"{{"type":"remote_topology","run_id":"5d41402abc4b2a76","seq_no":2,"epoch":1,"event":"join","node_id":"n1","member":{{"id":"n1","host":"10.0.0.1","port":4000,"labels":{{}}}},"provider_id":"consul-a","snapshot_hash":"{hash}"}}"#
            )
        );
        let leave = ProvisioningEvent::RemoteTopology(TopologyEnvelope {
            seq_no: 3,
            event: RemoteTopologyEvent::Leave("n0".into()),
            snapshot,
        });
        assert_eq!(
            leave.to_json_line(),
            format!(
                r#"{{"type":"remote_topology","run_id":"5d41402abc4b2a76","seq_no":3,"epoch":1,"event":"leave","node_id":"n0","provider_id":"consul-a","snapshot_hash":"{hash}"}}"#
            )
        );
    }

    #[test]
    fn golden_v2_lines_carry_incarnation_and_draining_state() {
        use provisioning_provider_api::{Incarnation, MemberState};
        let node = ClusterNode::new("n1", "127.0.0.1", 4000)
            .with_incarnation(Incarnation::new("u-1").unwrap())
            .with_state(MemberState::Draining);
        let view = ProviderSnapshot::new(vec![node.clone()], vec![]).unwrap();
        let snapshot = Arc::new(PublishedSnapshot::new(RUN, 4, 1, pid("k8s"), view));
        let member = r#"{"id":"n1","host":"127.0.0.1","port":4000,"labels":{},"incarnation":"u-1","state":"draining"}"#;
        assert_eq!(
            ProvisioningEvent::Snapshot(snapshot.clone()).to_json_line(),
            format!(
                r#"{{"type":"snapshot","run_id":"5d41402abc4b2a76","seq_no":4,"epoch":1,"provider_id":"k8s","hash":"f5d24982c47543d6","health":"healthy","revision":null,"members":[{member}],"blocked":[]}}"#
            )
        );
        let draining = ProvisioningEvent::RemoteTopology(TopologyEnvelope {
            seq_no: 5,
            event: RemoteTopologyEvent::Draining(node.clone()),
            snapshot: snapshot.clone(),
        });
        assert_eq!(
            draining.to_json_line(),
            format!(
                r#"{{"type":"remote_topology","run_id":"5d41402abc4b2a76","seq_no":5,"epoch":1,"event":"draining","node_id":"n1","member":{member},"provider_id":"k8s","snapshot_hash":"f5d24982c47543d6"}}"#
            )
        );
        // Serving is the default: written as incarnation only.
        let serving_node = node.with_state(MemberState::Serving);
        let serving = ProvisioningEvent::RemoteTopology(TopologyEnvelope {
            seq_no: 6,
            event: RemoteTopologyEvent::Serving(serving_node.clone()),
            snapshot,
        });
        let line = serving.to_json_line();
        assert!(
            line.contains(r#""event":"serving","node_id":"n1","member":{"id":"n1","host":"127.0.0.1","port":4000,"labels":{},"incarnation":"u-1"},"#),
            "{line}"
        );
    }

    #[test]
    fn golden_other_lines() {
        let health = ProvisioningEvent::ProviderHealth(HealthLine {
            run_id: RUN,
            seq_no: 6,
            epoch: 1,
            provider_id: pid("consul-a"),
            health: ProviderHealth::Unreachable,
            code: Some("backend_unavailable".into()),
            detail: "3 consecutive errors: connection refused".into(),
        });
        assert_eq!(
            health.to_json_line(),
            r#"{"type":"provider_health","run_id":"5d41402abc4b2a76","seq_no":6,"epoch":1,"provider_id":"consul-a","health":"unreachable","code":"backend_unavailable","detail":"3 consecutive errors: connection refused"}"#
        );
        let changed = ProvisioningEvent::ProviderChanged(ChangeEnvelope {
            run_id: RUN,
            seq_no: 7,
            epoch: 2,
            from_provider_id: Some(pid("consul-a")),
            to_provider_id: pid("etcd-a"),
            reason: SwitchReason::Timeout,
            snapshot_hash: 0x0123_4567_89ab_cdef,
        });
        assert_eq!(
            changed.to_json_line(),
            r#"{"type":"provider_changed","run_id":"5d41402abc4b2a76","seq_no":7,"epoch":2,"from_provider_id":"consul-a","to_provider_id":"etcd-a","reason":"timeout","snapshot_hash":"0123456789abcdef"}"#
        );
        let unavailable = ProvisioningEvent::ProvisioningUnavailable(UnavailableLine {
            run_id: RUN,
            seq_no: 9,
            epoch: 2,
            since_ms: 1_764_230_400_000,
        });
        assert_eq!(
            unavailable.to_json_line(),
            r#"{"type":"provisioning_unavailable","run_id":"5d41402abc4b2a76","seq_no":9,"epoch":2,"since_ms":1764230400000}"#
        );
        let terminated = ProvisioningEvent::Terminated(TerminatedLine {
            run_id: RUN,
            seq_no: 12,
            epoch: 3,
            provider_id: pid("k8s"),
            termination: ProviderTermination::Errored {
                reason: "watch ended: 403 forbidden".into(),
                permanent: true,
            },
        });
        assert_eq!(
            terminated.to_json_line(),
            r#"{"type":"terminated","run_id":"5d41402abc4b2a76","seq_no":12,"epoch":3,"provider_id":"k8s","reason":"errored","detail":"watch ended: 403 forbidden"}"#
        );
        let resync = ProvisioningEvent::Resync(ResyncLine {
            run_id: RUN,
            epoch: 3,
            as_of_seq_no: 40,
        });
        assert_eq!(
            resync.to_json_line(),
            r#"{"type":"resync","run_id":"5d41402abc4b2a76","epoch":3,"as_of_seq_no":40}"#
        );
        assert_eq!(resync.seq_no(), 40);
        assert_eq!(resync.type_name(), "resync");
    }

    #[test]
    fn healthy_line_has_null_code() {
        let health = ProvisioningEvent::ProviderHealth(HealthLine {
            run_id: RUN,
            seq_no: 8,
            epoch: 1,
            provider_id: pid("consul-a"),
            health: ProviderHealth::Healthy,
            code: None,
            detail: String::new(),
        });
        assert!(
            health
                .to_json_line()
                .contains(r#""health":"healthy","code":null,"#)
        );
        let mut out = Vec::new();
        health.write_json_line(&mut out).unwrap();
        assert_eq!(out.last(), Some(&b'\n'));
    }
}
