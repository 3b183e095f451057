//! The Kubernetes provider against the fake API server: the unmodified
//! kube client and kube-runtime watcher over loopback HTTP.

#[path = "k8s/churn.rs"]
mod churn;
#[path = "k8s/conformance.rs"]
mod conformance;
#[path = "k8s/faults.rs"]
mod faults;
#[path = "k8s/injected_client.rs"]
mod injected_client;
#[path = "k8s/kubeconfig.rs"]
mod kubeconfig;
#[path = "k8s/lifecycle.rs"]
mod lifecycle;
#[path = "k8s/mapping.rs"]
mod mapping;
#[path = "k8s/probe.rs"]
mod probe;
#[path = "k8s/response_limit.rs"]
mod response_limit;
#[path = "k8s/sources.rs"]
mod sources;
#[path = "k8s/support.rs"]
mod support;
