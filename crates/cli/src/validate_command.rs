//! `provisioning validate [--connect]`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use cluster_provisioning::ProviderFactories;
use cluster_provisioning::api::{ProviderDescriptor, ProviderKind, SecretRef};
use cluster_provisioning::registry::{ProviderValidator, SecretResolver};
use serde_json::json;

use crate::cli_error::CliError;
use crate::output::Output;
use crate::reachability_probe::ReachabilityProbe;
use crate::store_config::StoreConfig;

/// Time limit of one backend's probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Time limit of one TCP connection of the reachability probe.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

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
        for d in descriptors.iter().filter(|d| d.enabled) {
            resolve_secrets(d, &resolver)?;
        }
        let validator = probing_validator();
        let ids = validator
            .preflight(&descriptors, &resolver, PROBE_TIMEOUT)
            .await?;
        probed = ids.iter().map(ToString::to_string).collect();
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

/// A validator with a probe for every kind that talks to a backend: the
/// backends' own preflight probes (reachability, credentials, permissions)
/// from the facade, and a TCP reachability check for a network kind this
/// build has no probe for.
fn probing_validator() -> ProviderValidator {
    let mut validator = ProviderValidator::new();
    let mut covered = BTreeSet::new();
    for (kind, probe) in ProviderFactories::builtin().probes() {
        covered.insert(kind.as_str().to_owned());
        validator = validator.with_probe(kind, probe);
    }
    let fallback = Arc::new(ReachabilityProbe::new(CONNECT_TIMEOUT));
    for kind in [ProviderKind::Consul, ProviderKind::Etcd, ProviderKind::K8s] {
        if !covered.contains(kind.as_str()) {
            validator = validator.with_probe(kind, fallback.clone());
        }
    }
    validator
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
