//! [`EtcdDriver`]: the conformance driver over a real single-member etcd.
//!
//! - Membership changes are puts and deletes of member values under the
//!   prefix (the block flag lives in the value); a reset is a delete of the
//!   prefix followed by transactions of up to 100 puts.
//! - `Retryable` SIGKILLs the member; `Heal` restarts it on its data dir.
//! - `Permanent` turns auth on (root user): the provider's unauthenticated
//!   requests are then refused ("user name is empty"); `Heal` turns it off.
//! - `Terminate` replaces the cluster by a new one on the same port (new
//!   cluster id): the provider's stream ends, as revisions of two clusters
//!   are not comparable. `Heal` has nothing to undo.

use etcd_client::{Client, ConnectOptions, DeleteOptions, Txn, TxnOp};
use provisioning_provider_api::{MemberSpec, NodeId};
use provisioning_testkit::etcd_cluster::EtcdCluster;
use provisioning_testkit::{
    Capabilities, ConformanceDriver, DriverError, InjectedFault, MembershipChange,
};
use tokio::sync::Mutex;

use crate::support::PREFIX;

const ROOT_PASSWORD: &str = "root-pw-for-tests";

pub(crate) struct EtcdDriver {
    cluster: Mutex<EtcdCluster>,
    client: Client,
}

fn driver_error(e: impl std::fmt::Display) -> DriverError {
    DriverError(e.to_string())
}

impl EtcdDriver {
    pub(crate) async fn new(cluster: EtcdCluster) -> Self {
        let client = Client::connect(cluster.endpoints(), None)
            .await
            .expect("driver client");
        Self {
            cluster: Mutex::new(cluster),
            client,
        }
    }

    pub(crate) async fn endpoints(&self) -> Vec<String> {
        self.cluster.lock().await.endpoints()
    }

    fn key(id: &str) -> String {
        format!("{PREFIX}{id}")
    }

    async fn put(&self, spec: &MemberSpec) -> Result<(), DriverError> {
        let value = serde_json::to_vec(spec).map_err(driver_error)?;
        self.client
            .kv_client()
            .put(Self::key(spec.id.as_str()), value, None)
            .await
            .map(|_| ())
            .map_err(driver_error)
    }

    async fn get(&self, id: &NodeId) -> Result<MemberSpec, DriverError> {
        let response = self
            .client
            .kv_client()
            .get(Self::key(id.as_str()), None)
            .await
            .map_err(driver_error)?;
        let kv = response
            .kvs()
            .first()
            .ok_or_else(|| DriverError(format!("no member {id}")))?;
        serde_json::from_slice(kv.value()).map_err(driver_error)
    }

    async fn set_blocked(&self, id: &NodeId, blocked: bool) -> Result<(), DriverError> {
        let mut spec = self.get(id).await?;
        spec.blocked = blocked;
        self.put(&spec).await
    }

    async fn reset(&self, specs: Vec<MemberSpec>) -> Result<(), DriverError> {
        let mut kv = self.client.kv_client();
        kv.delete(PREFIX, Some(DeleteOptions::new().with_prefix()))
            .await
            .map_err(driver_error)?;
        for chunk in specs.chunks(100) {
            let ops = chunk
                .iter()
                .map(|spec| {
                    serde_json::to_vec(spec)
                        .map(|value| TxnOp::put(Self::key(spec.id.as_str()), value, None))
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(driver_error)?;
            kv.txn(Txn::new().and_then(ops))
                .await
                .map_err(driver_error)?;
        }
        Ok(())
    }

    async fn enable_auth(&self) -> Result<(), DriverError> {
        let mut auth = self.client.auth_client();
        // Idempotent setup: the role and user may exist from an earlier run.
        let _ = auth.role_add("root").await;
        let _ = auth.user_add("root", ROOT_PASSWORD, None).await;
        let _ = auth.user_grant_role("root", "root").await;
        auth.auth_enable().await.map(|_| ()).map_err(driver_error)
    }

    async fn disable_auth(&self, endpoints: &[String]) -> Result<(), DriverError> {
        let root = Client::connect(
            endpoints,
            Some(ConnectOptions::new().with_user("root", ROOT_PASSWORD)),
        )
        .await;
        match root {
            Ok(mut root) => root.auth_disable().await.map(|_| ()).map_err(driver_error),
            // Auth is already off: authenticating fails, nothing to undo.
            Err(e) if e.to_string().contains("authentication is not enabled") => Ok(()),
            Err(e) => Err(driver_error(e)),
        }
    }
}

impl ConformanceDriver for EtcdDriver {
    fn capabilities(&self) -> Capabilities {
        Capabilities::none()
            .with_labels(true)
            .with_initial_snapshot(true)
            .with_incarnations(true)
            .with_draining(true)
    }

    async fn apply(&self, change: MembershipChange) -> Result<(), DriverError> {
        match change {
            MembershipChange::Reset(specs) => self.reset(specs).await,
            MembershipChange::Upsert(spec) => self.put(&spec).await,
            MembershipChange::Remove(id) => self
                .client
                .kv_client()
                .delete(Self::key(id.as_str()), None)
                .await
                .map(|_| ())
                .map_err(driver_error),
            MembershipChange::Block(id) => self.set_blocked(&id, true).await,
            MembershipChange::Unblock(id) => self.set_blocked(&id, false).await,
            // A restarted service registers again: the key is deleted and
            // put anew (a new create_revision), with the same value.
            MembershipChange::Restart(id) => {
                let spec = self.get(&id).await?;
                self.client
                    .kv_client()
                    .delete(Self::key(id.as_str()), None)
                    .await
                    .map_err(driver_error)?;
                self.put(&spec).await
            }
        }
    }

    async fn inject(&self, fault: InjectedFault) -> Result<(), DriverError> {
        let mut cluster = self.cluster.lock().await;
        match fault {
            InjectedFault::Retryable => cluster.kill(0).map_err(driver_error),
            InjectedFault::Permanent => self.enable_auth().await,
            InjectedFault::Terminate => cluster.recreate().await.map_err(driver_error),
            InjectedFault::Heal => {
                if !cluster.is_running(0) {
                    cluster.restart(0).await.map_err(driver_error)?;
                }
                cluster
                    .wait_healthy(std::time::Duration::from_secs(20))
                    .await
                    .map_err(driver_error)?;
                self.disable_auth(&cluster.endpoints()).await
            }
        }
    }
}
