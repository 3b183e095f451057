//! `provisioning watch [--json] [--once] [--timeout DURATION]`.
//!
//! Like `serve`, a SIGHUP reloads the store: a changed provider is rebuilt
//! and its new view published, so an `in_memory` store edited by hand (a
//! member restarting with a new incarnation, draining, leaving) shows its
//! changes as event lines.

use std::sync::Arc;
use std::time::Duration;

use cluster_provisioning::api::{format_duration, parse_duration};
use cluster_provisioning::registry::ErrorCode;
use cluster_provisioning::{ClusterProvisioningService, ProvisioningEvent, ProvisioningHandle};
use futures::StreamExt;
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::cli_args::WatchArgs;
use crate::cli_error::{CliError, Exit};
use crate::output::Output;
use crate::shutdown_signals::ShutdownSignals;
use crate::store_config::StoreConfig;
use cluster_provisioning::admin::{EventText, UtcTimestamp};

/// How long `--once` waits for a snapshot unless `--timeout` says.
const ONCE_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the service on the store and prints its events.
pub(crate) async fn run(
    config: &StoreConfig,
    args: &WatchArgs,
    out: &Output,
) -> Result<(), CliError> {
    let timeout = match &args.timeout {
        Some(text) => Some(
            parse_duration(text)
                .map_err(|e| CliError::invalid_argument(format!("--timeout {text:?}: {e}")))?,
        ),
        None => None,
    };
    let mut signals = ShutdownSignals::register()?;
    let mut hangup = signal(SignalKind::hangup()).map_err(|e| {
        CliError::runtime(
            ErrorCode::ProvisioningUnavailable,
            format!("cannot install the SIGHUP handler: {e}"),
        )
    })?;
    let handle = start_service(config, out)?;
    let result = if args.once {
        once(&handle, timeout.unwrap_or(ONCE_TIMEOUT), &mut signals, out).await
    } else {
        follow(&handle, timeout, &mut signals, &mut hangup, config, out).await
    };
    let _ = handle.shutdown().await;
    result
}

/// Loads store and policy and starts the service on them: exit 2 when
/// either is invalid or no provider is enabled.
pub(crate) fn start_service(
    config: &StoreConfig,
    out: &Output,
) -> Result<ProvisioningHandle, CliError> {
    let registry = config.load_registry()?;
    let descriptors = registry.list();
    let policy = config.load_policy()?;
    for warning in config.check_policy(&policy, &descriptors)? {
        out.warn(&format!("{}: {warning}", config.policy_name()));
    }
    let enabled = descriptors.iter().filter(|d| d.enabled).count();
    if enabled == 0 {
        return Err(CliError::invalid_config(format!(
            "{}: no enabled provider to run ({} registered)",
            config.store_name(),
            descriptors.len()
        )));
    }
    let handle = ClusterProvisioningService::build(registry)
        .with_failover(policy)
        .with_secrets_dir(config.secrets_dir())
        .start()?;
    out.note(&format!(
        "running {enabled} enabled provider{} from {} (run {}); SIGINT or SIGTERM stops",
        if enabled == 1 { "" } else { "s" },
        config.store_name(),
        handle.run_id()
    ));
    Ok(handle)
}

/// Prints one event line in the chosen form.
pub(crate) fn print_event(event: &ProvisioningEvent, out: &Output) -> std::io::Result<()> {
    if out.json() {
        out.try_line(&event.to_json_line())
    } else {
        out.try_line(&EventText::new(event, UtcTimestamp::now()).to_string())
    }
}

async fn once(
    handle: &ProvisioningHandle,
    timeout: Duration,
    signals: &mut ShutdownSignals,
    out: &Output,
) -> Result<(), CliError> {
    let mut topology = handle.subscribe();
    let snapshot = tokio::select! {
        published = topology.wait_for(Option::is_some) => match published {
            Ok(snapshot) => snapshot.clone(),
            Err(_) => None,
        },
        () = tokio::time::sleep(timeout) => {
            return Err(CliError::new(
                ErrorCode::Timeout,
                format!("no snapshot was published within {}", format_duration(timeout)),
                Exit::Unreachable,
            ));
        }
        name = signals.recv() => {
            out.note(&format!("{name}: stopped before the first snapshot"));
            return Ok(());
        }
    };
    let Some(snapshot) = snapshot else {
        return Err(CliError::runtime(
            ErrorCode::ProvisioningUnavailable,
            "the service stopped before publishing a snapshot",
        ));
    };
    let _ = print_event(&ProvisioningEvent::Snapshot(Arc::clone(&snapshot)), out);
    Ok(())
}

async fn follow(
    handle: &ProvisioningHandle,
    limit: Option<Duration>,
    signals: &mut ShutdownSignals,
    hangup: &mut Signal,
    config: &StoreConfig,
    out: &Output,
) -> Result<(), CliError> {
    // From the run's first line: the service was started just before, and
    // its first publication may already be out.
    let mut events = handle.events_since(0)?;
    let deadline = limit.map(|d| tokio::time::Instant::now() + d);
    loop {
        tokio::select! {
            event = events.next() => match event {
                Some(event) => {
                    if print_event(&event, out).is_err() {
                        // Nobody reads stdout any more (`| head`): done.
                        return Ok(());
                    }
                }
                None => {
                    return Err(CliError::runtime(
                        ErrorCode::ProvisioningUnavailable,
                        "the service stopped",
                    ));
                }
            },
            name = signals.recv() => {
                out.note(&format!("{name}: shutting down"));
                return Ok(());
            }
            _ = hangup.recv() => reload(handle, config, out).await,
            () = sleep_until(deadline) => return Ok(()),
        }
    }
}

/// SIGHUP: the service reads the store again; a valid store replaces the
/// running set (changed providers are rebuilt), an invalid one is reported
/// and the running set kept. The policy stays the one the run started with.
async fn reload(handle: &ProvisioningHandle, config: &StoreConfig, out: &Output) {
    match handle.reload_from_store(None).await {
        Ok(applied) => out.note(&format!(
            "SIGHUP: reloaded {} provider{} from {}",
            applied.len(),
            if applied.len() == 1 { "" } else { "s" },
            config.store_name()
        )),
        Err(e) => out.warn(&format!(
            "{} (SIGHUP: reload refused, the running set is kept)",
            CliError::from(e)
        )),
    }
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
