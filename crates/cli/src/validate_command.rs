//! `provisioning validate [--connect]`.

use std::time::Duration;

use cluster_provisioning::api::{ProviderDescriptor, ProviderKind, SecretRef};
use cluster_provisioning::registry::{ProviderValidator, SecretResolver};
use serde_json::json;

use crate::cli_error::CliError;
use crate::output::Output;
use crate::store_config::StoreConfig;

/// Time limit of one backend's probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Loads and validates store and policy; with `connect`, resolves the
/// secrets of every enabled descriptor and probes its backend.
pub(crate) async fn run(config: &StoreConfig, connect: bool, out: &Output) -> Result<(), CliError> {
    let registry = config.load_registry()?;
    let descriptors = registry.list();
    let policy = config.load_policy()?;
    let warnings = config.check_policy(&policy, &descriptors)?;
    for warning in &warnings {
        out.warn(&format!("{}: {warning}", config.policy_name()));
    }
    let enabled = descriptors.iter().filter(|d| d.enabled).count();

    let mut probed = Vec::new();
    if connect {
        let resolver = config.secret_resolver();
        probed = connect_check(&descriptors, &resolver, registry.validator()).await?;
    }

    if out.json() {
        let mut report = json!({
            "valid": true,
            "store": config.store_name(),
            "providers": descriptors.len(),
            "enabled": enabled,
            "policy": config.policy_name(),
            "warnings": warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
        });
        if connect {
            report["reachable"] = json!(probed);
        }
        out.line(&report.to_string());
    } else {
        out.line(&format!(
            "{}: valid, {} provider{} ({enabled} enabled)",
            config.store_name(),
            descriptors.len(),
            plural(descriptors.len()),
        ));
        out.line(&format!("policy: {}: valid", config.policy_name()));
        if connect {
            for d in descriptors.iter().filter(|d| d.enabled) {
                let state = if d.kind == ProviderKind::InMemory {
                    "in-process, nothing to reach"
                } else if probed.iter().any(|p| p == d.id.as_str()) {
                    "reachable"
                } else {
                    "not probed: no probe for this kind in this build"
                };
                out.line(&format!("{:<20} {:<10} {state}", d.id, d.kind.as_str()));
            }
        }
    }
    Ok(())
}

/// `--connect`: resolves the secrets of every enabled descriptor, then
/// probes every enabled backend through its kind's probe in `validator` (taken as an
/// argument so that tests can count the probe calls); returns the ids
/// probed, highest priority first.
async fn connect_check(
    descriptors: &[ProviderDescriptor],
    resolver: &SecretResolver,
    validator: &ProviderValidator,
) -> Result<Vec<String>, CliError> {
    for d in descriptors.iter().filter(|d| d.enabled) {
        resolve_secrets(d, resolver)?;
    }
    let ids = validator
        .preflight(descriptors, resolver, PROBE_TIMEOUT)
        .await?;
    Ok(ids.iter().map(ToString::to_string).collect())
}

