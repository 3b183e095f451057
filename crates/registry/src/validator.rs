//! [`ProviderValidator`]: static checks of descriptors and the optional
//! preflight through [`ProviderProbe`]s.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use provisioning_provider_api::{ClusterProvider, ProviderDescriptor, ProviderId, ProviderKind};

use crate::endpoint::{EndpointProblem, check_endpoint, normalize_endpoint};
use crate::{
    BackendKind, BuildContext, EndpointRule, ProviderProbe, ProvisioningError, SecretResolver,
    SetChecker,
};

/// Checks descriptors before anything starts, through the registered
/// [`BackendKind`]s.
///
/// The validator knows no kind of its own: a descriptor's kind must be
/// registered ([`with_kind`](Self::with_kind); the facade's
/// `builtin_kinds()` are the four built-in ones). Static checks
/// ([`validate`](Self::validate)): the kind is registered; `endpoints` are
/// present or absent as the kind requires ([`EndpointRule`]), each an
/// `http`/`https` URL without credentials, none twice; `auth` is a token or
/// a username with a password and `tls` has `cert` and `key` together, for
/// kinds that take credentials; `watch` passes the kind's schema with no
/// unknown keys. Set checks ([`check_against`](Self::check_against)):
/// unique id, unique priority, no second provider with the same kind,
/// endpoint set and watch target (`conflict`).
///
/// Preflight ([`preflight`](Self::preflight)) runs the probes of every
/// enabled descriptor concurrently, each under a time limit. A failure of
/// either blocks start-up: the caller starts nothing until both pass.
///
/// ```
/// use std::sync::Arc;
/// use provisioning_provider_api::{ProviderDescriptor, ProviderId, ProviderKind};
/// use provisioning_registry::ProviderValidator;
/// let d = ProviderDescriptor::new(ProviderId::new("etcd-a")?, ProviderKind::Etcd, 10)
///     .with_endpoint("http://127.0.0.1:2379")
///     .with_watch("prefix", "/cluster/app/");
/// let e = ProviderValidator::new().validate(&d).unwrap_err();
/// assert_eq!(e.to_string(), r#"provider "etcd-a": field "kind": unknown kind "etcd": no kind is registered"#);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct ProviderValidator {
    kinds: BTreeMap<String, Arc<dyn BackendKind>>,
    probes: BTreeMap<String, Arc<dyn ProviderProbe>>,
}

impl ProviderValidator {
    /// A validator that knows no kind yet and runs no probe.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepts descriptors of `kind`, checked, conflict-tested, probed and
    /// built by it. A kind registered again under the same name replaces
    /// the earlier one (e.g. a built-in kind with an injected client).
    pub fn with_kind(mut self, kind: Arc<dyn BackendKind>) -> Self {
        self.kinds.insert(kind.name().to_owned(), kind);
        self
    }

    /// [`with_kind`](Self::with_kind) for each of `kinds`.
    pub fn with_kinds(self, kinds: impl IntoIterator<Item = Arc<dyn BackendKind>>) -> Self {
        kinds.into_iter().fold(self, Self::with_kind)
    }

    /// Uses `probe` in [`preflight`](Self::preflight) for descriptors of
    /// `kind` instead of the kind's own probe.
    pub fn with_probe(mut self, kind: ProviderKind, probe: Arc<dyn ProviderProbe>) -> Self {
        self.probes.insert(kind.as_str().to_owned(), probe);
        self
    }

    /// Whether descriptors of `kind` can be validated.
    pub fn knows_kind(&self, kind: &ProviderKind) -> bool {
        self.kinds.contains_key(kind.as_str())
    }

    /// The registered kind named `kind`.
    pub fn kind(&self, kind: &ProviderKind) -> Option<&Arc<dyn BackendKind>> {
        self.kinds.get(kind.as_str())
    }

    /// The names of the registered kinds, sorted.
    pub fn kind_names(&self) -> impl Iterator<Item = &str> {
        self.kinds.keys().map(String::as_str)
    }

    /// Static checks of one descriptor on its own.
    pub fn validate(&self, descriptor: &ProviderDescriptor) -> Result<(), ProvisioningError> {
        self.validate_inner(descriptor)
            .map_err(|e| e.with_provider(&descriptor.id))
    }

