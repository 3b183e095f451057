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
mod decode;
#[cfg(feature = "client")]
mod error;
mod etcd_registration;
mod etcd_watch;
mod kind;
#[cfg(feature = "client")]
mod liveness;
#[cfg(feature = "client")]
mod probe;
#[cfg(feature = "client")]
mod provider;
#[cfg(feature = "client")]
mod registration;
#[cfg(feature = "client")]
mod stream;
#[cfg(feature = "client")]
mod view;

#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use config::{ENV_VARIABLES, EtcdConfig};
pub use decode::{decode_member, decode_member_created_at};
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use error::EtcdError;
/// The etcd client crate this backend uses, for building a client to hand
/// to [`EtcdKind::with_client`] or [`EtcdProviderBuilder::with_client`] at
/// the same version.
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use etcd_client;
pub use etcd_registration::EtcdRegistration;
pub use etcd_watch::EtcdWatch;
pub use kind::EtcdKind;
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use probe::EtcdProbe;
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use provider::{EtcdProvider, EtcdProviderBuilder};
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use registration::RegistrationStatus;
