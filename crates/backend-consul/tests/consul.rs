//! The Consul provider against the fake Consul of `provisioning-testkit`:
//! the shared conformance suite, one test per fault switch, the idle
//! request rate, tokens, the probe and self-registration.
//!
//! Real sockets run on real time, so blocking queries use short waits.

#[path = "consul/building.rs"]
mod building;
#[path = "consul/conformance.rs"]
mod conformance;
#[path = "consul/faults.rs"]
mod faults;
#[path = "consul/idle.rs"]
mod idle;
#[path = "consul/injected_client.rs"]
mod injected_client;
#[path = "consul/lifecycle.rs"]
mod lifecycle;
#[path = "consul/probe.rs"]
mod probe;
#[path = "consul/query.rs"]
mod query;
#[path = "consul/registration.rs"]
mod registration;
#[path = "consul/tls.rs"]
mod tls;
#[path = "consul/tokens.rs"]
mod tokens;

use std::time::Duration;

use futures::StreamExt;
use provisioning_backend_consul::ConsulProvider;
use provisioning_provider_api::{ProviderDescriptor, ProviderEvent, ProviderStream};
use provisioning_registry::SecretResolver;
use provisioning_testkit::fake_consul::{FakeConsul, FakeInstance};

/// The watched service.
pub(crate) const SERVICE: &str = "app";

/// A `consul` descriptor for the fake with extra `watch` keys and extra
/// top-level keys (JSON object members, without braces). `wait` is 1 s
/// unless `watch_extra` sets it.
pub(crate) fn descriptor(
    consul: &FakeConsul,
    watch_extra: &str,
    top_extra: &str,
) -> ProviderDescriptor {
    let mut watch = format!(r#""service":"{SERVICE}""#);
    if !watch_extra.contains(r#""wait""#) {
        watch.push_str(r#","wait":"1s""#);
    }
    if !watch_extra.is_empty() {
        watch.push(',');
        watch.push_str(watch_extra);
    }
    let json = format!(
        r#"{{"id":"consul-a","kind":"consul","priority":20,"endpoints":["{}"]{top_extra},"watch":{{{watch}}}}}"#,
        consul.url()
    );
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}: {e}"))
}

/// A provider on the fake that ignores the process environment.
pub(crate) fn provider(descriptor: ProviderDescriptor, secrets: SecretResolver) -> ConsulProvider {
    ConsulProvider::builder(descriptor)
        .with_secrets(secrets)
        .with_env(|_| None)
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A fake with three passing instances and a provider watching it.
pub(crate) async fn setup(watch_extra: &str) -> (FakeConsul, ConsulProvider) {
    let consul = FakeConsul::start().await.unwrap_or_else(|e| panic!("{e}"));
    consul.set_instances(
        SERVICE,
        (1..=3)
            .map(|i| {
                FakeInstance::new(SERVICE, &format!("n{i}"), &format!("127.0.0.{i}"), 4000 + i)
            })
            .collect(),
    );
    let p = provider(
        descriptor(&consul, watch_extra, ""),
        SecretResolver::new(std::env::temp_dir()),
    );
    (consul, p)
}

/// The next event within `within`, or a panic naming what was awaited.
pub(crate) async fn next(stream: &mut ProviderStream, within: Duration) -> ProviderEvent {
    match tokio::time::timeout(within, stream.next()).await {
        Ok(Some(event)) => event,
        Ok(None) => panic!("stream ended"),
        Err(_) => panic!("no event within {within:?}"),
    }
}

/// Skips events until one satisfies `pred`; panics after `within`.
pub(crate) async fn until(
    stream: &mut ProviderStream,
    within: Duration,
    mut pred: impl FnMut(&ProviderEvent) -> bool,
) -> ProviderEvent {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let event = next(stream, left).await;
        if pred(&event) {
            return event;
        }
    }
}