    fn known_kind(
        &self,
        d: &ProviderDescriptor,
    ) -> Result<&Arc<dyn BackendKind>, ProvisioningError> {
        self.kind(&d.kind).ok_or_else(|| {
            let known = if self.kinds.is_empty() {
                "no kind is registered".to_owned()
            } else {
                format!(
                    "expected {}",
                    self.kind_names().collect::<Vec<_>>().join(", ")
                )
            };
            field_error(
                "kind",
                format!("unknown kind {:?}: {known}", d.kind.as_str()),
            )
        })
    }

    fn validate_inner(&self, d: &ProviderDescriptor) -> Result<(), ProvisioningError> {
        let kind = self.known_kind(d)?;
        check_endpoints(d, kind.endpoints())?;
        if !kind.takes_credentials() {
            let name = kind.name();
            if d.auth.is_some() {
                return Err(field_error("auth", format!("not allowed for kind {name}")));
            }
            if d.tls.is_some() {
                return Err(field_error("tls", format!("not allowed for kind {name}")));
            }
        }
        if let Some(auth) = &d.auth {
            auth.check_shape()
                .map_err(|(field, message)| field_error(field, message))?;
        }
        if let Some(tls) = &d.tls {
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
        kind.validate_watch(d)
    }

    /// What makes two descriptors the same registration: kind, endpoint set
    /// and the kind's watch target ([`BackendKind::conflict_target`]).
    /// `None` for descriptors that never conflict (kinds without a target,
    /// descriptors that are not valid).
    pub fn conflict_key(&self, d: &ProviderDescriptor) -> Option<String> {
        let kind = self.kind(&d.kind)?;
        if kind.validate_watch(d).is_err() {
            return None;
        }
        let target = kind.conflict_target(d)?;
        let endpoints: BTreeSet<String> =
            d.endpoints.iter().map(|e| normalize_endpoint(e)).collect();
        serde_json::to_string(&(d.kind.as_str(), endpoints, target)).ok()
    }

    /// Every descriptor with the quiet period of its kind, in the form
    /// `FailoverPolicy::validate` takes (a quiet period must stay inside a
    /// third of the failover timeout).
    pub fn quiet_periods(
        &self,
        descriptors: &[ProviderDescriptor],
    ) -> Result<Vec<(ProviderId, Option<Duration>)>, ProvisioningError> {
        descriptors
            .iter()
            .map(|d| {
                let kind = self.known_kind(d).map_err(|e| e.with_provider(&d.id))?;
                let period = kind.quiet_period(d).map_err(|e| e.with_provider(&d.id))?;
                Ok((d.id.clone(), period))
            })
            .collect()
    }

    /// Builds the provider of `descriptor` through its kind; errors name
    /// the descriptor.
    pub fn build(
        &self,
        descriptor: &ProviderDescriptor,
        context: &BuildContext,
    ) -> Result<Arc<dyn ClusterProvider>, ProvisioningError> {
        self.known_kind(descriptor)
            .and_then(|kind| kind.build(descriptor, context))
            .map_err(|e| e.with_provider(&descriptor.id))
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

    /// Runs the probe of every enabled descriptor whose kind has one (or
    /// the one given with [`with_probe`](Self::with_probe)),
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
            let probe = match self.probes.get(d.kind.as_str()) {
                Some(probe) => probe.probe(d, secrets),
                None => self.kind(&d.kind)?.probe(d, secrets)?,
            };
            Some(async move {
                let outcome = match tokio::time::timeout(timeout, probe).await {
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

fn check_endpoints(d: &ProviderDescriptor, rule: EndpointRule) -> Result<(), ProvisioningError> {
    let kind = d.kind.as_str();
    match rule {
        EndpointRule::Required if d.endpoints.is_empty() => {
            return Err(field_error(
                "endpoints",
                format!("required for kind {kind}"),
            ));
        }
        EndpointRule::Forbidden if !d.endpoints.is_empty() => {
            return Err(field_error(
                "endpoints",
                format!("must be empty for kind {kind}"),
            ));
        }
        EndpointRule::AtMostOne { what } if d.endpoints.len() > 1 => {
            return Err(field_error(
                "endpoints",
                format!("kind {kind} takes at most one endpoint ({what})"),
            ));
        }
        _ => {}
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

fn field_error(field: &str, message: impl Into<String>) -> ProvisioningError {
    ProvisioningError::invalid(None, Some(field.to_owned()), message)
}

impl fmt::Debug for ProviderValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderValidator")
            .field("kinds", &self.kinds.keys().collect::<Vec<_>>())
            .field("probes", &self.probes.keys().collect::<Vec<_>>())
            .finish()
    }
}
