//! Properties of the object → member mapping over arbitrary objects (the
//! pure functions are the fuzzing surface: nothing here touches a network).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use proptest::prelude::*;
use provisioning_backend_k8s::{KubeWatchConfig, MemberMapping, pod_members, slice_members};
use provisioning_provider_api::MemberState;
use serde_json::{Value, json};

fn small_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(
        prop::sample::select(vec![
            "app",
            "zone",
            "port",
            "blocked",
            "kubernetes.io/hostname",
            "kubectl.kubernetes.io/last-applied-configuration",
            "example.com/role",
            "topology.kubernetes.io/zone",
        ])
        .prop_map(String::from),
        prop::sample::select(vec![
            "", "true", "TRUE", "actors", "7001", "0", "70000", "x",
        ])
        .prop_map(String::from),
        0..5,
    )
}

fn pod_json() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["", "p1", "pod-a", "p1", "p1"]),
        prop::sample::select(vec!["Running", "Running", "Running", "Pending", "Failed"]),
        prop::option::of(prop::bool::weighted(0.8)),
        prop::option::weighted(0.9, prop::sample::select(vec!["", "10.0.0.1", "fd00::1"])),
        small_map(),
        small_map(),
        prop::collection::vec(
            (
                prop::option::of(prop::sample::select(vec!["remoting", "http"])),
                prop::sample::select(vec![-1i64, 0, 80, 4000, 4000, 65535, 65536]),
            ),
            0..3,
        ),
        prop::bool::weighted(0.1),
    )
        .prop_map(
            |(name, phase, ready, ip, labels, annotations, ports, deleting)| {
                let ports: Vec<Value> = ports
                    .into_iter()
                    .map(|(n, p)| json!({"name": n, "containerPort": p}))
                    .collect();
                let mut pod = json!({
                    "metadata": {"name": name, "labels": labels, "annotations": annotations},
                    "spec": {"containers": [{"name": "c", "ports": ports}]},
                    "status": {"phase": phase},
                });
                if deleting {
                    pod["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
                }
                if let Some(ready) = ready {
                    pod["status"]["conditions"] =
                        json!([{"type": "Ready", "status": if ready { "True" } else { "False" }}]);
                }
                if let Some(ip) = ip {
                    pod["status"]["podIP"] = json!(ip);
                }
                pod
            },
        )
}

fn mapping() -> impl Strategy<Value = MemberMapping> {
    (
        prop::option::of(prop::sample::select(vec!["remoting", "http"])),
        prop::option::weighted(0.3, Just("port")),
        any::<bool>(),
        prop::option::of(Just("blocked")),
        any::<bool>(),
    )
        .prop_map(|(port_name, port_label, unready, blocked, slices)| {
            let mut config = if slices {
                KubeWatchConfig::endpoint_slices("svc")
            } else {
                KubeWatchConfig::pods("app=actors")
            };
            config = config.with_include_unready(unready);
            if let Some(p) = port_name {
                config = config.with_port_name(p);
            }
            if let (Some(l), false) = (port_label, slices) {
                config = config.with_port_label(l);
            }
            if let Some(b) = blocked {
                config = config.with_blocked_annotation(b);
            }
            MemberMapping::new(&config)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn pod_mapping_never_panics_and_keeps_its_invariants(json in pod_json(), mapping in mapping()) {
        let Ok(pod) = serde_json::from_value::<Pod>(json.clone()) else {
            return Ok(());
        };
        let out = pod_members(&pod, &mapping);
        prop_assert!(out.members.len() <= 1);
        for m in &out.members {
            prop_assert_eq!(m.node.id.as_str(), json["metadata"]["name"].as_str().unwrap_or(""));
            prop_assert!(!m.node.id.as_str().is_empty());
            prop_assert!(m.node.port != 0);
            prop_assert_eq!(json["status"]["phase"].as_str(), Some("Running"));
            // A pod being deleted is a member only while Ready, and then
            // draining; any other member is serving.
            let deleting = json["metadata"].get("deletionTimestamp").is_some();
            prop_assert_eq!(m.node.state == MemberState::Draining, deleting);
            if deleting {
                let ready = json["status"]["conditions"][0]["status"].as_str() == Some("True");
                prop_assert!(ready);
            }
            prop_assert!(!m.node.host.is_empty());
            for key in m.node.labels.keys() {
                prop_assert!(!key.contains("kubernetes.io/"), "{}", key);
            }
            if m.blocked {
                let v = json["metadata"]["annotations"]["blocked"].as_str().unwrap_or("");
                prop_assert!(v.eq_ignore_ascii_case("true"));
            }
        }
    }

    #[test]
    fn slice_mapping_never_panics_and_drains_terminating_serving_endpoints(
        endpoints in prop::collection::vec(
            (
                prop::option::of(prop::sample::select(vec!["", "p1", "p2"])),
                prop::sample::select(vec!["", "10.0.0.1", "10.0.0.2"]),
                prop::option::of(any::<bool>()),
                prop::option::of(any::<bool>()),
                prop::option::of(any::<bool>()),
            ),
            0..6,
        ),
        ports in prop::collection::vec(
            (prop::option::of(prop::sample::select(vec!["remoting", "http"])), prop::option::of(prop::sample::select(vec![0i64, 80, 4000]))),
            0..3,
        ),
        mapping in mapping(),
    ) {
        let eps: Vec<Value> = endpoints
            .iter()
            .map(|(target, addr, ready, serving, terminating)| {
                let mut e = json!({"addresses": [addr], "conditions": {}});
                if let Some(t) = target {
                    e["targetRef"] = json!({"kind": "Pod", "name": t});
                }
                for (k, v) in [("ready", ready), ("serving", serving), ("terminating", terminating)] {
                    if let Some(v) = v {
                        e["conditions"][k] = json!(v);
                    }
                }
                e
            })
            .collect();
        let ports: Vec<Value> = ports.iter().map(|(n, p)| json!({"name": n, "port": p})).collect();
        let json = json!({"metadata": {"name": "s"}, "addressType": "IPv4", "endpoints": eps, "ports": ports});
        let Ok(slice) = serde_json::from_value::<EndpointSlice>(json) else {
            return Ok(());
        };
        let out = slice_members(&slice, &mapping);
        // A terminating endpoint is a member only while serving.
        let live = endpoints
            .iter()
            .filter(|e| e.4 != Some(true) || e.3 == Some(true))
            .count();
        prop_assert!(out.members.len() <= live);
        let draining = out
            .members
            .iter()
            .filter(|m| m.node.state == MemberState::Draining)
            .count();
        let terminating_serving = endpoints
            .iter()
            .filter(|e| e.4 == Some(true) && e.3 == Some(true))
            .count();
        prop_assert!(draining <= terminating_serving);
        for m in &out.members {
            prop_assert!(!m.node.id.as_str().is_empty());
            prop_assert!(m.node.port != 0);
            prop_assert!(!m.node.host.is_empty());
            prop_assert!(!m.blocked, "no annotation, nothing blocked");
        }
    }
}
