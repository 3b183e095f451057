//! The fake's data: services, instances, checks, ACL tokens, switches and
//! the request log.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

/// Status of a Consul health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CheckStatus {
    /// `passing`.
    #[default]
    Passing,
    /// `warning` (filtered out by `?passing`).
    Warning,
    /// `critical` (filtered out by `?passing`).
    Critical,
}

impl CheckStatus {
    /// Consul's string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passing => "passing",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

/// One registered service instance with its node and checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeInstance {
    /// Node name (`Node.Node`).
    pub node: String,
    /// Node address (`Node.Address`).
    pub node_address: String,
    /// Status of the node's `serfHealth` check.
    pub node_check: CheckStatus,
    /// Service name.
    pub service: String,
    /// Instance id (`Service.ID`).
    pub id: String,
    /// Instance address (`Service.Address`); empty means "the node's".
    pub address: String,
    /// Port.
    pub port: u16,
    /// Tags.
    pub tags: Vec<String>,
    /// Service meta.
    pub meta: BTreeMap<String, String>,
    /// Service checks by check id.
    pub checks: BTreeMap<String, CheckStatus>,
    /// `Service.CreateIndex`: the index of the write that registered the
    /// instance; kept while it stays registered, new after a deregister and
    /// register (as Consul's catalog does). 0 means "set it on insert".
    pub create_index: u64,
}

impl FakeInstance {
    /// An instance on its own node `node-<id>` at `address`, with one
    /// passing service check `service:<id>`.
    pub fn new(service: &str, id: &str, address: &str, port: u16) -> Self {
        let mut checks = BTreeMap::new();
        checks.insert(format!("service:{id}"), CheckStatus::Passing);
        Self {
            node: format!("node-{id}"),
            node_address: address.to_owned(),
            node_check: CheckStatus::Passing,
            service: service.to_owned(),
            id: id.to_owned(),
            address: address.to_owned(),
            port,
            tags: Vec::new(),
            meta: BTreeMap::new(),
            checks,
            create_index: 0,
        }
    }

    /// Sets the node name and address.
    pub fn with_node(mut self, node: &str, node_address: &str) -> Self {
        self.node = node.to_owned();
        self.node_address = node_address.to_owned();
        self
    }

    /// Sets the instance address (empty: use the node's).
    pub fn with_address(mut self, address: &str) -> Self {
        self.address = address.to_owned();
        self
    }

    /// Adds a tag.
    pub fn with_tag(mut self, tag: &str) -> Self {
        self.tags.push(tag.to_owned());
        self
    }

    /// Sets a meta key.
    pub fn with_meta(mut self, key: &str, value: &str) -> Self {
        self.meta.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Sets every service check's status.
    pub fn with_check_status(mut self, status: CheckStatus) -> Self {
        for s in self.checks.values_mut() {
            *s = status;
        }
        self
    }

    pub(super) fn all_passing(&self) -> bool {
        self.node_check == CheckStatus::Passing
            && self.checks.values().all(|s| *s == CheckStatus::Passing)
    }
}

/// What a token may do when ACLs are enabled.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FakeAclPolicy {
    /// Services it may read (`"*"` = all).
    pub read: Vec<String>,
    /// Whether it may use the agent API (register, pass, deregister).
    pub agent_write: bool,
}

impl FakeAclPolicy {
    /// Read everything, write the agent.
    pub fn all() -> Self {
        Self {
            read: vec!["*".into()],
            agent_write: true,
        }
    }

    /// Nothing.
    pub fn none() -> Self {
        Self::default()
    }

    /// Read these services.
    pub fn read(services: &[&str]) -> Self {
        Self {
            read: services.iter().map(|s| (*s).to_owned()).collect(),
            agent_write: false,
        }
    }

    pub(super) fn may_read(&self, service: &str) -> bool {
        self.read.iter().any(|s| s == "*" || s == service)
    }
}

/// How every request is answered, whatever it asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FakeFailure {
    /// Answer normally.
    #[default]
    None,
    /// `500 No cluster leader`.
    ServerError,
    /// `429` (too many connections from this client).
    TooManyRequests,
    /// `403 Permission denied`.
    Forbidden,
    /// Hold every request without answering until the failure changes.
    Hang,
    /// A `200` whose JSON body is cut in half (the headers are complete).
    TruncatedJson,
}

