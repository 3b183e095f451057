//! `provisioning serve [--listen ADDR] [--token-file PATH]`: the service
//! and the admin HTTP API until SIGINT/SIGTERM; SIGHUP reloads store and
//! policy.

use std::time::Duration;

use cluster_provisioning::registry::ErrorCode;
use cluster_provisioning::{ClusterProvisioningService, FailoverPolicy, ProvisioningHandle};
use serde_json::json;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::oneshot;

use crate::admin_routes::router;
use crate::admin_state::AdminState;
use crate::bearer_token::BearerToken;
use crate::cli_args::ServeArgs;
use crate::cli_error::CliError;
use crate::output::Output;
use crate::prometheus_exporter::PrometheusExporter;
use crate::shutdown_signals::ShutdownSignals;
use crate::store_config::StoreConfig;

/// How long open connections (event streams) get to finish on shutdown.
const DRAIN: Duration = Duration::from_secs(5);

/// Runs the service and the admin API.
pub(crate) async fn run(
    config: &StoreConfig,
    args: &ServeArgs,
    out: &Output,
) -> Result<(), CliError> {
    let token = args
        .token_file
        .as_deref()
        .map(BearerToken::load)
        .transpose()?;
    let mut signals = ShutdownSignals::register()?;
    let mut hangup = signal(SignalKind::hangup()).map_err(|e| {
        CliError::runtime(
            ErrorCode::ProvisioningUnavailable,
            format!("cannot install the SIGHUP handler: {e}"),
        )
    })?;
    // Before the service starts, so its first gauges are recorded.
    let exporter = PrometheusExporter::install()?;

    let registry = config.load_registry()?;
    let policy = config.load_policy()?;
    for warning in config.check_policy(&policy, &registry.list())? {
        out.warn(&format!("{}: {warning}", config.policy_name()));
    }
    let providers = registry.len();
    let handle = ClusterProvisioningService::build(registry)
        .with_failover(policy.clone())
        .with_secrets_dir(config.secrets_dir())
        .start()?;

    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(e) => {
            let _ = handle.shutdown().await;
            return Err(CliError::runtime(
                ErrorCode::InvalidArgument,
                format!("cannot listen on {}: {e}", args.listen),
            ));
        }
    };
    let address = listener
        .local_addr()
        .map_or_else(|_| args.listen.to_string(), |a| a.to_string());
    if out.json() {
        out.line(&json!({"listening": format!("http://{address}"), "run_id": handle.run_id().to_string()}).to_string());
    } else {
        out.line(&format!(
            "admin API listening on http://{address} ({providers} provider{} from {}, run {})",
            if providers == 1 { "" } else { "s" },
            config.store_name(),
            handle.run_id()
        ));
    }

    let app = router(AdminState::new(handle.clone(), exporter, token));
    let (stop, stopped) = oneshot::channel::<()>();
    let mut server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });

    let mut server_done = None;
    loop {
        tokio::select! {
            name = signals.recv() => {
                out.note(&format!("{name}: shutting down"));
                break;
            }
            _ = hangup.recv() => reload(config, &handle, &policy).await,
            result = &mut server => {
                server_done = Some(result);
                break;
            }
        }
    }
    // Stopping the service ends every event stream, so the server can
    // drain its connections.
    let _ = handle.shutdown().await;
    let _ = stop.send(());
    let result = match server_done {
        Some(result) => Some(result),
        None => tokio::time::timeout(DRAIN, server).await.ok(),
    };
    match result {
        Some(Ok(Err(e))) => Err(CliError::runtime(
            ErrorCode::ProvisioningUnavailable,
            format!("the admin API failed: {e}"),
        )),
        Some(Err(e)) => Err(CliError::runtime(
            ErrorCode::ProvisioningUnavailable,
            format!("the admin API task failed: {e}"),
        )),
        _ => Ok(()),
    }
}

/// SIGHUP: loads store and policy as a whole; a valid set replaces the
/// running one, anything invalid is reported and the running set kept.
async fn reload(config: &StoreConfig, handle: &ProvisioningHandle, running: &FailoverPolicy) {
    let loaded = config.load_registry().and_then(|registry| {
        let policy = config.load_policy()?;
        let warnings = config.check_policy(&policy, &registry.list())?;
        Ok((registry, policy, warnings))
    });
    let (registry, policy, warnings) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("{e} (SIGHUP: reload refused, the running set is kept)");
            return;
        }
    };
    for warning in warnings {
        eprintln!("warning: {}: {warning}", config.policy_name());
    }
    let providers = registry.len();
    match handle.reload(registry).await {
        Ok(()) => {
            eprintln!(
                "SIGHUP: reloaded {providers} provider{} from {}",
                if providers == 1 { "" } else { "s" },
                config.store_name()
            );
            if &policy != running {
                eprintln!(
                    "warning: {}: the policy changed; the running service keeps the policy it started with until restarted",
                    config.policy_name()
                );
            }
        }
        Err(e) => eprintln!(
            "{} (SIGHUP: reload refused, the running set is kept)",
            CliError::from(e)
        ),
    }
}
