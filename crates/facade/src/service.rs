//! [`ClusterProvisioningService`]: configure and start the service.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use futures::{Stream, StreamExt};
use provisioning_backend_memory::TopologyStreamProvider;
use provisioning_failover::{FailoverController, FailoverPolicy};
use provisioning_provider_api::{
    ClusterNode, ClusterProvider, NodeId, ProviderDescriptor, ProviderId, ProviderKind,
};
use provisioning_registry::{
    BuildContext, ProviderRegistry, ProviderValidator, ProvisioningError, SecretResolver,
};
use provisioning_watch_hub::metrics::ProvisioningMetrics;
use provisioning_watch_hub::{
    HubConfig, HubHandle, PartitionManagerBridge, PlacementSupervisorBridge, ProviderWatchHub,
    RemotingBridge,
};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::driver::{Driver, DriverParts};
use crate::local_member::{LocalMember, LocalRemoting};
use crate::persister::Persister;
use crate::provider_builder::ProviderBuilder;
use crate::{EventSink, ProvisioningHandle, builtin_registry};

/// Capacity of the request channel from handles to the driver.
const COMMANDS: usize = 64;

/// The provider id of the migration path (a single topology stream).
pub const MIGRATION_PROVIDER_ID: &str = "topology";

/// The provisioning service: registers providers, watches the active one,
/// fails over by priority on health evidence and publishes topology to
/// bridges and subscribers.
///
/// Configure with the builder methods, then [`start`](Self::start) on the
/// current tokio runtime to get a [`ProvisioningHandle`]. Only `start` needs
/// a tokio runtime (its tasks run there, multi-thread or current-thread,
/// and it must keep running); the handle, [`snapshots`](ProvisioningHandle::snapshots)
/// and [`topology_changes`](ProvisioningHandle::topology_changes) can be
/// used from any thread and polled by any executor.
#[must_use = "a service does nothing until started"]
pub struct ClusterProvisioningService {
    registry: Option<ProviderRegistry>,
    policy: FailoverPolicy,
    metrics: Option<ProvisioningMetrics>,
    placement: Vec<(String, Arc<dyn PlacementSupervisorBridge>)>,
    partition: Vec<(String, Arc<dyn PartitionManagerBridge>)>,
    remoting: Vec<(String, Arc<dyn RemotingBridge>)>,
    sinks: Vec<Arc<dyn EventSink>>,
    instances: BTreeMap<ProviderId, Arc<dyn ClusterProvider>>,
    secrets_dir: PathBuf,
    hub_config: HubConfig,
    rng_seed: u64,
    migration: Option<MigrationSource>,
    local_member: Option<NodeId>,
}

type MigrationSource = std::pin::Pin<Box<dyn Stream<Item = Vec<ClusterNode>> + Send + 'static>>;

impl ClusterProvisioningService {
    /// A service over `registry` (already loaded and validated).
    pub fn build(registry: ProviderRegistry) -> Self {
        Self::new(Some(registry))
    }

    /// The migration path of the seed: a runtime that had one topology watch
    /// keeps it as the only provider (`in_memory`, id `topology`) — no
    /// registry needed. Must be started inside a tokio runtime.
    pub fn from_topology_stream<S>(source: S) -> Self
    where
        S: Stream<Item = Vec<ClusterNode>> + Send + 'static,
    {
        let mut service = Self::new(None);
        service.migration = Some(source.boxed());
        service
    }

    fn new(registry: Option<ProviderRegistry>) -> Self {
        Self {
            registry,
            policy: FailoverPolicy::default(),
            metrics: None,
            placement: Vec::new(),
            partition: Vec::new(),
            remoting: Vec::new(),
            sinks: Vec::new(),
            instances: BTreeMap::new(),
            secrets_dir: PathBuf::from("."),
            hub_config: HubConfig::new(),
            rng_seed: seed(),
            migration: None,
            local_member: None,
        }
    }

