//! [`KubeDriver`]: the conformance driver over a [`FakeKube`].

use std::sync::Arc;

use provisioning_provider_api::{MemberSpec, MemberState, ProviderDescriptor};
use serde_json::{Value, json};

use super::{EndpointSpec, FakeKube, ObjectKind, endpoint_slice, pod};
use crate::driver::{
    Capabilities, ConformanceDriver, DriverError, InjectedFault, MembershipChange,
};

/// Which member source the driver writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KubeDriverMode {
    /// One pod per member, selected by `app=actors`, port `remoting`.
    Pods,
    /// One EndpointSlice per member (Service `actors`), port `remoting`;
    /// blocking annotates the member's slice.
    EndpointSlices,
}

/// Drives the conformance suite through a [`FakeKube`]: membership changes
/// become object changes, faults become the fake's switches.
///
/// | fault | what the fake does |
/// |---|---|
/// | `Retryable` | answers every request 500, and ends the open watches |
/// | `Permanent` | denies `list` and `watch` on the resource (403 naming the RBAC rule), and ends the open watches |
/// | `Terminate` | answers 404 for the resource (the API is not served any more), and ends the open watches: the provider ends its stream |
/// | `Heal` | clears every switch |
#[derive(Debug, Clone)]
pub struct KubeDriver {
    fake: Arc<FakeKube>,
    mode: KubeDriverMode,
    namespace: String,
}

/// The pod label selector the driver's pods carry.
pub const DRIVER_SELECTOR: &str = "app=actors";
/// The Service of the driver's slices.
pub const DRIVER_SERVICE: &str = "actors";
/// The named port of the driver's members.
pub const DRIVER_PORT_NAME: &str = "remoting";
/// The annotation that blocks a member.
pub const DRIVER_BLOCKED_ANNOTATION: &str = "cluster.example/blocked";

impl KubeDriver {
    /// A driver writing into `namespace` of `fake`.
    pub fn new(fake: Arc<FakeKube>, mode: KubeDriverMode, namespace: impl Into<String>) -> Self {
        Self {
            fake,
            mode,
            namespace: namespace.into(),
        }
    }

    /// The fake.
    pub fn fake(&self) -> &Arc<FakeKube> {
        &self.fake
    }

    /// The object kind the driver writes.
    pub fn kind(&self) -> ObjectKind {
        match self.mode {
            KubeDriverMode::Pods => ObjectKind::Pod,
            KubeDriverMode::EndpointSlices => ObjectKind::EndpointSlice,
        }
    }

    /// The `watch` object of a `k8s` descriptor matching what the driver
    /// writes.
    pub fn watch_json(&self) -> Value {
        match self.mode {
            KubeDriverMode::Pods => json!({
                "namespace": self.namespace,
                "resource": "pods",
                "label_selector": DRIVER_SELECTOR,
                "port_name": DRIVER_PORT_NAME,
                "blocked_annotation": DRIVER_BLOCKED_ANNOTATION,
            }),
            KubeDriverMode::EndpointSlices => json!({
                "namespace": self.namespace,
                "resource": "endpointslices",
                "service": DRIVER_SERVICE,
                "port_name": DRIVER_PORT_NAME,
                "blocked_annotation": DRIVER_BLOCKED_ANNOTATION,
            }),
        }
    }

