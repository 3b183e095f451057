//! [`ProviderValidator`]: static checks of descriptors and the optional
//! preflight through [`ProviderProbe`]s.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use provisioning_provider_api::{ProviderDescriptor, ProviderId, ProviderKind};

use crate::endpoint::{EndpointProblem, check_endpoint, normalize_endpoint};
use crate::{
    ConsulWatch, EtcdWatch, InMemoryWatch, K8sWatch, KindValidator, ProviderProbe,
    ProvisioningError, SecretResolver, SetChecker,
};

/// Checks descriptors before anything starts.
///
/// Static checks ([`validate`](Self::validate)): the kind is built in or
/// registered ([`with_kind`](Self::with_kind)); `endpoints` are present or
/// absent as the kind requires, each an `http`/`https` URL without
/// credentials, none twice; `auth` is a token or a username with a password;
/// `tls` has `cert` and `key` together; `watch` parses into the kind's schema
/// ([`InMemoryWatch`], [`ConsulWatch`], [`K8sWatch`], [`EtcdWatch`]) with no
/// unknown keys. Set checks ([`check_against`](Self::check_against)): unique
/// id, unique priority, no second provider with the same kind, endpoint set
/// and watch target (`conflict`).
///
/// Preflight ([`preflight`](Self::preflight)) runs the registered
/// [`ProviderProbe`]s of every enabled descriptor concurrently, each under a
/// time limit. A failure of either blocks start-up: the caller starts
/// nothing until both pass.
///
/// ```
/// use provisioning_provider_api::{ProviderDescriptor, ProviderId, ProviderKind};
/// use provisioning_registry::ProviderValidator;
/// let v = ProviderValidator::new();
/// let d = ProviderDescriptor::new(ProviderId::new("etcd-a")?, ProviderKind::Etcd, 10)
///     .with_endpoint("http://127.0.0.1:2379")
///     .with_watch("prefix", "/cluster/app/");
/// v.validate(&d)?;
/// let e = v.validate(&d.clone().with_endpoint("ftp://x")).unwrap_err();
/// assert_eq!(e.to_string(), r#"provider "etcd-a": field "endpoints[1]": scheme "ftp" is not http or https"#);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct ProviderValidator {
    kinds: BTreeMap<String, Arc<dyn KindValidator>>,
    probes: BTreeMap<String, Arc<dyn ProviderProbe>>,
}

impl ProviderValidator {
    /// A validator that knows the four built-in kinds and runs no probes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepts a custom kind, checked by `validator`. Built-in kind names
    /// cannot be replaced (`invalid_argument`).
    pub fn with_kind(
        mut self,
        validator: Arc<dyn KindValidator>,
    ) -> Result<Self, ProvisioningError> {
        let name = validator.kind().to_owned();
        if ProviderKind::from(name.as_str()).is_builtin() || name.is_empty() {
            return Err(ProvisioningError::InvalidArgument {
                message: format!("kind {name:?} is built in or empty and cannot be registered"),
            });
        }
        self.kinds.insert(name, validator);
        Ok(self)
    }

    /// Uses `probe` in [`preflight`](Self::preflight) for descriptors of
    /// `kind` (replacing an earlier one).
    pub fn with_probe(mut self, kind: ProviderKind, probe: Arc<dyn ProviderProbe>) -> Self {
        self.probes.insert(kind.as_str().to_owned(), probe);
        self
    }

    /// Whether descriptors of `kind` can be validated.
    pub fn knows_kind(&self, kind: &ProviderKind) -> bool {
        kind.is_builtin() || self.kinds.contains_key(kind.as_str())
    }

    /// Static checks of one descriptor on its own.
    pub fn validate(&self, descriptor: &ProviderDescriptor) -> Result<(), ProvisioningError> {
        self.validate_inner(descriptor)
            .map_err(|e| e.with_provider(&descriptor.id))
    }

