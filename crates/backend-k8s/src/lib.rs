#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(
    not(feature = "client"),
    allow(
        rustdoc::broken_intra_doc_links,
        reason = "the crate docs link the provider, which needs `client`"
    )
)]

#[cfg(feature = "client")]
mod client;
mod config;
mod decode;
mod duration_option;
#[cfg(feature = "client")]
mod error;
mod k8s_watch;
mod kind;
#[cfg(feature = "client")]
mod liveness;
mod mapping;
#[cfg(feature = "client")]
mod probe;
#[cfg(feature = "client")]
mod provider;
mod response_limit;
#[cfg(feature = "client")]
mod response_limit_layer;
#[cfg(feature = "client")]
mod stream;
#[cfg(feature = "client")]
mod watch_guard;

pub use config::{DEFAULT_IDLE_TIMEOUT, KubeResource, KubeWatchConfig, LIST_PAGE_SIZE};
pub use decode::{MappedMember, ObjectMembers, pod_members, slice_members};
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use error::KubeError;
pub use k8s_watch::{K8sResource, K8sWatch};
pub use kind::KubeKind;
/// The Kubernetes client crate this backend uses, for building a client to
/// hand to [`KubeKind::with_client`] or [`KubeProviderBuilder::with_client`]
/// at the same version.
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use kube;
pub use mapping::MemberMapping;
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use probe::KubeProbe;
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use provider::{KubeProvider, KubeProviderBuilder};
pub use response_limit::{MAX_RESPONSE_BYTES, ResponseFraming, ResponseLimit, ResponseTooLarge};
