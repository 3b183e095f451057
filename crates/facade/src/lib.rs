#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "admin")]
#[cfg_attr(docsrs, doc(cfg(feature = "admin")))]
pub mod admin;
mod admin_change;
mod builtin_kinds;
mod command;
mod driver;
mod event_sink;
mod liveness_prober;
mod local_member;
mod next_set;
mod persister;
mod provider_builder;
mod provider_view;
mod provisioning_handle;
mod service;
mod snapshot_stream;
mod topology_stream;

pub use builtin_kinds::{builtin_kinds, builtin_registry, builtin_validator};
pub use event_sink::EventSink;
pub use local_member::LocalTopology;
pub use provider_view::ProviderView;
pub use provisioning_handle::ProvisioningHandle;
pub(crate) use service::policy_check;
pub use service::{ClusterProvisioningService, MIGRATION_PROVIDER_ID};
pub use snapshot_stream::SnapshotStream;
pub use topology_stream::{TopologyStream, TopologyUpdate};

/// The Consul backend.
#[cfg(feature = "consul")]
#[cfg_attr(docsrs, doc(cfg(feature = "consul")))]
pub use provisioning_backend_consul as consul;
/// The etcd backend.
#[cfg(feature = "etcd")]
#[cfg_attr(docsrs, doc(cfg(feature = "etcd")))]
pub use provisioning_backend_etcd as etcd;
/// The Kubernetes backend.
#[cfg(feature = "k8s")]
#[cfg_attr(docsrs, doc(cfg(feature = "k8s")))]
pub use provisioning_backend_k8s as k8s;
/// The in-memory provider and the topology-stream adapter.
pub use provisioning_backend_memory as memory;
/// Failover policy and controller.
pub use provisioning_failover as failover;
/// The contract types (`ClusterNode`, `ProviderSnapshot`, ...).
pub use provisioning_provider_api as api;
/// Registry, validation, errors and secrets.
pub use provisioning_registry as registry;
/// The watch hub: bridges, events, metrics.
pub use provisioning_watch_hub as hub;

pub use provisioning_failover::FailoverPolicy;
pub use provisioning_registry::{
    BackendKind, BuildContext, ProviderRegistry, ProviderValidator, ProvisioningError,
};
pub use provisioning_watch_hub::metrics::ProvisioningMetrics;
pub use provisioning_watch_hub::wire::{ProvisioningEvent, PublishedSnapshot};
pub use provisioning_watch_hub::{
    PartitionManagerBridge, PlacementSupervisorBridge, RemotingBridge,
};
