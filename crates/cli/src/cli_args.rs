//! [`Cli`]: the command line of CONTRACTS §2, parsed by clap.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use cluster_provisioning::api::SecretRef;
use cluster_provisioning::registry::SecretRefPolicy;

use crate::cli_error::CliError;

/// Validate, manage, watch and demo cluster providers without writing Rust.
#[derive(Debug, Parser)]
#[command(
    name = "provisioning",
    version,
    about = "Validate, manage, watch and serve cluster providers (providers.jsonl).",
    after_help = "Examples:\n  \
        provisioning demo\n  \
        provisioning providers add in_memory --id local --priority 0 \\\n      \
        --watch 'members:=[{\"id\":\"n1\",\"host\":\"127.0.0.1\",\"port\":4000}]'\n  \
        provisioning validate --connect\n  \
        provisioning watch --json\n\n\
        Exit codes: 0 ok, 1 runtime failure, 2 invalid input, 3 backend unreachable."
)]
pub(crate) struct Cli {
    /// The provider store (JSON Lines, one descriptor per line).
    #[arg(
        long,
        global = true,
        env = "PROVISIONING_STORE",
        default_value = "./providers.jsonl",
        value_name = "PATH"
    )]
    pub(crate) store: PathBuf,

    /// A failover policy file: a JSON object of `timeout`, `max_errors`,
    /// `cooldown`, `standby`, ... (every key optional); default: the
    /// built-in defaults.
    #[arg(long, global = true, env = "PROVISIONING_POLICY", value_name = "PATH")]
    pub(crate) policy: Option<PathBuf>,

    /// Print JSON instead of text (errors stay `error[CODE]: ...` lines on
    /// stderr).
    #[arg(long, global = true)]
    pub(crate) json: bool,

    /// The command.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Load and validate the store and the policy; `--connect` also resolves
    /// secrets and probes every enabled backend.
    #[command(after_help = "Examples:\n  \
        provisioning validate\n  \
        provisioning --store /etc/provisioning/providers.jsonl validate --connect\n\n\
        Exit codes: 0 valid (an empty store is valid), 2 invalid, 3 a backend is unreachable.")]
    Validate(ValidateArgs),

    /// List, add, remove, enable or disable providers in the store.
    #[command(
        subcommand,
        after_help = "Examples:\n  \
            provisioning providers list\n  \
            provisioning providers add etcd --id etcd-a --priority 10 \\\n      \
            --endpoint http://127.0.0.1:2379 --watch prefix=/cluster/app/\n  \
            provisioning providers disable etcd-a"
    )]
    Providers(ProvidersCommand),

    /// Run the service on the store and print every event until SIGINT or
    /// SIGTERM.
    #[command(after_help = "Examples:\n  \
        provisioning watch\n  \
        provisioning watch --json --once --timeout 10s\n\n\
        Exit codes: 0 stopped by a signal (or --once printed its snapshot),\n\
        2 no enabled provider or an invalid store, 3 --once saw no snapshot in time.")]
    Watch(WatchArgs),

    /// Run the service and the admin HTTP API until SIGINT or SIGTERM;
    /// SIGHUP reloads store and policy.
    #[command(after_help = "Examples:\n  \
        provisioning serve\n  \
        provisioning serve --listen 127.0.0.1:9464 --token-file /run/secrets/admin-token\n  \
        provisioning serve --allow-env CONSUL_HTTP_TOKEN --secrets-dir /etc/provisioning/secrets\n\n\
        Routes: GET / /healthz /readyz /topology /providers /events /metrics,\n\
        POST /providers /failover, DELETE /providers/{id}.\n\n\
        A descriptor sent to POST /providers may reference only env:PROVISIONING_*,\n\
        the variables named by --allow-env, and files inside --secrets-dir;\n\
        anything else is refused (400 forbidden_secret_ref).")]
    Serve(ServeArgs),

    /// An embedded scenario with in-memory providers: live topology, a
    /// failure of the primary, failover, fail-back and a metrics summary.
    #[command(after_help = "Example:\n  provisioning demo\n\n\
        Needs no store and no external service; takes about 15 seconds.")]
    Demo,
}

/// `validate`.
#[derive(Debug, Args)]
pub(crate) struct ValidateArgs {
    /// Also resolve secrets and probe every enabled backend (exit 3 when one
    /// is unreachable).
    #[arg(long)]
    pub(crate) connect: bool,
}

/// `providers ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum ProvidersCommand {
    /// The descriptors, highest priority first (secrets as references).
    #[command(after_help = "Examples:\n  \
        provisioning providers list\n  \
        provisioning providers list --json")]
    List,

    /// Validate a new descriptor and save it atomically (creates the store
    /// if missing).
    #[command(after_help = "Examples:\n  \
        provisioning providers add consul --id consul-a --priority 20 \\\n      \
        --endpoint http://127.0.0.1:8500 --auth-token env:CONSUL_HTTP_TOKEN \\\n      \
        --watch service=app --watch passing:=true\n  \
        provisioning providers add etcd --id etcd-a --priority 10 \\\n      \
        --endpoint http://127.0.0.1:2379 --watch prefix=/cluster/app/\n\n\
        --watch KEY=VALUE sets a string; KEY:=VALUE sets parsed JSON.")]
    Add(AddArgs),

    /// Remove a provider (saved atomically).
    #[command(after_help = "Example:\n  provisioning providers remove consul-a")]
    Remove(IdArg),

    /// Enable a provider (saved atomically).
    #[command(after_help = "Example:\n  provisioning providers enable consul-a")]
    Enable(IdArg),

    /// Disable a provider (saved atomically).
    #[command(after_help = "Example:\n  provisioning providers disable consul-a")]
    Disable(IdArg),
}

