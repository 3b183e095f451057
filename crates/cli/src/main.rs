//! `provisioning`: the operator CLI of cluster-provisioning (CONTRACTS §2).
//!
//! Validates, manages, watches and demonstrates cluster providers stored in
//! `providers.jsonl` without writing Rust:
//!
//! ```text
//! provisioning demo
//! provisioning providers add in_memory --id local --priority 0 \
//!     --watch 'members:=[{"id":"n1","host":"127.0.0.1","port":4000}]'
//! provisioning validate --connect
//! provisioning watch --json --once
//! ```
//!
//! Errors are one `error[CODE]: message` line on stderr; exit codes are 0
//! ok, 1 runtime failure, 2 invalid input, 3 backend unreachable.

#![forbid(unsafe_code)]

mod admin_listener;
mod cli_args;
mod cli_error;
mod connection_watchdog;
mod demo_command;
mod output;
mod providers_command;
mod serve_command;
mod shutdown_signals;
mod store_config;
mod text_table;
mod validate_command;
mod watch_assignment;
mod watch_command;
mod watched_body;
mod watched_io;

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use tracing_subscriber::EnvFilter;

use crate::cli_args::{Cli, Command};
use crate::cli_error::{CliError, Exit};
use crate::output::Output;
use crate::store_config::StoreConfig;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return argument_error(&e),
    };
    init_tracing(matches!(cli.command, Command::Demo));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error[provisioning_unavailable]: cannot start the async runtime: {e}");
            return Exit::Runtime.into();
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => Exit::Ok.into(),
        Err(e) => {
            eprintln!("{e}");
            e.exit().into()
        }
    }
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let config = StoreConfig::new(cli.store, cli.policy);
    let out = Output::new(cli.json);
    match &cli.command {
        Command::Validate(args) => validate_command::run(&config, args.connect, &out).await,
        Command::Providers(command) => providers_command::run(&config, command, &out),
        Command::Watch(args) => watch_command::run(&config, args, &out).await,
        Command::Serve(args) => serve_command::run(&config, args, &out).await,
        Command::Demo => demo_command::run(&out).await,
    }
}

/// Help and version go to stdout (exit 0); a bad command line is one
/// `error[invalid_argument]` line (exit 2).
fn argument_error(e: &clap::Error) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            Exit::Ok.into()
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            Exit::InvalidInput.into()
        }
        _ => {
            let rendered = e.render().to_string();
            let first = rendered
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("invalid arguments");
            let message = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!(
                "{}",
                CliError::invalid_argument(format!("{message} (see --help)"))
            );
            Exit::InvalidInput.into()
        }
    }
}

/// Logs go to stderr; `RUST_LOG` overrides the level (warnings by default,
/// errors only for the demo, whose faults are part of the show).
fn init_tracing(demo: bool) {
    let default = if demo { "error" } else { "warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}
