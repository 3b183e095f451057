//! The decoder of watched objects: [`pod_members`] and [`slice_members`],
//! pure functions over Pods and EndpointSlices that apply a
//! [`MemberMapping`], testable (and fuzzable) without a network.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use provisioning_provider_api::{ClusterNode, Incarnation, Labels, MemberState};

use crate::mapping::MemberMapping;

/// One member an object yields, with its block flag.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MappedMember {
    /// The member.
    pub node: ClusterNode,
    /// Whether it is on the block list.
    pub blocked: bool,
}

/// What one object contributes to the view.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ObjectMembers {
    /// Members the object yields (none, one for a pod, many for a slice).
    pub members: Vec<MappedMember>,
    /// Why candidates were left out although they looked like members
    /// (running and ready, but no usable port or address, or a uid that is
    /// not an incarnation). Logged, not faulted: one bad pod must not hide
    /// the others.
    pub unusable: Vec<String>,
}

/// Maps a pod: a member when it is `Running`, has a pod IP, is ready
/// (unless `include_unready`) and has a port: the `port_label`'s value,
/// else the container port named `port_name`, else the first declared
/// container port. Id = pod name, host = pod IP, labels = labels and
/// annotations (see [`MemberMapping`] for what is left out; a label wins
/// over an annotation of the same key), blocked = the `blocked_annotation`
/// is `"true"`, incarnation = `metadata.uid` (a pod recreated under the same
/// name is a new life). A pod being deleted (`deletionTimestamp`) stays a
/// member, `Draining`, while it is still Ready with its IP: its grace period
/// is the time to hand its work off; unready, it is gone.
pub fn pod_members(pod: &Pod, mapping: &MemberMapping) -> ObjectMembers {
    let mut out = ObjectMembers::default();
    let meta = &pod.metadata;
    let Some(name) = meta.name.as_deref().filter(|n| !n.is_empty()) else {
        return out;
    };
    let Some(status) = &pod.status else {
        return out;
    };
    if status.phase.as_deref() != Some("Running") {
        return out;
    }
    let ready = status.conditions.as_ref().is_some_and(|conditions| {
        conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    });
    let terminating = meta.deletion_timestamp.is_some();
    if terminating && !ready {
        return out;
    }
    if !ready && !mapping.include_unready {
        return out;
    }
    let incarnation = match incarnation_of(meta.uid.as_deref()) {
        Ok(incarnation) => incarnation,
        Err(why) => {
            out.unusable
                .push(format!("pod {name}: metadata.uid: {why}"));
            return out;
        }
    };
    let Some(ip) = status.pod_ip.as_deref().filter(|ip| !ip.is_empty()) else {
        return out;
    };
    let labels = meta.labels.as_ref();
    let annotations = meta.annotations.as_ref();
    let port = match pod_port(pod, mapping) {
        Ok(port) => port,
        Err(why) => {
            out.unusable.push(format!("pod {name}: {why}"));
            return out;
        }
    };
    let mut member_labels = Labels::new();
    for (key, value) in annotations.into_iter().flatten() {
        if mapping.keeps_key(key, value, false) {
            member_labels.insert(key.clone(), value.clone());
        }
    }
    for (key, value) in labels.into_iter().flatten() {
        if mapping.keeps_key(key, value, true) {
            member_labels.insert(key.clone(), value.clone());
        }
    }
    let blocked = mapping
        .blocked_annotation
        .as_deref()
        .and_then(|a| annotations.and_then(|m| m.get(a)))
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let mut node = ClusterNode::new(name, ip, port);
    node.labels = member_labels;
    node.incarnation = incarnation;
    if terminating {
        node.state = MemberState::Draining;
    }
    out.members.push(MappedMember { node, blocked });
    out
}

/// The incarnation an object's uid names: none when there is no uid (never
/// invented), an error naming the problem when the uid is not 1–128 bytes
/// of printable ASCII.
fn incarnation_of(uid: Option<&str>) -> Result<Option<Incarnation>, String> {
    match uid {
        None | Some("") => Ok(None),
        Some(uid) => Incarnation::new(uid).map(Some).map_err(|e| e.to_string()),
    }
}

