//! Building providers from descriptors: quiet period, TLS material, error
//! codes the facade and CLI print.

use std::time::Duration;

use provisioning_backend_consul::{ConsulError, ConsulProvider};
use provisioning_provider_api::ProviderDescriptor;
use provisioning_registry::{ProvisioningError, SecretResolver};

fn descriptor(json: &str) -> ProviderDescriptor {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"))
}

fn build(json: &str, dir: &std::path::Path) -> Result<ConsulProvider, ConsulError> {
    ConsulProvider::builder(descriptor(json))
        .with_secrets(SecretResolver::new(dir))
        .with_env(|_| None)
        .build()
}

#[test]
fn quiet_period_is_wait_times_17_16() {
    let d = descriptor(
        r#"{"id":"c","kind":"consul","priority":1,"endpoints":["http://h:8500"],"watch":{"service":"app"}}"#,
    );
    assert_eq!(
        ConsulProvider::quiet_period_of(&d).unwrap_or_else(|e| panic!("{e}")),
        Duration::from_millis(4250)
    );
    let p = ConsulProvider::from_descriptor(d, &SecretResolver::new("."))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.quiet_period(), Duration::from_millis(4250));
    assert_eq!(p.watch().service, "app");
}

#[test]
fn tls_material_is_checked_when_building() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("ca.pem"), "not a certificate")
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("client.pem"), "not a certificate")
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.path().join("client.key"),
        "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END PRIVATE KEY-----\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));

    // verify=false and no material: fine.
    build(
        r#"{"id":"c","kind":"consul","priority":1,"endpoints":["https://h:8501"],"tls":{"verify":false},"watch":{"service":"app"}}"#,
        dir.path(),
    )
    .unwrap_or_else(|e| panic!("{e}"));

    for (tls, field) in [
        (r#"{"ca":"ca.pem"}"#, "tls.ca"),
        (
            r#"{"cert":"client.pem","key":"file:client.key"}"#,
            "tls.cert",
        ),
        (r#"{"cert":"client.pem"}"#, "tls.key"),
        (r#"{"key":"file:client.key"}"#, "tls.cert"),
        (r#"{"ca":"missing.pem"}"#, "tls.ca"),
    ] {
        let json = format!(
            r#"{{"id":"c","kind":"consul","priority":1,"endpoints":["https://h:8501"],"tls":{tls},"watch":{{"service":"app"}}}}"#
        );
        let e = build(&json, dir.path())
            .err()
            .unwrap_or_else(|| panic!("accepted {tls}"));
        assert_eq!(e.code(), "invalid_config", "{tls}: {e}");
        let p: ProvisioningError = e.into();
        assert_eq!(p.field(), Some(field), "{tls}: {p}");
        // The key's content never shows.
        assert!(!p.to_string().contains("c2VjcmV0"), "{p}");
    }
}

#[test]
fn unresolvable_token_reference_is_a_permanent_fault_not_a_build_error() {
    // Secrets are read per request (rotation), so a missing variable shows
    // in the stream, not at build time.
    let p = build(
        r#"{"id":"c","kind":"consul","priority":1,"endpoints":["http://127.0.0.1:9"],"auth":{"token":"env:SURELY_UNSET_TOKEN_4711"},"watch":{"service":"app"}}"#,
        std::path::Path::new("."),
    );
    assert!(p.is_ok());
}
