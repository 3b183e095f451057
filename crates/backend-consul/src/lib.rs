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
#[cfg(feature = "client")]
mod config;
mod consul_registration;
mod consul_watch;
mod decode;
#[cfg(feature = "client")]
mod error;
mod kind;
#[cfg(feature = "client")]
mod liveness;
mod mapping;
#[cfg(feature = "client")]
mod origin;
#[cfg(feature = "client")]
mod probe;
#[cfg(feature = "client")]
mod provider;
#[cfg(feature = "client")]
mod registration;
#[cfg(feature = "client")]
mod stream;

pub use consul_registration::ConsulRegistration;
pub use consul_watch::{ConsulConsistency, ConsulIdFrom, ConsulWatch};
pub use decode::{
    CheckInfo, DecodeError, HealthAnswer, HealthEntry, NodeInfo, QueryMeta, ServiceInfo,
    decode_health, decode_meta,
};
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use error::ConsulError;
pub use kind::ConsulKind;
pub use mapping::{MappingError, MemberMapping, TAG_LABEL_PREFIX};
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use origin::ConsulOrigin;
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use probe::ConsulProbe;
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use provider::{ConsulProvider, ConsulProviderBuilder};
/// The HTTP client crate this backend uses, for building a client to hand to
/// [`ConsulKind::with_client`] or [`ConsulProviderBuilder::with_client`] at
/// the same version.
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use reqwest;