fn pod_port(pod: &Pod, mapping: &MemberMapping) -> Result<u16, String> {
    if let Some(label) = &mapping.port_label {
        let value = pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(label))
            .ok_or_else(|| format!("no label {label:?} for the port"))?;
        return parse_port(value)
            .ok_or_else(|| format!("label {label:?} = {value:?} is not a port"));
    }
    let ports = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .flat_map(|c| c.ports.iter().flatten());
    let mut ports = ports.peekable();
    match &mapping.port_name {
        Some(wanted) => ports
            .find(|p| p.name.as_deref() == Some(wanted.as_str()))
            .ok_or_else(|| format!("no container port named {wanted:?}"))
            .and_then(|p| {
                port_number(p.container_port).ok_or_else(|| format!("port {wanted:?} out of range"))
            }),
        None => ports
            .next()
            .ok_or_else(|| "no container port (set watch.port_name or watch.port_label)".into())
            .and_then(|p| port_number(p.container_port).ok_or_else(|| "port out of range".into())),
    }
}

fn parse_port(text: &str) -> Option<u16> {
    text.trim().parse::<u16>().ok().filter(|p| *p != 0)
}

fn port_number(n: i32) -> Option<u16> {
    u16::try_from(n).ok().filter(|p| *p != 0)
}