/// `providers add`.
#[derive(Debug, Args)]
pub(crate) struct AddArgs {
    /// Backend kind: in_memory, consul, k8s, etcd.
    pub(crate) kind: String,
    /// Unique id (1-63 chars `[a-z0-9][a-z0-9._-]*`).
    #[arg(long)]
    pub(crate) id: String,
    /// Priority, unique; higher is preferred.
    #[arg(long)]
    pub(crate) priority: u32,
    /// A backend URL (repeatable).
    #[arg(long = "endpoint", value_name = "URL")]
    pub(crate) endpoints: Vec<String>,
    /// Token as a secret reference: `env:NAME` or `file:PATH`.
    #[arg(long, value_name = "REF")]
    pub(crate) auth_token: Option<String>,
    /// A watch key: `KEY=STRING` or `KEY:=JSON` (repeatable).
    #[arg(long = "watch", value_name = "KEY=VALUE")]
    pub(crate) watch: Vec<String>,
}

/// A provider id argument.
#[derive(Debug, Args)]
pub(crate) struct IdArg {
    /// The provider id.
    pub(crate) id: String,
}

/// `watch`.
#[derive(Debug, Args)]
pub(crate) struct WatchArgs {
    /// Print exactly one `snapshot` line as soon as one is published, then
    /// exit.
    #[arg(long)]
    pub(crate) once: bool,
    /// With --once: how long to wait for the snapshot (exit 3 after it);
    /// without: stop after this long (exit 0). Default with --once: 30s.
    #[arg(long, value_name = "DURATION")]
    pub(crate) timeout: Option<String>,
}

/// `serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on (loopback by default; another address needs
    /// --token-file).
    #[arg(long, default_value = "127.0.0.1:9464", value_name = "ADDR")]
    pub(crate) listen: SocketAddr,
    /// Require `Authorization: Bearer <token>`, the token being this file's
    /// content without a trailing newline.
    #[arg(long, value_name = "PATH")]
    pub(crate) token_file: Option<PathBuf>,
    /// Let a descriptor sent to `POST /providers` reference `env:NAME`
    /// (repeatable). Variables named `PROVISIONING_*` are always allowed,
    /// no others; the store file and `providers add` are not restricted.
    #[arg(long = "allow-env", value_name = "NAME", value_parser = env_name)]
    pub(crate) allow_env: Vec<String>,
    /// The directory `file:` secrets of a descriptor sent to
    /// `POST /providers` must resolve inside, after `..` and symlinks
    /// [default: the store's directory].
    #[arg(long, value_name = "DIR")]
    pub(crate) secrets_dir: Option<PathBuf>,
}

impl ServeArgs {
    /// What a descriptor sent to `POST /providers` may reference
    /// (CONTRACTS §4a rule 3): relative paths resolve against `store_dir`,
    /// which is also the secrets directory unless `--secrets-dir` names
    /// one. A `--secrets-dir` that is not a directory is exit 2.
    pub(crate) fn secret_ref_policy(
        &self,
        store_dir: PathBuf,
    ) -> Result<SecretRefPolicy, CliError> {
        let secrets_dir = match &self.secrets_dir {
            Some(dir) if !dir.is_dir() => {
                return Err(CliError::invalid_argument(format!(
                    "--secrets-dir {}: not a directory",
                    dir.display()
                )));
            }
            Some(dir) => dir.clone(),
            None => store_dir.clone(),
        };
        Ok(self.allow_env.iter().fold(
            SecretRefPolicy::new(store_dir, secrets_dir),
            |policy, name| policy.allow_env(name.clone()),
        ))
    }
}

/// `--allow-env NAME`: a variable name as `env:` references spell it.
fn env_name(name: &str) -> Result<String, String> {
    SecretRef::parse(&format!("env:{name}"))
        .map(|_| name.to_owned())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_go_anywhere() {
        let cli = Cli::try_parse_from(["provisioning", "providers", "list", "--json"]).unwrap();
        assert!(cli.json);
        assert!(matches!(
            cli.command,
            Command::Providers(ProvidersCommand::List)
        ));
        let cli = Cli::try_parse_from([
            "provisioning",
            "--store",
            "x.jsonl",
            "validate",
            "--connect",
        ])
        .unwrap();
        assert_eq!(cli.store, PathBuf::from("x.jsonl"));
    }

    #[test]
    fn serve_takes_allowed_variables_and_a_secrets_directory() {
        let cli = Cli::try_parse_from([
            "provisioning",
            "serve",
            "--allow-env",
            "CONSUL_HTTP_TOKEN",
            "--allow-env",
            "ETCD_PASSWORD",
            "--secrets-dir",
            "/run/secrets",
        ])
        .unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("not serve")
        };
        assert_eq!(args.allow_env, ["CONSUL_HTTP_TOKEN", "ETCD_PASSWORD"]);
        assert_eq!(args.secrets_dir, Some(PathBuf::from("/run/secrets")));
        for bad in ["", "A-B", "1X", "env:X"] {
            assert!(
                Cli::try_parse_from(["provisioning", "serve", "--allow-env", bad]).is_err(),
                "{bad:?}"
            );
        }
        let missing = ServeArgs {
            secrets_dir: Some(PathBuf::from("/surely/not/a/dir")),
            ..args
        };
        let e = missing.secret_ref_policy(PathBuf::from(".")).unwrap_err();
        assert_eq!(e.code(), "invalid_argument");
    }
}