/// A token as the request log keeps it: comparable, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct RedactedToken(String);

impl RedactedToken {
    pub(super) fn new(token: &str) -> Self {
        Self(token.to_owned())
    }

    /// Whether the request carried exactly `token`.
    pub fn matches(&self, token: &str) -> bool {
        self.0 == token
    }
}

impl fmt::Debug for RedactedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// One request as the fake received it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LoggedRequest {
    /// When it arrived.
    pub received: Instant,
    /// `GET`, `PUT`, ...
    pub method: String,
    /// The decoded path (`/v1/health/service/app`).
    pub path: String,
    /// The decoded query pairs in order; a key without `=` has an empty
    /// value.
    pub query: Vec<(String, String)>,
    /// `X-Consul-Token`, else an `Authorization: Bearer` token, else
    /// `?token=`; redacted.
    pub token: Option<RedactedToken>,
    /// The status answered; `None` while held or when the client left.
    pub status: Option<u16>,
}

impl LoggedRequest {
    /// The first value of a query parameter.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The `index` parameter, if any.
    pub fn index(&self) -> Option<u64> {
        self.param("index").and_then(|v| v.parse().ok())
    }

    /// Whether this is a health-service query for `service`.
    pub fn is_health(&self, service: &str) -> bool {
        self.path == format!("/v1/health/service/{service}")
    }
}

#[derive(Debug, Default)]
pub(super) struct ServiceState {
    pub(super) index: u64,
    pub(super) instances: BTreeMap<String, FakeInstance>,
}

#[derive(Debug)]
pub(super) struct TtlCheck {
    pub(super) service: String,
    pub(super) instance: String,
    pub(super) ttl: Duration,
    pub(super) generation: u64,
}

#[derive(Debug)]
pub(super) struct State {
    pub(super) services: BTreeMap<String, ServiceState>,
    /// The raft index: bumped by every write.
    pub(super) index: u64,
    pub(super) failure: FakeFailure,
    pub(super) index_zero: bool,
    pub(super) leader_headers: bool,
    pub(super) last_contact: Duration,
    pub(super) leader: String,
    /// `None`: ACLs disabled.
    pub(super) acl: Option<Acl>,
    pub(super) ttl_checks: BTreeMap<String, TtlCheck>,
    pub(super) log: Vec<LoggedRequest>,
}

#[derive(Debug, Default)]
pub(super) struct Acl {
    pub(super) anonymous: FakeAclPolicy,
    pub(super) tokens: BTreeMap<String, FakeAclPolicy>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            services: BTreeMap::new(),
            index: 10,
            failure: FakeFailure::None,
            index_zero: false,
            leader_headers: true,
            last_contact: Duration::ZERO,
            leader: "127.0.0.1:8300".into(),
            acl: None,
            ttl_checks: BTreeMap::new(),
            log: Vec::new(),
        }
    }
}

impl State {
    /// Records a write to `service`: the raft index moves and the service
    /// index follows it.
    pub(super) fn bump(&mut self, service: &str) {
        self.index += 1;
        let index = self.index;
        self.services.entry(service.to_owned()).or_default().index = index;
    }

    /// Sets `instance.create_index` for its insertion by the write about to
    /// be recorded: kept from a registered instance of the same id, else the
    /// index that write will get.
    pub(super) fn admit(&self, mut instance: FakeInstance) -> FakeInstance {
        if instance.create_index == 0 {
            instance.create_index = self
                .services
                .get(&instance.service)
                .and_then(|svc| svc.instances.get(&instance.id))
                .map_or(self.index + 1, |old| old.create_index);
        }
        instance
    }

    /// `X-Consul-Index` of a health query: the service's index, or the
    /// raft index for a service never written; never below 1.
    pub(super) fn service_index(&self, service: &str) -> u64 {
        self.services
            .get(service)
            .map_or(self.index, |s| s.index)
            .max(1)
    }

    /// The policy of a request's token: `Err` when the token is unknown.
    pub(super) fn policy(&self, token: Option<&str>) -> Result<FakeAclPolicy, ()> {
        match &self.acl {
            None => Ok(FakeAclPolicy::all()),
            Some(acl) => match token {
                None | Some("") => Ok(acl.anonymous.clone()),
                Some(t) => acl.tokens.get(t).cloned().ok_or(()),
            },
        }
    }
}
