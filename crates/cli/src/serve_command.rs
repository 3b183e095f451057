//! `provisioning serve [--listen ADDR] [--token-file PATH]`: the service
//! and the admin HTTP API until SIGINT/SIGTERM; SIGHUP reloads store and
//! policy in place.

use std::net::SocketAddr;
use std::time::Duration;

use cluster_provisioning::admin::{AdminApi, AdminConfig, BearerToken};

use cluster_provisioning::registry::ErrorCode;
use cluster_provisioning::{
    ClusterProvisioningService, FailoverPolicy, ProviderRegistry, ProvisioningHandle,
};
use serde_json::json;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::oneshot;

use crate::admin_listener::{
    self, AdminListener, MAX_CONNECTIONS, connection_limit, soft_file_limit,
};
use crate::cli_args::ServeArgs;
use crate::cli_error::{CliError, Exit};
use crate::output::Output;
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
    // CONTRACTS §4a rule 1, before anything is bound or started.
    refuse_insecure_listen(args)?;
    let token = args
        .token_file
        .as_deref()
        .map(BearerToken::load)
        .transpose()?;
    let secret_refs = args.secret_ref_policy(config.secrets_dir())?;
    let mut signals = ShutdownSignals::register()?;
    let mut hangup = signal(SignalKind::hangup()).map_err(|e| {
        CliError::runtime(
            ErrorCode::ProvisioningUnavailable,
            format!("cannot install the SIGHUP handler: {e}"),
        )
    })?;

    let registry = config.load_registry()?;
    let mut policy = config.load_policy()?;
    for warning in config.check_policy(&policy, &registry.list())? {
        out.warn(&format!("{}: {warning}", config.policy_name()));
    }
    let providers = registry.len();
    let handle = start(config, registry, policy.clone())?;

    let listener = match admin_listener::bind(args.listen) {
        Ok(listener) => listener,
        Err(e) => {
            let _ = handle.shutdown().await;
            return Err(CliError::runtime(
                ErrorCode::InvalidArgument,
                format!("cannot listen on {}: {e}", args.listen),
            ));
        }
    };
    let bound = listener.local_addr().unwrap_or(args.listen);
    announce(out, config, &handle, bound, providers);

    let limit = admin_connection_limit(out);

    let mut admin = AdminConfig::new(bound, secret_refs);
    if let Some(token) = token {
        admin = admin.with_token(token);
    }
    let state = AdminApi::new(handle, admin);
    let app = state.router();
    let (stop, stopped) = oneshot::channel::<()>();
    let mut server = tokio::spawn(AdminListener::new(listener, limit).serve(app, async move {
        let _ = stopped.await;
    }));

    let mut server_done = None;
    loop {
        tokio::select! {
            name = signals.recv() => {
                out.note(&format!("{name}: shutting down"));
                break;
            }
            _ = hangup.recv() => reload(config, &state, &mut policy).await,
            result = &mut server => {
                server_done = Some(result);
                break;
            }
        }
    }
    // Stopping the service ends every event stream, so the server can
    // drain its connections.
    let _ = state.handle().shutdown().await;
    let _ = stop.send(());
    let result = match server_done {
        Some(result) => Some(result),
        None => tokio::time::timeout(DRAIN, server).await.ok(),
    };
    server_outcome(result)
}

/// How many connections the admin API serves at once, said when the
/// open-file limit lowers it.
fn admin_connection_limit(out: &Output) -> usize {
    let file_limit = soft_file_limit();
    let limit = connection_limit(file_limit);
    if limit < MAX_CONNECTIONS {
        out.note(&format!(
            "admin API: at most {limit} concurrent connections (open-file limit {})",
            file_limit.unwrap_or_default()
        ));
    }
    limit
}

/// Refuses to serve other hosts without a token (CONTRACTS §4a rule 1).
fn refuse_insecure_listen(args: &ServeArgs) -> Result<(), CliError> {
    if args.token_file.is_none() && !args.listen.ip().is_loopback() {
        return Err(CliError::new(
            ErrorCode::InsecureListen,
            format!(
                "--listen {}: not a loopback address; serving other hosts needs --token-file",
                args.listen
            ),
            Exit::InvalidInput,
        ));
    }
    Ok(())
}

/// The line that says where the admin API listens (JSON with `--json`).
fn announce(
    out: &Output,
    config: &StoreConfig,
    handle: &ProvisioningHandle,
    bound: SocketAddr,
    providers: usize,
) {
    let address = bound.to_string();
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
}

/// What the admin API's task ended with (`None`: still draining at the
/// deadline, which is a normal stop).
fn server_outcome(
    result: Option<Result<std::io::Result<()>, tokio::task::JoinError>>,
) -> Result<(), CliError> {
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

/// Starts the service on `registry` with `policy`.
fn start(
    config: &StoreConfig,
    registry: ProviderRegistry,
    policy: FailoverPolicy,
) -> Result<ProvisioningHandle, CliError> {
    Ok(ClusterProvisioningService::build(registry)
        .with_failover(policy)
        .with_secrets_dir(config.secrets_dir())
        .start()?)
}

/// SIGHUP: loads store and policy as a whole; a valid pair replaces the
/// running set and policy in place, anything invalid is reported and the
/// running set kept.
///
/// The run goes on (same `run_id`, no `resync`, the published snapshot
/// stays, so `/readyz` stays 200): the service builds every new or changed
/// provider and checks the policy against the new set before it changes
/// anything, and new timings apply to decisions from then on. The store
/// is read by the service itself, under the store's lock and after every
/// admin write queued before, so a reload never undoes a write that was
/// already answered (§4a rule 7).
async fn reload(config: &StoreConfig, state: &AdminApi, running: &mut FailoverPolicy) {
    const KEPT: &str = "(SIGHUP: reload refused, the running set is kept)";
    match state.reload_token() {
        Ok(Some(path)) => eprintln!("SIGHUP: re-read the admin token from {}", path.display()),
        Ok(None) => {}
        Err(e) => eprintln!(
            "{} (SIGHUP: the previous admin token is kept)",
            CliError::from(e)
        ),
    }
    let policy = match config.load_policy() {
        Ok(policy) => policy,
        Err(e) => {
            eprintln!("{e} {KEPT}");
            return;
        }
    };
    let handle = state.handle();
    let policy_changed = &policy != running;
    let applied = match handle.reload_from_store(Some(policy.clone())).await {
        Ok(applied) => applied,
        Err(e) => {
            eprintln!("{} {KEPT}", CliError::from(e));
            return;
        }
    };
    // The service refused a policy that does not fit the set; what is
    // left to say about the applied pair are the warnings.
    if let Ok(warnings) = config.check_policy(&policy, &applied) {
        for warning in warnings {
            eprintln!("warning: {}: {warning}", config.policy_name());
        }
    }
    let providers = applied.len();
    let plural = if providers == 1 { "" } else { "s" };
    if policy_changed {
        eprintln!(
            "SIGHUP: reloaded {providers} provider{plural} from {} and the policy from {}, applied in place (run {})",
            config.store_name(),
            config.policy_name(),
            handle.run_id()
        );
        *running = policy;
    } else {
        eprintln!(
            "SIGHUP: reloaded {providers} provider{plural} from {}",
            config.store_name()
        );
    }
}
