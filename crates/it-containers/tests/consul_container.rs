//! The shared conformance suite against a real Consul agent
//! (`hashicorp/consul`, dev mode, ACLs on with default-deny).
//!
//! The driver changes membership through the catalog API (one node per
//! member; labels as service meta, blocking as the `blocked` tag) and
//! injects faults the way production sees them:
//! - `Retryable`: the container is paused, so queries hang until the
//!   provider's request timeout (`timeout`, retryable); `Heal` unpauses;
//! - `Permanent`: the provider's ACL token is deleted (403 "ACL not found",
//!   `permission_denied`, permanent); `Heal` creates a new token and writes
//!   it to the token file, which the provider reads again on reconnect;
//! - `Terminate`: the provider is told to stop (`ConsulProvider::close`).

use std::sync::Mutex;
use std::time::Duration;

use provisioning_backend_consul::ConsulProvider;
use provisioning_provider_api::{MemberSpec, MemberState, ProviderDescriptor};
use provisioning_registry::SecretResolver;
use provisioning_testkit::{
    Capabilities, ConformanceDriver, DriverError, InjectedFault, MANDATORY_CASES, MembershipChange,
    OPTIONAL_CASES, SuiteConfig, run_conformance,
};
use serde_json::{Value, json};
use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

const IMAGE: &str = "hashicorp/consul";
const TAG: &str = "1.20";
const SERVICE: &str = "app";
const BLOCKED_TAG: &str = "blocked";
const MANAGEMENT: &str = "e95b599e-166e-7d80-08ad-aee76e7ddf19";
const ACL_HCL: &str = r#"acl { enabled = true default_policy = "deny" enable_token_persistence = false tokens { initial_management = "e95b599e-166e-7d80-08ad-aee76e7ddf19" } }"#;

/// Talks to the agent with the management token.
struct Admin {
    http: reqwest::Client,
    base: String,
}

impl Admin {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, DriverError> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("X-Consul-Token", MANAGEMENT);
        if let Some(body) = body {
            request = request.body(body.to_string());
        }
        let response = request
            .send()
            .await
            .map_err(|e| DriverError(format!("{path}: {e}")))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| DriverError(format!("{path}: {e}")))?;
        if !status.is_success() {
            return Err(DriverError(format!("{path}: HTTP {status}: {text}")));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn register(&self, spec: &MemberSpec) -> Result<(), DriverError> {
        let tags: Vec<&str> = if spec.blocked {
            vec![BLOCKED_TAG]
        } else {
            vec![]
        };
        self.call(
            reqwest::Method::PUT,
            "/v1/catalog/register",
            Some(json!({
                "Node": spec.id.as_str(),
                "Address": spec.host,
                "Service": {
                    "ID": spec.id.as_str(),
                    "Service": SERVICE,
                    "Address": spec.host,
                    "Port": spec.port,
                    "Meta": spec.labels,
                    "Tags": tags,
                },
            })),
        )
        .await
        .map(drop)
    }

    async fn deregister(&self, id: &str) -> Result<(), DriverError> {
        self.call(
            reqwest::Method::PUT,
            "/v1/catalog/deregister",
            Some(json!({ "Node": id })),
        )
        .await
        .map(drop)
    }

    async fn members(&self) -> Result<Vec<MemberSpec>, DriverError> {
        let list = self
            .call(
                reqwest::Method::GET,
                &format!("/v1/catalog/service/{SERVICE}"),
                None,
            )
            .await?;
        let entries = list.as_array().cloned().unwrap_or_default();
        Ok(entries
            .iter()
            .map(|e| MemberSpec {
                id: e["ServiceID"].as_str().unwrap_or_default().into(),
                host: e["ServiceAddress"].as_str().unwrap_or_default().into(),
                port: e["ServicePort"]
                    .as_u64()
                    .and_then(|p| u16::try_from(p).ok())
                    .unwrap_or(0),
                labels: serde_json::from_value(e["ServiceMeta"].clone()).unwrap_or_default(),
                blocked: e["ServiceTags"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|t| t == BLOCKED_TAG)),
                incarnation: None,
                state: MemberState::Serving,
            })
            .collect())
    }

    /// Creates a token that may read the service and its nodes; returns
    /// (accessor id, secret id).
    async fn create_token(&self) -> Result<(String, String), DriverError> {
        let token = self
            .call(
                reqwest::Method::PUT,
                "/v1/acl/token",
                Some(json!({ "Policies": [{ "Name": "app-read" }] })),
            )
            .await?;
        let field = |k: &str| {
            token[k]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| DriverError(format!("token without {k}")))
        };
        Ok((field("AccessorID")?, field("SecretID")?))
    }
}

struct Driver<'a> {
    container: &'a ContainerAsync<GenericImage>,
    admin: Admin,
    provider: &'a ConsulProvider,
    token_file: std::path::PathBuf,
    /// The accessor of the provider's current token.
    accessor: Mutex<String>,
    paused: Mutex<bool>,
}