    fn validate_inner(&self, d: &ProviderDescriptor) -> Result<(), ProvisioningError> {
        let custom = match &d.kind {
            ProviderKind::Custom(name) => match self.kinds.get(&**name) {
                Some(v) => Some(v),
                None => {
                    return Err(ProvisioningError::invalid(
                        None,
                        Some("kind".into()),
                        format!(
                            "unknown kind {name:?}: expected in_memory, consul, k8s, etcd or a registered custom kind"
                        ),
                    ));
                }
            },
            _ => None,
        };
        self.check_endpoints(d, custom)?;
        if let Some(auth) = &d.auth {
            if d.kind == ProviderKind::InMemory {
                return Err(field_error("auth", "not allowed for kind in_memory"));
            }
            auth.check_shape()
                .map_err(|(field, message)| field_error(field, message))?;
        }
        if let Some(tls) = &d.tls {
            if d.kind == ProviderKind::InMemory {
                return Err(field_error("tls", "not allowed for kind in_memory"));
            }
            if tls.ca.as_deref().is_some_and(str::is_empty) {
                return Err(field_error("tls.ca", "must not be empty"));
            }
            if tls.cert.as_deref().is_some_and(str::is_empty) {
                return Err(field_error("tls.cert", "must not be empty"));
            }
            match (&tls.cert, &tls.key) {
                (Some(_), None) => return Err(field_error("tls.key", "`cert` needs `key`")),
                (None, Some(_)) => return Err(field_error("tls.cert", "`key` needs `cert`")),
                _ => {}
            }
        }
        match &d.kind {
            ProviderKind::InMemory => InMemoryWatch::from_params(&d.watch).map(drop),
            ProviderKind::Consul => ConsulWatch::from_params(&d.watch).map(drop),
            ProviderKind::K8s => K8sWatch::from_params(&d.watch).map(drop),
            ProviderKind::Etcd => EtcdWatch::from_params(&d.watch).map(drop),
            ProviderKind::Custom(_) => match custom {
                Some(v) => v.validate(d),
                None => Ok(()),
            },
        }
    }

    fn check_endpoints(
        &self,
        d: &ProviderDescriptor,
        custom: Option<&Arc<dyn KindValidator>>,
    ) -> Result<(), ProvisioningError> {
        let kind = d.kind.as_str();
        let required = match &d.kind {
            ProviderKind::Consul | ProviderKind::Etcd => true,
            ProviderKind::InMemory | ProviderKind::K8s => false,
            ProviderKind::Custom(_) => custom.is_some_and(|v| v.endpoints_required()),
        };
        if required && d.endpoints.is_empty() {
            return Err(field_error(
                "endpoints",
                format!("required for kind {kind}"),
            ));
        }
        if d.kind == ProviderKind::InMemory && !d.endpoints.is_empty() {
            return Err(field_error("endpoints", "must be empty for kind in_memory"));
        }
        if d.kind == ProviderKind::K8s && d.endpoints.len() > 1 {
            return Err(field_error(
                "endpoints",
                "kind k8s takes at most one endpoint (the API server URL)",
            ));
        }
        let mut seen = BTreeSet::new();
        for (i, url) in d.endpoints.iter().enumerate() {
            let field = format!("endpoints[{i}]");
            match check_endpoint(url) {
                Ok(()) => {}
                Err(EndpointProblem::Credentials) => {
                    return Err(ProvisioningError::InlineSecret {
                        provider: None,
                        field,
                    });
                }
                Err(EndpointProblem::Invalid(message)) => {
                    return Err(field_error(&field, message));
                }
            }
            if !seen.insert(normalize_endpoint(url)) {
                return Err(field_error(&field, "listed twice"));
            }
        }
        Ok(())
    }

    /// What makes two descriptors the same registration: kind, endpoint set
    /// and watch target (consul: service, dc, ns, tag, filter; k8s:
    /// namespace, resource, selector or service; etcd: prefix). `None` for
    /// descriptors that never conflict (`in_memory`, custom kinds without a
    /// target, descriptors whose `watch` does not parse).
    pub fn conflict_key(&self, d: &ProviderDescriptor) -> Option<String> {
        let target = match &d.kind {
            ProviderKind::InMemory => None,
            ProviderKind::Consul => ConsulWatch::from_params(&d.watch)
                .ok()
                .and_then(|w| serde_json::to_string(&w.target()).ok()),
            ProviderKind::K8s => K8sWatch::from_params(&d.watch)
                .ok()
                .and_then(|w| serde_json::to_string(&w.target()).ok()),
            ProviderKind::Etcd => EtcdWatch::from_params(&d.watch).ok().map(|w| w.prefix),
            ProviderKind::Custom(name) => {
                self.kinds.get(&**name).and_then(|v| v.conflict_target(d))
            }
        }?;
        let endpoints: BTreeSet<String> =
            d.endpoints.iter().map(|e| normalize_endpoint(e)).collect();
        serde_json::to_string(&(d.kind.as_str(), endpoints, target)).ok()
    }