/// Maps an EndpointSlice: every endpoint that is not terminating and is
/// ready (unless `include_unready`; a missing `ready` counts as ready, and
/// falls back to `serving` when only that is set) becomes a member, and so
/// does a terminating endpoint that is still `serving`, as `Draining` (it is
/// about to go; before, it was dropped at once and its grace period lost).
/// Id = the endpoint's `targetRef` name, else its first address; host = its
/// first address; port = the slice port named `port_name`, else the first
/// slice port with a number; no labels; incarnation = the `targetRef` uid
/// (none without a `targetRef`); blocked = the slice's `blocked_annotation`
/// is `"true"` (slices are annotated as a whole).
pub fn slice_members(slice: &EndpointSlice, mapping: &MemberMapping) -> ObjectMembers {
    let mut out = ObjectMembers::default();
    let slice_name = slice.metadata.name.as_deref().unwrap_or("<unnamed>");
    if slice.metadata.deletion_timestamp.is_some() {
        return out;
    }
    let ports = slice.ports.iter().flatten();
    let port = match &mapping.port_name {
        Some(wanted) => ports
            .filter(|p| p.name.as_deref() == Some(wanted.as_str()))
            .find_map(|p| p.port.and_then(port_number)),
        None => ports.into_iter().find_map(|p| p.port.and_then(port_number)),
    };
    let blocked = mapping
        .blocked_annotation
        .as_deref()
        .and_then(|a| slice.metadata.annotations.as_ref().and_then(|m| m.get(a)))
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    for endpoint in &slice.endpoints {
        let conditions = endpoint.conditions.as_ref();
        let terminating = conditions.and_then(|c| c.terminating).unwrap_or(false);
        if terminating {
            // Kubernetes reports a terminating endpoint not `ready`; only
            // `serving` says whether it still takes traffic.
            if conditions.and_then(|c| c.serving) != Some(true) {
                continue;
            }
        } else {
            let ready = conditions
                .and_then(|c| c.ready.or(c.serving))
                .unwrap_or(true);
            if !ready && !mapping.include_unready {
                continue;
            }
        }
        let Some(address) = endpoint.addresses.first().filter(|a| !a.is_empty()) else {
            continue;
        };
        let id = endpoint
            .target_ref
            .as_ref()
            .and_then(|r| r.name.as_deref())
            .filter(|n| !n.is_empty())
            .unwrap_or(address);
        let Some(port) = port else {
            let wanted = mapping.port_name.as_deref().unwrap_or("<any>");
            out.unusable.push(format!(
                "slice {slice_name}: endpoint {id}: no port {wanted:?}"
            ));
            continue;
        };
        let uid = endpoint.target_ref.as_ref().and_then(|r| r.uid.as_deref());
        let incarnation = match incarnation_of(uid) {
            Ok(incarnation) => incarnation,
            Err(why) => {
                out.unusable.push(format!(
                    "slice {slice_name}: endpoint {id}: targetRef.uid: {why}"
                ));
                continue;
            }
        };
        let mut node = ClusterNode::new(id, address.as_str(), port);
        node.incarnation = incarnation;
        if terminating {
            node.state = MemberState::Draining;
        }
        out.members.push(MappedMember { node, blocked });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KubeWatchConfig;
    use k8s_openapi::api::core::v1::{
        Container, ContainerPort, ObjectReference, PodCondition, PodSpec, PodStatus,
    };
    use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn pod(name: &str, ready: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(
                    [("app", "actors"), ("zone", "a"), ("port", "7001")]
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .into(),
                ),
                annotations: Some(
                    [
                        ("blocked", "true"),
                        ("kubectl.kubernetes.io/last-applied-configuration", "{}"),
                        ("role", "placement"),
                    ]
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .into(),
                ),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "app".into(),
                    ports: Some(vec![
                        ContainerPort {
                            name: Some("http".into()),
                            container_port: 8080,
                            ..Default::default()
                        },
                        ContainerPort {
                            name: Some("remoting".into()),
                            container_port: 4000,
                            ..Default::default()
                        },
                    ]),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some("Running".into()),
                pod_ip: Some("10.0.0.7".into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    fn mapping(config: KubeWatchConfig) -> MemberMapping {
        MemberMapping::new(&config)
    }

    #[test]
    fn ready_running_pod_is_a_member_with_its_labels() {
        let m = mapping(
            KubeWatchConfig::pods("app=actors")
                .with_port_name("remoting")
                .with_blocked_annotation("blocked"),
        );
        let out = pod_members(&pod("p1", true), &m);
        assert_eq!(out.members.len(), 1);
        let member = &out.members[0];
        assert!(member.blocked);
        assert_eq!(member.node.host, "10.0.0.7");
        assert_eq!(member.node.port, 4000);
        let keys: Vec<_> = member.node.labels.keys().map(String::as_str).collect();
        assert_eq!(keys, ["port", "role", "zone"]);
    }

    #[test]
    fn pod_filters() {
        let m = mapping(KubeWatchConfig::pods("app=actors").with_port_label("port"));
        assert_eq!(pod_members(&pod("p", true), &m).members[0].node.port, 7001);
        assert!(pod_members(&pod("p", false), &m).members.is_empty());
        let unready = mapping(KubeWatchConfig::pods("app").with_include_unready(true));
        assert_eq!(
            pod_members(&pod("p", false), &unready).members[0].node.port,
            8080
        );
        let mut deleting = pod("p", true);
        deleting.metadata.deletion_timestamp = Some(Time(Default::default()));
        let draining = pod_members(&deleting, &m);
        assert_eq!(draining.members[0].node.state, MemberState::Draining);
        let mut gone = pod("p", false);
        gone.metadata.deletion_timestamp = Some(Time(Default::default()));
        assert!(pod_members(&gone, &m).members.is_empty());
        assert!(pod_members(&gone, &unready).members.is_empty());
        let mut pending = pod("p", true);
        if let Some(s) = pending.status.as_mut() {
            s.phase = Some("Pending".into());
        }
        assert!(pod_members(&pending, &m).members.is_empty());
        let mut no_ip = pod("p", true);
        if let Some(s) = no_ip.status.as_mut() {
            s.pod_ip = None;
        }
        assert!(pod_members(&no_ip, &m).members.is_empty());
        let missing = mapping(KubeWatchConfig::pods("app").with_port_name("nope"));
        let out = pod_members(&pod("p", true), &missing);
        assert!(out.members.is_empty());
        assert_eq!(out.unusable.len(), 1, "{out:?}");
    }

    fn endpoint(
        name: Option<&str>,
        addr: &str,
        ready: Option<bool>,
        terminating: bool,
    ) -> Endpoint {
        Endpoint {
            addresses: vec![addr.into()],
            conditions: Some(EndpointConditions {
                ready,
                serving: ready,
                terminating: Some(terminating),
            }),
            target_ref: name.map(|n| ObjectReference {
                kind: Some("Pod".into()),
                name: Some(n.into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn slice_endpoints_by_condition() {
        let slice = EndpointSlice {
            address_type: "IPv4".into(),
            metadata: ObjectMeta {
                name: Some("svc-abc".into()),
                ..Default::default()
            },
            endpoints: vec![
                endpoint(Some("p1"), "10.0.0.1", Some(true), false),
                endpoint(None, "10.0.0.2", None, false),
                endpoint(Some("p3"), "10.0.0.3", Some(false), false),
                endpoint(Some("p4"), "10.0.0.4", Some(true), true),
            ],
            ports: Some(vec![
                EndpointPort {
                    name: Some("http".into()),
                    port: Some(80),
                    ..Default::default()
                },
                EndpointPort {
                    name: Some("remoting".into()),
                    port: Some(4000),
                    ..Default::default()
                },
            ]),
        };
        let m = mapping(KubeWatchConfig::endpoint_slices("svc").with_port_name("remoting"));
        let ids: Vec<_> = slice_members(&slice, &m)
            .members
            .into_iter()
            .map(|m| (m.node.id.to_string(), m.node.port))
            .collect();
        // p4 is terminating but still serving: a member, draining.
        assert_eq!(
            ids,
            [
                ("p1".into(), 4000),
                ("10.0.0.2".to_string(), 4000),
                ("p4".into(), 4000)
            ]
        );
        let m = mapping(KubeWatchConfig::endpoint_slices("svc").with_include_unready(true));
        let out = slice_members(&slice, &m);
        assert_eq!(out.members.len(), 4, "unready p3 joins");
        assert_eq!(out.members[0].node.port, 80);
    }

    #[test]
    fn terminating_serving_endpoints_drain_and_uids_are_incarnations() {
        let mut serving = endpoint(Some("p1"), "10.0.0.1", Some(false), true);
        if let Some(c) = serving.conditions.as_mut() {
            c.serving = Some(true);
        }
        if let Some(r) = serving.target_ref.as_mut() {
            r.uid = Some("uid-1".into());
        }
        let mut bad_uid = endpoint(Some("p5"), "10.0.0.5", Some(true), false);
        if let Some(r) = bad_uid.target_ref.as_mut() {
            r.uid = Some("tab\there".into());
        }
        let slice = EndpointSlice {
            address_type: "IPv4".into(),
            metadata: ObjectMeta {
                name: Some("svc-abc".into()),
                ..Default::default()
            },
            endpoints: vec![
                serving,
                endpoint(Some("p2"), "10.0.0.2", Some(false), true),
                endpoint(None, "10.0.0.3", Some(true), false),
                bad_uid,
            ],
            ports: Some(vec![EndpointPort {
                port: Some(4000),
                ..Default::default()
            }]),
        };
        for include_unready in [false, true] {
            let m = mapping(
                KubeWatchConfig::endpoint_slices("svc").with_include_unready(include_unready),
            );
            let out = slice_members(&slice, &m);
            let members: Vec<_> = out
                .members
                .iter()
                .map(|m| {
                    (
                        m.node.id.to_string(),
                        m.node.incarnation.clone().map(String::from),
                        m.node.state,
                    )
                })
                .collect();
            assert_eq!(
                members,
                [
                    ("p1".into(), Some("uid-1".into()), MemberState::Draining),
                    ("10.0.0.3".into(), None, MemberState::Serving),
                ],
                "terminating and not serving leaves; no targetRef, no incarnation"
            );
            assert_eq!(out.unusable.len(), 1, "{:?}", out.unusable);
            assert!(
                out.unusable[0].contains("targetRef.uid"),
                "{:?}",
                out.unusable
            );
        }
    }

    #[test]
    fn pod_uid_is_the_incarnation() {
        let m = mapping(KubeWatchConfig::pods("app=actors"));
        assert_eq!(
            pod_members(&pod("p", true), &m).members[0].node.incarnation,
            None
        );
        let mut with_uid = pod("p", true);
        with_uid.metadata.uid = Some("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0".into());
        let node = &pod_members(&with_uid, &m).members[0].node;
        assert_eq!(
            node.incarnation.as_ref().map(|i| i.as_str()),
            Some("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
        );
        with_uid.metadata.uid = Some("x".repeat(129));
        let out = pod_members(&with_uid, &m);
        assert!(out.members.is_empty());
        assert!(
            out.unusable[0].contains("metadata.uid"),
            "{:?}",
            out.unusable
        );
    }
}
