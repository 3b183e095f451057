//! The controller's jitter source: the workspace's one seeded generator.

pub(crate) use provisioning_provider_api::JitterRng;