/// Resolves every secret reference of `d` (the values are dropped at once).
fn resolve_secrets(d: &ProviderDescriptor, resolver: &SecretResolver) -> Result<(), CliError> {
    let mut refs: Vec<&SecretRef> = Vec::new();
    if let Some(auth) = &d.auth {
        refs.extend(auth.token.iter());
        refs.extend(auth.username.iter());
        refs.extend(auth.password.iter());
    }
    if let Some(key) = d.tls.as_ref().and_then(|t| t.key.as_ref()) {
        refs.push(key);
    }
    for reference in refs {
        resolver
            .resolve(reference)
            .map_err(|e| CliError::invalid_config(format!("provider \"{}\": {e}", d.id)))?;
    }
    Ok(())
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    //! Which probes `--connect` calls and how often (mockall): every enabled
    //! backend once, a disabled one never; a failing probe ends the command
    //! with its code and exit 3.

    use std::sync::Arc;

    use super::*;
    use crate::cli_error::Exit;
    use cluster_provisioning::ProvisioningError;
    use cluster_provisioning::registry::{ProbeFuture, ProviderProbe, descriptor_from_json};
    use mockall::mock;

    // The answers are made before the call returns, so the future borrows
    // nothing: `'static` satisfies the trait and lets mockall store them.
    mock! {
        Probe {}
        impl ProviderProbe for Probe {
            fn probe<'a>(
                &'a self,
                descriptor: &'a ProviderDescriptor,
                secrets: &'a SecretResolver,
            ) -> ProbeFuture<'static>;
        }
    }

    fn d(json: &str) -> ProviderDescriptor {
        descriptor_from_json(json).unwrap_or_else(|e| panic!("{json}: {e}"))
    }

    /// Enabled etcd `a`, disabled etcd `b`, enabled consul `c`, in-memory
    /// `m` (nothing to reach).
    fn set() -> Vec<ProviderDescriptor> {
        vec![
            d(
                r#"{"id":"a","kind":"etcd","priority":1,"endpoints":["http://127.0.0.1:2379"],"watch":{"prefix":"/a/"}}"#,
            ),
            d(
                r#"{"id":"b","kind":"etcd","priority":2,"endpoints":["http://127.0.0.1:2379"],"watch":{"prefix":"/b/"},"enabled":false}"#,
            ),
            d(
                r#"{"id":"c","kind":"consul","priority":3,"endpoints":["http://127.0.0.1:8500"],"watch":{"service":"c"}}"#,
            ),
            d(r#"{"id":"m","kind":"in_memory","priority":4}"#),
        ]
    }

    fn is(id: &'static str) -> impl Fn(&ProviderDescriptor, &SecretResolver) -> bool + Send {
        move |descriptor, _| descriptor.id.as_str() == id
    }

    fn answer(result: Result<(), ProvisioningError>) -> ProbeFuture<'static> {
        Box::pin(std::future::ready(result))
    }

    /// Probes for etcd (`a` once with `a_answers`, `b` never) and consul
    /// (`c` once).
    fn probes(
        a_answers: fn() -> Result<(), ProvisioningError>,
    ) -> (Arc<MockProbe>, Arc<MockProbe>) {
        let mut etcd = MockProbe::new();
        etcd.expect_probe()
            .withf(is("a"))
            .times(1)
            .returning(move |_, _| answer(a_answers()));
        etcd.expect_probe().withf(is("b")).never();
        let mut consul = MockProbe::new();
        consul
            .expect_probe()
            .withf(is("c"))
            .times(1)
            .returning(|_, _| answer(Ok(())));
        (Arc::new(etcd), Arc::new(consul))
    }

    async fn check(
        etcd: &Arc<MockProbe>,
        consul: &Arc<MockProbe>,
    ) -> Result<Vec<String>, CliError> {
        let validator = cluster_provisioning::builtin_validator()
            .with_probe(ProviderKind::Etcd, etcd.clone())
            .with_probe(ProviderKind::Consul, consul.clone());
        let resolver = SecretResolver::new("/nonexistent");
        connect_check(&set(), &resolver, &validator).await
    }

    fn verify(probe: Arc<MockProbe>) {
        Arc::try_unwrap(probe)
            .ok()
            .unwrap_or_else(|| panic!("the probe is still shared"))
            .checkpoint();
    }

    #[tokio::test]
    async fn connect_probes_each_enabled_backend_once_and_no_disabled_one() {
        let (etcd, consul) = probes(|| Ok(()));
        let probed = check(&etcd, &consul).await.expect("all reachable");
        assert_eq!(probed, ["c", "a"]);
        verify(etcd);
        verify(consul);
    }

    #[tokio::test]
    async fn an_unreachable_backend_fails_connect_with_its_code_and_exit_3() {
        let (etcd, consul) = probes(|| {
            Err(ProvisioningError::BackendUnavailable {
                provider: None,
                detail: "connection refused".into(),
            })
        });
        let e = check(&etcd, &consul).await.expect_err("a is unreachable");
        assert_eq!(e.code(), "backend_unavailable", "{e}");
        assert_eq!(e.exit(), Exit::Unreachable, "{e}");
        assert_eq!(
            e.to_string(),
            r#"error[backend_unavailable]: provider "a": backend unavailable: connection refused"#
        );
        verify(etcd);
        verify(consul);
    }
}
