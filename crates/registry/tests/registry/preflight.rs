//! Preflight through `ProviderProbe`s, in virtual time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use provisioning_provider_api::{ProviderDescriptor, ProviderKind};
use provisioning_registry::{
    ProbeFuture, ProviderProbe, ProviderValidator, ProvisioningError, SecretResolver,
};

use super::common::d;

/// Answers by the descriptor's first endpoint host: `up`, `down`, `denied`,
/// `hang`; counts calls.
#[derive(Default)]
struct ScriptedProbe {
    calls: AtomicUsize,
}

impl ProviderProbe for ScriptedProbe {
    fn probe<'a>(
        &'a self,
        d: &'a ProviderDescriptor,
        secrets: &'a SecretResolver,
    ) -> ProbeFuture<'a> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            if let Some(auth) = &d.auth
                && let Some(token) = &auth.token
            {
                secrets.resolve(token)?;
            }
            let host = d.endpoints.first().map(String::as_str).unwrap_or_default();
            if host.contains("down") {
                Err(ProvisioningError::BackendUnavailable {
                    provider: None,
                    detail: "connection refused".into(),
                })
            } else if host.contains("denied") {
                Err(ProvisioningError::PermissionDenied {
                    provider: None,
                    detail: "403 forbidden".into(),
                })
            } else if host.contains("hang") {
                std::future::pending().await
            } else {
                Ok(())
            }
        })
    }
}

fn etcd(id: &str, priority: u32, host: &str) -> ProviderDescriptor {
    d(&format!(
        r#"{{"id":"{id}","kind":"etcd","priority":{priority},"endpoints":["http://{host}:2379"],"watch":{{"prefix":"/{id}/"}}}}"#
    ))
}

fn setup() -> (ProviderValidator, Arc<ScriptedProbe>, SecretResolver) {
    let probe = Arc::new(ScriptedProbe::default());
    let validator = super::common::builtin().with_probe(ProviderKind::Etcd, probe.clone());
    let secrets =
        SecretResolver::new("/nonexistent").with_env(|_| Err(std::env::VarError::NotPresent));
    (validator, probe, secrets)
}

#[tokio::test(start_paused = true)]
async fn probes_run_for_enabled_descriptors_with_a_probe() {
    let (validator, probe, secrets) = setup();
    let set = vec![
        etcd("a", 1, "up"),
        etcd("b", 2, "down").clone().with_enabled(false),
        d(r#"{"id":"m","kind":"in_memory","priority":3}"#),
        etcd("c", 4, "up2"),
    ];
    let probed = validator
        .preflight(&set, &secrets, Duration::from_secs(5))
        .await
        .unwrap();
    let ids: Vec<&str> = probed.iter().map(|i| i.as_str()).collect();
    assert_eq!(ids, ["c", "a"]);
    assert_eq!(probe.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn unreachable_denied_and_timeout_map_to_their_codes() {
    let (validator, _, secrets) = setup();
    let e = validator
        .preflight(&[etcd("a", 1, "down")], &secrets, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "backend_unavailable");
    assert!(e.is_retryable());
    assert_eq!(
        e.to_string(),
        r#"provider "a": backend unavailable: connection refused"#
    );
    let e = validator
        .preflight(&[etcd("a", 1, "denied")], &secrets, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "permission_denied");
    let started = tokio::time::Instant::now();
    let e = validator
        .preflight(
            &[etcd("a", 1, "hang"), etcd("b", 2, "hang")],
            &secrets,
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), "timeout");
    assert_eq!(
        e.to_string(),
        r#"provider "b": preflight timed out after 5s"#
    );
    // Probes run concurrently: two hanging probes cost one timeout.
    assert_eq!(started.elapsed(), Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn secrets_are_resolved_by_the_probe_and_errors_are_clear() {
    let (validator, _, secrets) = setup();
    let mut with_token = etcd("a", 1, "up");
    with_token.auth = Some(provisioning_provider_api::ProviderAuth::token(
        provisioning_provider_api::SecretRef::parse("env:ETCD_TOKEN").unwrap(),
    ));
    let e = validator
        .preflight(&[with_token], &secrets, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "invalid_config");
    assert_eq!(
        e.to_string(),
        "secret env:ETCD_TOKEN: environment variable is not set"
    );
}

#[tokio::test(start_paused = true)]
async fn static_validation_fails_before_any_probe() {
    let (validator, probe, secrets) = setup();
    let set = vec![etcd("a", 1, "up"), etcd("b", 1, "up")];
    let e = validator
        .preflight(&set, &secrets, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "duplicate_priority");
    assert_eq!(probe.calls.load(Ordering::SeqCst), 0);
}