impl Driver<'_> {
    async fn set_blocked(&self, id: &str, blocked: bool) -> Result<(), DriverError> {
        let mut member = self
            .admin
            .members()
            .await?
            .into_iter()
            .find(|m| m.id.as_str() == id)
            .ok_or_else(|| DriverError(format!("no member {id}")))?;
        member.blocked = blocked;
        self.admin.register(&member).await
    }

    async fn rotate_token(&self) -> Result<(), DriverError> {
        let (accessor, secret) = self.admin.create_token().await?;
        std::fs::write(&self.token_file, secret).map_err(|e| DriverError(e.to_string()))?;
        *self
            .accessor
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = accessor;
        Ok(())
    }
}

impl ConformanceDriver for Driver<'_> {
    fn capabilities(&self) -> Capabilities {
        Capabilities::none()
            .with_labels(true)
            .with_block_non_members(false)
            .with_initial_snapshot(true)
    }

    async fn apply(&self, change: MembershipChange) -> Result<(), DriverError> {
        match change {
            MembershipChange::Reset(specs) => {
                for old in self.admin.members().await? {
                    if !specs.iter().any(|s| s.id == old.id) {
                        self.admin.deregister(old.id.as_str()).await?;
                    }
                }
                for spec in &specs {
                    self.admin.register(spec).await?;
                }
                Ok(())
            }
            MembershipChange::Upsert(spec) => self.admin.register(&spec).await,
            MembershipChange::Remove(id) => self.admin.deregister(id.as_str()).await,
            MembershipChange::Block(id) => self.set_blocked(id.as_str(), true).await,
            MembershipChange::Unblock(id) => self.set_blocked(id.as_str(), false).await,
            // Not declared (no `incarnations` capability), so never asked.
            MembershipChange::Restart(id) => Err(DriverError(format!(
                "restart of {id} is not scripted for the container"
            ))),
        }
    }

    async fn inject(&self, fault: InjectedFault) -> Result<(), DriverError> {
        let fail = |e: testcontainers::TestcontainersError| DriverError(e.to_string());
        match fault {
            InjectedFault::Retryable => {
                self.container.pause().await.map_err(fail)?;
                *self
                    .paused
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = true;
            }
            InjectedFault::Permanent => {
                let accessor = self
                    .accessor
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone();
                self.admin
                    .call(
                        reqwest::Method::DELETE,
                        &format!("/v1/acl/token/{accessor}"),
                        None,
                    )
                    .await?;
            }
            InjectedFault::Terminate => self.provider.close(),
            InjectedFault::Heal => {
                let was_paused = std::mem::replace(
                    &mut *self
                        .paused
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner),
                    false,
                );
                if was_paused {
                    self.container.unpause().await.map_err(fail)?;
                }
                self.rotate_token().await?;
            }
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_against_a_real_consul() {
    let container = GenericImage::new(IMAGE, TAG)
        .with_exposed_port(8500.tcp())
        .with_wait_for(WaitFor::message_on_stdout("Consul agent running!"))
        .with_cmd(["agent", "-dev", "-client", "0.0.0.0", "-hcl", ACL_HCL])
        .start()
        .await
        .unwrap_or_else(|e| panic!("cannot start {IMAGE}:{TAG}: {e}"));
    let host = container.get_host().await.unwrap_or_else(|e| panic!("{e}"));
    let port = container
        .get_host_port_ipv4(8500)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let base = format!("http://{host}:{port}");
    let admin = Admin {
        http: reqwest::Client::new(),
        base: base.clone(),
    };
    // The provider's read-only policy; the leader may take a moment.
    let rules = format!(
        r#"service "{SERVICE}" {{ policy = "read" }} node_prefix "" {{ policy = "read" }}"#
    );
    let mut created = Err(DriverError("not tried".into()));
    for _ in 0..50 {
        created = admin
            .call(
                reqwest::Method::PUT,
                "/v1/acl/policy",
                Some(json!({ "Name": "app-read", "Rules": rules })),
            )
            .await;
        if created.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    created.unwrap_or_else(|e| panic!("{e}"));

    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let token_file = dir.path().join("token");
    let descriptor: ProviderDescriptor = serde_json::from_str(&format!(
        r#"{{"id":"consul-it","kind":"consul","priority":1,"endpoints":["{base}"],"auth":{{"token":"file:token"}},"watch":{{"service":"{SERVICE}","wait":"1s","blocked_tag":"{BLOCKED_TAG}"}}}}"#
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let provider = ConsulProvider::builder(descriptor)
        .with_secrets(SecretResolver::new(dir.path()))
        .with_env(|_| None)
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let driver = Driver {
        container: &container,
        admin,
        provider: &provider,
        token_file,
        accessor: Mutex::new(String::new()),
        paused: Mutex::new(false),
    };
    driver
        .rotate_token()
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let config =
        SuiteConfig::new(Duration::from_millis(1500)).with_event_timeout(Duration::from_secs(30));
    let report = run_conformance(&provider, &driver, &config).await;
    println!("{report}");
    let executed = report.assert_conformant();
    // Not declared: block_non_members, and the two lifecycle cases (the
    // fake Consul runs restart_yields_new_incarnation; this driver does not
    // script restarts).
    assert_eq!(executed, MANDATORY_CASES.len() + OPTIONAL_CASES.len() - 3);
}