    /// Static checks of `candidate`, then its uniqueness against `existing`
    /// (which must not contain it): `duplicate_name`, `duplicate_priority`
    /// (disabled providers included), `conflict`.
    pub fn check_against(
        &self,
        existing: &[ProviderDescriptor],
        candidate: &ProviderDescriptor,
    ) -> Result<(), ProvisioningError> {
        self.validate(candidate)?;
        if existing.iter().any(|e| e.id == candidate.id) {
            return Err(ProvisioningError::DuplicateName {
                id: candidate.id.clone(),
            });
        }
        if let Some(other) = existing.iter().find(|e| e.priority == candidate.priority) {
            return Err(ProvisioningError::DuplicatePriority {
                id: candidate.id.clone(),
                priority: candidate.priority,
                existing: other.id.clone(),
            });
        }
        if let Some(key) = self.conflict_key(candidate)
            && let Some(other) = existing
                .iter()
                .find(|e| self.conflict_key(e).as_deref() == Some(key.as_str()))
        {
            return Err(ProvisioningError::Conflict {
                id: candidate.id.clone(),
                existing: other.id.clone(),
            });
        }
        Ok(())
    }

    /// Checks a whole set in order: each descriptor on its own and against
    /// the ones before it. The error names the offending descriptor; its
    /// index is returned with it.
    pub fn validate_set(
        &self,
        set: &[ProviderDescriptor],
    ) -> Result<(), (usize, ProvisioningError)> {
        let mut checker = self.set_checker();
        for (i, d) in set.iter().enumerate() {
            checker.add(d).map_err(|e| (i, e))?;
        }
        Ok(())
    }

    /// An incremental checker of a set, for loaders that report the first
    /// bad descriptor as they go.
    pub fn set_checker(&self) -> SetChecker<'_> {
        SetChecker::new(self)
    }

    /// Runs the probe of every enabled descriptor whose kind has one,
    /// concurrently, each limited to `timeout`, after the static checks of
    /// the whole set. Returns the ids probed, highest priority first; the
    /// error is the one of the highest-priority descriptor that failed.
    ///
    /// A probe that does not finish in time is
    /// [`ProvisioningError::Timeout`] (`timeout`). Needs a tokio runtime
    /// with the time driver.
    pub async fn preflight(
        &self,
        descriptors: &[ProviderDescriptor],
        secrets: &SecretResolver,
        timeout: Duration,
    ) -> Result<Vec<ProviderId>, ProvisioningError> {
        self.validate_set(descriptors).map_err(|(_, e)| e)?;
        let mut enabled: Vec<&ProviderDescriptor> =
            descriptors.iter().filter(|d| d.enabled).collect();
        enabled.sort_by_key(|d| std::cmp::Reverse(d.priority));
        let runs = enabled.iter().filter_map(|d| {
            let probe = self.probes.get(d.kind.as_str())?;
            Some(async move {
                let outcome = match tokio::time::timeout(timeout, probe.probe(d, secrets)).await {
                    Ok(result) => result.map_err(|e| e.with_provider(&d.id)),
                    Err(_) => Err(ProvisioningError::Timeout {
                        provider: Some(d.id.clone()),
                        operation: "preflight".into(),
                        after: timeout,
                    }),
                };
                (d.id.clone(), outcome)
            })
        });
        let mut probed = Vec::new();
        for (id, outcome) in join_all(runs).await {
            outcome?;
            probed.push(id);
        }
        Ok(probed)
    }
}

fn field_error(field: &str, message: impl Into<String>) -> ProvisioningError {
    ProvisioningError::invalid(None, Some(field.to_owned()), message)
}

impl fmt::Debug for ProviderValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderValidator")
            .field("custom_kinds", &self.kinds.keys().collect::<Vec<_>>())
            .field("probes", &self.probes.keys().collect::<Vec<_>>())
            .finish()
    }
}
