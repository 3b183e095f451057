//! Builders for the JSON objects the fake serves: Pods and EndpointSlices
//! shaped as the API server returns them.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

/// The resources the fake serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectKind {
    /// `v1` `Pod` (`/api/v1/namespaces/{ns}/pods`).
    Pod,
    /// `discovery.k8s.io/v1` `EndpointSlice`
    /// (`/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices`).
    EndpointSlice,
}

impl ObjectKind {
    /// `apiVersion` of the objects.
    pub fn api_version(self) -> &'static str {
        match self {
            Self::Pod => "v1",
            Self::EndpointSlice => "discovery.k8s.io/v1",
        }
    }

    /// `kind` of the objects.
    pub fn kind(self) -> &'static str {
        match self {
            Self::Pod => "Pod",
            Self::EndpointSlice => "EndpointSlice",
        }
    }

    /// The plural resource name in paths and RBAC rules.
    pub fn plural(self) -> &'static str {
        match self {
            Self::Pod => "pods",
            Self::EndpointSlice => "endpointslices",
        }
    }

    /// The API group (`""` for core).
    pub fn group(self) -> &'static str {
        match self {
            Self::Pod => "",
            Self::EndpointSlice => "discovery.k8s.io",
        }
    }
}

fn string_map(map: &BTreeMap<String, String>) -> Value {
    Value::Object(
        map.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect::<Map<_, _>>(),
    )
}

/// A Pod as the API server shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodBuilder {
    name: String,
    ip: Option<String>,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    ports: Vec<(String, u16)>,
    phase: String,
    ready: bool,
    deleting: bool,
}

/// A running, ready pod named `name` with pod IP `ip`.
pub fn pod(name: impl Into<String>, ip: impl Into<String>) -> PodBuilder {
    PodBuilder {
        name: name.into(),
        ip: Some(ip.into()),
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
        ports: Vec::new(),
        phase: "Running".into(),
        ready: true,
        deleting: false,
    }
}

impl PodBuilder {
    /// Adds a label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Adds labels.
    pub fn labels<K: Into<String>, V: Into<String>>(
        mut self,
        labels: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        for (k, v) in labels {
            self.labels.insert(k.into(), v.into());
        }
        self
    }

    /// Adds an annotation.
    pub fn annotation(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.annotations.insert(key.into(), value.into());
        self
    }

    /// Adds a named container port.
    pub fn port(mut self, name: impl Into<String>, port: u16) -> Self {
        self.ports.push((name.into(), port));
        self
    }

    /// Sets `status.phase`.
    pub fn phase(mut self, phase: impl Into<String>) -> Self {
        self.phase = phase.into();
        self
    }

    /// Sets the `Ready` condition.
    pub fn ready(mut self, ready: bool) -> Self {
        self.ready = ready;
        self
    }

    /// Removes the pod IP.
    pub fn without_ip(mut self) -> Self {
        self.ip = None;
        self
    }

    /// Sets `metadata.deletionTimestamp` (the pod is being deleted).
    pub fn deleting(mut self) -> Self {
        self.deleting = true;
        self
    }

