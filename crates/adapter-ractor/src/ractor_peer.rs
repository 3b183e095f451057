//! [`RactorPeer`]: how to reach a member's `NodeServer`, read from its labels.

use cluster_provisioning::api::{ClusterNode, NodeId, SecretRef};

/// Label naming the member's ractor node name (default: the member id). The
/// node's full name is `NAME@HOST`, HOST being the member's host.
pub const NODE_NAME_LABEL: &str = "ractor.node_name";
/// Label naming the port of the member's `NodeServer` (default: the
/// member's port).
pub const PORT_LABEL: &str = "ractor.port";
/// Label holding the secret reference (`env:NAME` or `file:PATH`) of the
/// cluster cookie; never the cookie itself.
pub const COOKIE_LABEL: &str = "ractor.cookie";

/// A member's `NodeServer` as its labels describe it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RactorPeer {
    /// The member id.
    pub id: NodeId,
    /// The full ractor node name, `NAME@HOST`, as the peer's `NodeServer`
    /// presents itself in a session.
    pub name: String,
    /// `HOST:PORT` to connect to.
    pub address: String,
    /// The cookie's secret reference, when the member names one.
    pub cookie: Option<SecretRef>,
}

/// A member label that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("member {member}: label {label}: {reason}")]
pub struct LabelError {
    /// The member.
    pub member: NodeId,
    /// The label key.
    pub label: &'static str,
    /// What is wrong (the value of a cookie label is never quoted).
    pub reason: String,
}

impl RactorPeer {
    /// Reads `member`'s labels ([`NODE_NAME_LABEL`], [`PORT_LABEL`],
    /// [`COOKIE_LABEL`]).
    pub fn from_member(member: &ClusterNode) -> Result<Self, LabelError> {
        let error = |label, reason: String| LabelError {
            member: member.id.clone(),
            label,
            reason,
        };
        let node_name = match member.labels.get(NODE_NAME_LABEL) {
            Some(name) if name.is_empty() || name.contains('@') => {
                return Err(error(
                    NODE_NAME_LABEL,
                    format!("{name:?} must be non-empty without '@'"),
                ));
            }
            Some(name) => name.clone(),
            None => member.id.as_str().to_owned(),
        };
        let port = match member.labels.get(PORT_LABEL) {
            Some(port) => match port.parse::<u16>() {
                Ok(port) if port > 0 => port,
                _ => {
                    return Err(error(
                        PORT_LABEL,
                        format!("{port:?} is not a port 1..65535"),
                    ));
                }
            },
            None => member.port,
        };
        let cookie = match member.labels.get(COOKIE_LABEL) {
            Some(reference) => Some(SecretRef::parse(reference).map_err(|e| {
                // The error names the form expected; the value may be an
                // inline cookie and is not quoted.
                error(COOKIE_LABEL, format!("not a secret reference: {e}"))
            })?),
            None => None,
        };
        let host = if member.host.contains(':') && !member.host.starts_with('[') {
            format!("[{}]", member.host)
        } else {
            member.host.clone()
        };
        Ok(Self {
            id: member.id.clone(),
            name: format!("{node_name}@{}", member.host),
            address: format!("{host}:{port}"),
            cookie,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_come_from_the_member() {
        let peer = RactorPeer::from_member(&ClusterNode::new("n1", "127.0.0.1", 4000))
            .expect("valid member");
        assert_eq!(peer.name, "n1@127.0.0.1");
        assert_eq!(peer.address, "127.0.0.1:4000");
        assert_eq!(peer.cookie, None);
    }

    #[test]
    fn labels_override_and_bad_labels_name_member_and_key() {
        let mut member = ClusterNode::new("n1", "::1", 4000);
        member.labels.insert(NODE_NAME_LABEL.into(), "app".into());
        member.labels.insert(PORT_LABEL.into(), "4100".into());
        member
            .labels
            .insert(COOKIE_LABEL.into(), "env:RACTOR_COOKIE".into());
        let peer = RactorPeer::from_member(&member).expect("valid labels");
        assert_eq!(peer.name, "app@::1");
        assert_eq!(peer.address, "[::1]:4100");
        assert_eq!(peer.cookie, SecretRef::parse("env:RACTOR_COOKIE").ok());

        member.labels.insert(PORT_LABEL.into(), "0".into());
        let e = RactorPeer::from_member(&member).expect_err("port 0");
        assert_eq!((e.member.as_str(), e.label), ("n1", PORT_LABEL));

        member.labels.insert(PORT_LABEL.into(), "4100".into());
        member
            .labels
            .insert(COOKIE_LABEL.into(), "hunter2-inline".into());
        let e = RactorPeer::from_member(&member).expect_err("inline cookie");
        assert_eq!(e.label, COOKIE_LABEL);
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }
}