    /// A `k8s` descriptor pointing at the fake, with `extra` merged into
    /// its `watch` (e.g. `{"idle_timeout": "2s"}`).
    pub fn descriptor(&self, id: &str, extra: Value) -> Result<ProviderDescriptor, DriverError> {
        let mut watch = self.watch_json();
        if let (Some(w), Some(extra)) = (watch.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                w.insert(k.clone(), v.clone());
            }
        }
        serde_json::from_value(json!({
            "id": id,
            "kind": "k8s",
            "priority": 0,
            "endpoints": [self.fake.url()],
            "watch": watch,
        }))
        .map_err(|e| DriverError(format!("descriptor: {e}")))
    }

    fn object_name(&self, id: &str) -> String {
        match self.mode {
            KubeDriverMode::Pods => id.to_string(),
            KubeDriverMode::EndpointSlices => format!("{DRIVER_SERVICE}-{id}"),
        }
    }

    /// The object for a member.
    pub fn object(&self, spec: &MemberSpec) -> Value {
        match self.mode {
            KubeDriverMode::Pods => {
                let mut p = pod(spec.id.as_str(), spec.host.as_str())
                    .label("app", "actors")
                    .labels(spec.labels.clone())
                    .port(DRIVER_PORT_NAME, spec.port);
                if spec.blocked {
                    p = p.annotation(DRIVER_BLOCKED_ANNOTATION, "true");
                }
                if spec.state == MemberState::Draining {
                    // In its grace period, still Ready.
                    p = p.deleting();
                }
                p.build()
            }
            KubeDriverMode::EndpointSlices => {
                let mut endpoint = EndpointSpec::ready(spec.id.as_str(), spec.host.as_str());
                if spec.state == MemberState::Draining {
                    endpoint = endpoint.terminating_serving();
                }
                let mut s = endpoint_slice(self.object_name(spec.id.as_str()), DRIVER_SERVICE)
                    .endpoint(endpoint)
                    .port(DRIVER_PORT_NAME, spec.port);
                if spec.blocked {
                    s = s.annotation(DRIVER_BLOCKED_ANNOTATION, "true");
                }
                s.build()
            }
        }
    }

    /// A Pod deleted and created again under its name (the fake gives it a
    /// new uid); for slices, the endpoint's `targetRef` names a new pod uid.
    fn restart(&self, id: &str) -> Result<(), DriverError> {
        let kind = self.kind();
        let name = self.object_name(id);
        let ns = self.namespace.clone();
        let mode = self.mode;
        self.fake.batch(|b| {
            let object = b
                .get(kind, &ns, &name)
                .ok_or_else(|| DriverError(format!("no member {id:?} to restart")))?;
            let mut object = content(&object);
            match mode {
                KubeDriverMode::Pods => {
                    b.delete(kind, &ns, &name);
                }
                KubeDriverMode::EndpointSlices => {
                    let generation = b.resource_version();
                    let target = object
                        .pointer_mut("/endpoints/0/targetRef")
                        .and_then(Value::as_object_mut)
                        .ok_or_else(|| DriverError(format!("{name} has no targetRef")))?;
                    target.insert("uid".into(), json!(format!("uid-{id}-{generation}")));
                }
            }
            b.upsert(kind, &ns, object);
            Ok(())
        })
    }

    fn set_blocked(&self, id: &str, blocked: bool) -> Result<(), DriverError> {
        let kind = self.kind();
        let name = self.object_name(id);
        let ns = self.namespace.clone();
        self.fake.batch(|b| {
            let mut object = b
                .get(kind, &ns, &name)
                .ok_or_else(|| DriverError(format!("no member {id:?} to (un)block")))?;
            let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
                return Err(DriverError(format!("{name} has no metadata")));
            };
            let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
            let Some(annotations) = annotations.as_object_mut() else {
                return Err(DriverError(format!("{name} has bad annotations")));
            };
            if blocked {
                annotations.insert(DRIVER_BLOCKED_ANNOTATION.into(), json!("true"));
            } else {
                annotations.remove(DRIVER_BLOCKED_ANNOTATION);
            }
            b.upsert(kind, &ns, object);
            Ok(())
        })
    }
}

/// The object without what the fake sets, for comparing.
fn content(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in ["resourceVersion", "uid", "namespace", "creationTimestamp"] {
            meta.remove(key);
        }
    }
    object
}

impl ConformanceDriver for KubeDriver {
    fn capabilities(&self) -> Capabilities {
        match self.mode {
            KubeDriverMode::Pods => Capabilities::none()
                .with_labels(true)
                .with_initial_snapshot(true)
                .with_incarnations(true)
                .with_draining(true),
            KubeDriverMode::EndpointSlices => Capabilities::none()
                .with_initial_snapshot(true)
                .with_incarnations(true)
                .with_draining(true),
        }
    }

    async fn apply(&self, change: MembershipChange) -> Result<(), DriverError> {
        let kind = self.kind();
        let ns = self.namespace.clone();
        match change {
            MembershipChange::Reset(specs) => {
                let wanted: Vec<(String, Value)> = specs
                    .iter()
                    .map(|s| (self.object_name(s.id.as_str()), self.object(s)))
                    .collect();
                self.fake.batch(|b| {
                    for name in b.names(kind, &ns) {
                        if !wanted.iter().any(|(n, _)| *n == name) {
                            b.delete(kind, &ns, &name);
                        }
                    }
                    for (name, object) in wanted {
                        let same = b
                            .get(kind, &ns, &name)
                            .is_some_and(|o| content(&o) == content(&object));
                        if !same {
                            b.upsert(kind, &ns, object);
                        }
                    }
                });
                Ok(())
            }
            MembershipChange::Upsert(spec) => {
                if self.mode == KubeDriverMode::EndpointSlices && !spec.labels.is_empty() {
                    return Err(DriverError("endpoint slices carry no member labels".into()));
                }
                self.fake.upsert(kind, &ns, self.object(&spec));
                Ok(())
            }
            MembershipChange::Remove(id) => {
                self.fake.delete(kind, &ns, &self.object_name(id.as_str()));
                Ok(())
            }
            MembershipChange::Block(id) => self.set_blocked(id.as_str(), true),
            MembershipChange::Unblock(id) => self.set_blocked(id.as_str(), false),
            MembershipChange::Restart(id) => self.restart(id.as_str()),
        }
    }

    async fn inject(&self, fault: InjectedFault) -> Result<(), DriverError> {
        match fault {
            InjectedFault::Retryable => {
                self.fake.set_status(Some(500));
                self.fake.end_watches();
            }
            InjectedFault::Permanent => {
                self.fake.deny(self.kind(), "list");
                self.fake.deny(self.kind(), "watch");
                self.fake.end_watches();
            }
            InjectedFault::Terminate => {
                self.fake.set_not_found(true);
                self.fake.end_watches();
            }
            InjectedFault::Heal => self.fake.heal(),
        }
        Ok(())
    }
}