    /// The pod's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The JSON object (without `resourceVersion`; the fake sets it).
    pub fn build(&self) -> Value {
        let mut metadata = json!({
            "name": self.name,
            "labels": string_map(&self.labels),
            "annotations": string_map(&self.annotations),
        });
        if self.deleting {
            metadata["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        }
        let ports: Vec<Value> = self
            .ports
            .iter()
            .map(|(name, port)| json!({"name": name, "containerPort": port, "protocol": "TCP"}))
            .collect();
        let mut status = json!({
            "phase": self.phase,
            "conditions": [{"type": "Ready", "status": if self.ready { "True" } else { "False" }}],
        });
        if let Some(ip) = &self.ip {
            status["podIP"] = json!(ip);
            status["podIPs"] = json!([{"ip": ip}]);
        }
        json!({
            "metadata": metadata,
            "spec": {"containers": [{"name": "app", "image": "app:1", "ports": ports}]},
            "status": status,
        })
    }
}

/// One endpoint of an EndpointSlice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointSpec {
    /// `targetRef.name` (a pod), if any.
    pub target: Option<String>,
    /// `targetRef.uid` (the pod's uid), if any.
    pub target_uid: Option<String>,
    /// The endpoint's address.
    pub address: String,
    /// `conditions.ready` (absent when `None`).
    pub ready: Option<bool>,
    /// `conditions.serving`.
    pub serving: Option<bool>,
    /// `conditions.terminating`.
    pub terminating: Option<bool>,
}

impl EndpointSpec {
    /// A ready endpoint for pod `target` at `address`.
    pub fn ready(target: impl Into<String>, address: impl Into<String>) -> Self {
        Self {
            target: Some(target.into()),
            target_uid: None,
            address: address.into(),
            ready: Some(true),
            serving: Some(true),
            terminating: Some(false),
        }
    }

    /// Sets `targetRef.uid`.
    pub fn with_target_uid(mut self, uid: impl Into<String>) -> Self {
        self.target_uid = Some(uid.into());
        self
    }

    /// Terminating but still serving, as Kubernetes shows an endpoint
    /// during its pod's grace period (`ready` is then false).
    pub fn terminating_serving(mut self) -> Self {
        self.ready = Some(false);
        self.serving = Some(true);
        self.terminating = Some(true);
        self
    }
}

/// An EndpointSlice as the API server shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SliceBuilder {
    name: String,
    service: String,
    endpoints: Vec<EndpointSpec>,
    ports: Vec<(String, u16)>,
    annotations: BTreeMap<String, String>,
}

/// A slice named `name` of Service `service` (label
/// `kubernetes.io/service-name`).
pub fn endpoint_slice(name: impl Into<String>, service: impl Into<String>) -> SliceBuilder {
    SliceBuilder {
        name: name.into(),
        service: service.into(),
        endpoints: Vec::new(),
        ports: Vec::new(),
        annotations: BTreeMap::new(),
    }
}

impl SliceBuilder {
    /// Adds an endpoint.
    pub fn endpoint(mut self, endpoint: EndpointSpec) -> Self {
        self.endpoints.push(endpoint);
        self
    }

    /// Adds a named port.
    pub fn port(mut self, name: impl Into<String>, port: u16) -> Self {
        self.ports.push((name.into(), port));
        self
    }

    /// Adds an annotation.
    pub fn annotation(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.annotations.insert(key.into(), value.into());
        self
    }

    /// The slice's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The JSON object (without `resourceVersion`; the fake sets it).
    pub fn build(&self) -> Value {
        let endpoints: Vec<Value> = self
            .endpoints
            .iter()
            .map(|e| {
                let mut conditions = Map::new();
                for (key, value) in [
                    ("ready", e.ready),
                    ("serving", e.serving),
                    ("terminating", e.terminating),
                ] {
                    if let Some(v) = value {
                        conditions.insert(key.into(), Value::Bool(v));
                    }
                }
                let mut endpoint = json!({"addresses": [e.address], "conditions": conditions});
                if let Some(target) = &e.target {
                    endpoint["targetRef"] = json!({"kind": "Pod", "name": target});
                    if let Some(uid) = &e.target_uid {
                        endpoint["targetRef"]["uid"] = json!(uid);
                    }
                }
                endpoint
            })
            .collect();
        let ports: Vec<Value> = self
            .ports
            .iter()
            .map(|(name, port)| json!({"name": name, "port": port, "protocol": "TCP"}))
            .collect();
        json!({
            "metadata": {
                "name": self.name,
                "labels": {
                    "kubernetes.io/service-name": self.service,
                    "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                },
                "annotations": string_map(&self.annotations),
            },
            "addressType": "IPv4",
            "endpoints": endpoints,
            "ports": ports,
        })
    }
}
