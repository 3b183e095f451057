//! `provisioning providers list|add|remove|enable|disable`.

use cluster_provisioning::api::ProviderDescriptor;
use cluster_provisioning::registry::{descriptor_from_json, descriptor_to_json};
use serde_json::{Map, Value, json};

use crate::cli_args::{AddArgs, ProvidersCommand};
use crate::cli_error::CliError;
use crate::output::Output;
use crate::store_config::StoreConfig;
use crate::text_table::TextTable;
use crate::watch_assignment::WatchAssignment;

/// Longest `watch` text shown in the table.
const WATCH_WIDTH: usize = 60;

/// Runs one `providers` subcommand.
pub(crate) fn run(
    config: &StoreConfig,
    command: &ProvidersCommand,
    out: &Output,
) -> Result<(), CliError> {
    match command {
        ProvidersCommand::List => list(config, out),
        ProvidersCommand::Add(args) => add(config, args, out),
        ProvidersCommand::Remove(arg) => remove(config, &arg.id, out),
        ProvidersCommand::Enable(arg) => set_enabled(config, &arg.id, true, out),
        ProvidersCommand::Disable(arg) => set_enabled(config, &arg.id, false, out),
    }
}

fn list(config: &StoreConfig, out: &Output) -> Result<(), CliError> {
    let registry = config.load_registry()?;
    let descriptors = registry.list();
    if out.json() {
        let objects = descriptors
            .iter()
            .map(descriptor_to_json)
            .collect::<Result<Vec<_>, _>>()?;
        out.line(&format!("[{}]", objects.join(",")));
        return Ok(());
    }
    if descriptors.is_empty() {
        out.line(&format!("{}: no providers", config.store_name()));
        return Ok(());
    }
    let preferred = descriptors.iter().find(|d| d.enabled).map(|d| d.id.clone());
    let mut table = TextTable::new(&[
        "",
        "ID",
        "KIND",
        "PRIORITY",
        "ENABLED",
        "ENDPOINTS",
        "AUTH",
        "WATCH",
    ]);
    for d in &descriptors {
        let stored: Value = serde_json::from_str(&descriptor_to_json(d)?).unwrap_or(Value::Null);
        let mark = if Some(&d.id) == preferred.as_ref() {
            "*"
        } else {
            ""
        };
        table.row(vec![
            mark.to_owned(),
            d.id.to_string(),
            d.kind.as_str().to_owned(),
            d.priority.to_string(),
            if d.enabled { "yes" } else { "no" }.to_owned(),
            if d.endpoints.is_empty() {
                "-".to_owned()
            } else {
                d.endpoints.join(",")
            },
            compact(stored.get("auth")),
            shorten(&compact(stored.get("watch")), WATCH_WIDTH),
        ]);
    }
    for line in table.lines() {
        out.line(&line);
    }
    if preferred.is_some() {
        out.line("* preferred: the highest-priority enabled provider, active while healthy");
    }
    Ok(())
}

/// A JSON value as compact text without braces noise; `-` when absent.
fn compact(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::Object(map)) if map.is_empty() => "-".to_owned(),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}={s}"),
                other => format!("{k}:={other}"),
            })
            .collect::<Vec<_>>()
            .join(" "),
        Some(other) => other.to_string(),
    }
}

fn shorten(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(width.saturating_sub(1)).collect();
    short.push('…');
    short
}

/// The descriptor `providers add` describes, checked by the same parser as
/// a store line.
pub(crate) fn descriptor_from_args(args: &AddArgs) -> Result<ProviderDescriptor, CliError> {
    let mut object = Map::new();
    object.insert("id".into(), json!(args.id));
    object.insert("kind".into(), json!(args.kind));
    object.insert("priority".into(), json!(args.priority));
    if !args.endpoints.is_empty() {
        object.insert("endpoints".into(), json!(args.endpoints));
    }
    if let Some(token) = &args.auth_token {
        object.insert("auth".into(), json!({ "token": token }));
    }
    if !args.watch.is_empty() {
        let mut watch = Map::new();
        for arg in &args.watch {
            let assignment = WatchAssignment::parse(arg)?;
            if watch.contains_key(&assignment.key) {
                return Err(CliError::invalid_argument(format!(
                    "--watch {}: given twice",
                    assignment.key
                )));
            }
            watch.insert(assignment.key, assignment.value);
        }
        object.insert("watch".into(), Value::Object(watch));
    }
    let text = Value::Object(object).to_string();
    descriptor_from_json(&text).map_err(|e| {
        let id = cluster_provisioning::api::ProviderId::new(args.id.as_str());
        match id {
            Ok(id) => CliError::from(e.with_provider(&id)),
            Err(_) => CliError::from(e),
        }
    })
}

fn add(config: &StoreConfig, args: &AddArgs, out: &Output) -> Result<(), CliError> {
    let descriptor = descriptor_from_args(args)?;
    let registry = config.registry();
    // The policy's rules that involve providers (a Consul wait against the
    // timeout) hold for the set with the newcomer, or nothing is saved.
    let policy = config.load_policy()?;
    let mut after = config.load_registry()?.list();
    after.push(descriptor.clone());
    config.check_policy(&policy, &after)?;
    registry.update(|set| set.register(descriptor.clone()))?;
    if out.json() {
        out.line(&descriptor_to_json(&descriptor)?);
    } else {
        out.line(&format!(
            "added {} ({}, priority {}) to {}",
            descriptor.id,
            descriptor.kind.as_str(),
            descriptor.priority,
            config.store_name()
        ));
    }
    Ok(())
}

fn remove(config: &StoreConfig, id: &str, out: &Output) -> Result<(), CliError> {
    let registry = config.registry();
    let removed = registry.update(|set| set.unregister(id))?;
    if out.json() {
        out.line(&descriptor_to_json(&removed)?);
    } else {
        out.line(&format!("removed {id} from {}", config.store_name()));
    }
    Ok(())
}

fn set_enabled(
    config: &StoreConfig,
    id: &str,
    enabled: bool,
    out: &Output,
) -> Result<(), CliError> {
    let registry = config.registry();
    let changed = registry.update(|set| set.set_enabled(id, enabled))?;
    let word = if enabled { "enabled" } else { "disabled" };
    if out.json() {
        out.line(&json!({ "id": id, "enabled": enabled, "changed": changed }).to_string());
    } else if changed {
        out.line(&format!("{word} {id} in {}", config.store_name()));
    } else {
        out.line(&format!("{id} was already {word}"));
    }
    Ok(())
}