    /// The failover policy (default: the seed's numbers, CONTRACTS §7).
    pub fn with_failover(mut self, policy: FailoverPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Records metrics into `metrics` (shared with the admin API).
    pub fn with_metrics(mut self, metrics: ProvisioningMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The seed's three consumers.
    pub fn with_bridges(
        mut self,
        placement: Arc<dyn PlacementSupervisorBridge>,
        partition: Arc<dyn PartitionManagerBridge>,
        remoting: Arc<dyn RemotingBridge>,
    ) -> Self {
        self.placement.push(("placement".into(), placement));
        self.partition.push(("partition".into(), partition));
        self.remoting.push(("remoting".into(), remoting));
        self
    }

    /// One more placement supervisor.
    pub fn with_placement(
        mut self,
        name: impl Into<String>,
        bridge: Arc<dyn PlacementSupervisorBridge>,
    ) -> Self {
        self.placement.push((name.into(), bridge));
        self
    }

    /// One more partition manager.
    pub fn with_partition(
        mut self,
        name: impl Into<String>,
        bridge: Arc<dyn PartitionManagerBridge>,
    ) -> Self {
        self.partition.push((name.into(), bridge));
        self
    }

    /// One more remoting consumer.
    pub fn with_remoting(
        mut self,
        name: impl Into<String>,
        bridge: Arc<dyn RemotingBridge>,
    ) -> Self {
        self.remoting.push((name.into(), bridge));
        self
    }

    /// Forwards every published event to `sink` (a host runtime's bus).
    pub fn with_event_sink(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.sinks.push(sink);
        self
    }

    /// Uses this provider instance for its descriptor's id instead of
    /// building one, and registers the descriptor if the registry lacks it.
    /// Keeps control of an in-memory provider's handle, or plugs in a
    /// provider built elsewhere.
    pub fn with_provider(mut self, provider: Arc<dyn ClusterProvider>) -> Self {
        self.instances
            .insert(provider.descriptor().id.clone(), provider);
        self
    }

    /// Directory that relative `file:` secret references resolve against
    /// (the store's directory; default: the working directory).
    pub fn with_secrets_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.secrets_dir = dir.into();
        self
    }

    /// Queue capacity per consumer and history size of the watch hub.
    pub fn with_hub_config(mut self, config: HubConfig) -> Self {
        self.hub_config = config;
        self
    }

    /// Seed of the backoff jitter (reproducible runs in tests).
    pub fn with_rng_seed(mut self, seed: u64) -> Self {
        self.rng_seed = seed;
        self
    }

    /// The node this service runs in: its own `join` and `leave` are left
    /// out of [`topology_changes`](ProvisioningHandle::topology_changes) and
    /// of the remoting bridges given here, and
    /// [`LocalTopology`](crate::LocalTopology) marks it. Published snapshots,
    /// their hashes and the event lines stay the same on every node.
    pub fn with_local_member(mut self, id: impl Into<NodeId>) -> Self {
        self.local_member = Some(id.into());
        self
    }

    /// Validates everything, builds every provider, and starts the service
    /// on the current tokio runtime. Nothing starts unless all of it is
    /// valid: a bad descriptor, a failing backend factory or a policy that
    /// conflicts with a provider's quiet period is an error.
    pub fn start(self) -> Result<ProvisioningHandle, ProvisioningError> {
        let Self {
            registry,
            policy,
            metrics,
            placement,
            partition,
            remoting,
            sinks,
            mut instances,
            secrets_dir,
            hub_config,
            rng_seed,
            migration,
            local_member,
        } = self;
        let local_member = LocalMember::new(local_member);
        let registry = registry.unwrap_or_else(builtin_registry);
        let descriptors = register_running_set(&registry, migration, &mut instances)?;
        let kinds = registry.validator().clone();
        let warnings = policy_check(&kinds, &policy, &descriptors)?;
        for warning in warnings {
            warn!(%warning, "failover policy");
        }
        let builder = Arc::new(ProviderBuilder {
            kinds,
            instances,
            context: BuildContext::new(SecretResolver::new(secrets_dir)),
        });
        let mut providers = BTreeMap::new();
        for d in &descriptors {
            providers.insert(d.id.clone(), builder.build(d)?);
        }

        let hub_config = hub_config
            .with_max_shrink_ratio(policy.max_shrink_ratio)
            .with_shrink_confirm(policy.shrink_confirm);
        let hub_config = match metrics {
            Some(metrics) => hub_config.with_metrics(metrics),
            None => hub_config,
        };
        let hub = ProviderWatchHub::new(hub_config).map_err(hub_error)?;
        let hub_handle = hub.handle();
        let bridges = Bridges {
            placement,
            partition,
            remoting,
        };
        bridges.attach(&hub_handle, &local_member)?;
        let sink_tasks = spawn_sinks(&hub_handle, sinks)?;

        let controller = FailoverController::new(policy.clone(), rng_seed);
        let (tx, rx) = mpsc::channel(COMMANDS);
        let (admin_tx, admin_rx) = mpsc::channel(COMMANDS);
        let persister = Persister {
            registry,
            builder,
            policy: policy.clone(),
            running: descriptors.clone(),
            driver: tx.clone(),
            stopping: Arc::new(AtomicBool::new(false)),
        };
        let driver = Driver::new(DriverParts {
            controller,
            hub,
            descriptors: descriptors.clone(),
            providers,
            policy,
            rng_seed,
        });
        info!(run_id = %hub_handle.run_id(), providers = descriptors.len(), "provisioning service starting");
        let task = tokio::spawn(driver.run(rx));
        let persister = tokio::spawn(persister.run(admin_rx));
        Ok(
            ProvisioningHandle::new(tx, admin_tx, hub_handle, vec![task, persister], sink_tasks)
                .with_local(local_member),
        )
    }
}

/// The set the service starts with: the registry's, plus the migration
/// source and every user-supplied instance (registered if the registry
/// lacks them), stored so that requests through the handle, which persist
/// through the store (read, change, write under its lock), find what runs.
fn register_running_set(
    registry: &ProviderRegistry,
    migration: Option<MigrationSource>,
    instances: &mut BTreeMap<ProviderId, Arc<dyn ClusterProvider>>,
) -> Result<Vec<ProviderDescriptor>, ProvisioningError> {
    if let Some(source) = migration {
        let id = ProviderId::new(MIGRATION_PROVIDER_ID).map_err(|e| {
            ProvisioningError::InvalidArgument {
                message: e.to_string(),
            }
        })?;
        let descriptor = ProviderDescriptor::new(id.clone(), ProviderKind::InMemory, 0);
        let provider = TopologyStreamProvider::spawn(descriptor, source);
        instances.insert(id, Arc::new(provider));
    }
    for (id, instance) in instances.iter() {
        if registry.get(id.as_str()).is_none() {
            registry.register(instance.descriptor().clone())?;
        }
    }
    let mut stored = registry.store().load()?;
    let mut running = registry.list();
    stored.sort_by(|a, b| a.id.cmp(&b.id));
    running.sort_by(|a, b| a.id.cmp(&b.id));
    if stored != running {
        registry.save()?;
    }
    Ok(registry.list())
}

/// The synchronous consumers given to the builder.
struct Bridges {
    placement: Vec<(String, Arc<dyn PlacementSupervisorBridge>)>,
    partition: Vec<(String, Arc<dyn PartitionManagerBridge>)>,
    remoting: Vec<(String, Arc<dyn RemotingBridge>)>,
}

impl Bridges {
    /// Attaches every bridge to the hub; remoting bridges see no Join or
    /// Leave of the local member.
    fn attach(self, hub: &HubHandle, local_member: &LocalMember) -> Result<(), ProvisioningError> {
        for (name, bridge) in self.placement {
            hub.attach_placement(name, bridge).map_err(hub_error)?;
        }
        for (name, bridge) in self.partition {
            hub.attach_partition(name, bridge).map_err(hub_error)?;
        }
        for (name, bridge) in self.remoting {
            let bridge = Arc::new(LocalRemoting {
                inner: bridge,
                local: local_member.clone(),
            });
            hub.attach_remoting(name, bridge).map_err(hub_error)?;
        }
        Ok(())
    }
}

/// One task per event sink, forwarding every published event.
fn spawn_sinks(
    hub: &HubHandle,
    sinks: Vec<Arc<dyn EventSink>>,
) -> Result<Vec<tokio::task::JoinHandle<()>>, ProvisioningError> {
    let mut tasks = Vec::new();
    for (i, sink) in sinks.into_iter().enumerate() {
        let name = format!("event-sink-{i}");
        let mut events = hub.subscribe_events(name.clone()).map_err(hub_error)?;
        tasks.push(tokio::spawn(async move {
            while let Some(event) = events.next().await {
                let _span = tracing::debug_span!(
                    "consumer_call",
                    consumer = name.as_str(),
                    seq_no = event.seq_no()
                )
                .entered();
                sink.publish(event);
            }
        }));
    }
    Ok(tasks)
}

/// Checks `policy` against the providers' quiet periods (each from its
/// kind); returns the warnings.
pub(crate) fn policy_check(
    kinds: &ProviderValidator,
    policy: &FailoverPolicy,
    descriptors: &[ProviderDescriptor],
) -> Result<Vec<provisioning_failover::PolicyWarning>, ProvisioningError> {
    policy
        .validate(&kinds.quiet_periods(descriptors)?)
        .map_err(|e| {
            let field = e.key().map(|k| format!("policy.{k}"));
            ProvisioningError::invalid(None, field, format!("failover policy: {e}"))
        })
}

pub(crate) fn hub_error(e: provisioning_watch_hub::HubError) -> ProvisioningError {
    ProvisioningError::InvalidArgument {
        message: format!("watch hub: {e}"),
    }
}

fn seed() -> u64 {
    // Jitter only needs to differ between processes.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ u64::from(std::process::id()).rotate_left(32)
}
