//! Project automation, run as `cargo xtask <command>` (alias in
//! `.cargo/config.toml`). It orchestrates `cargo` and the e2e binaries and
//! provides what builds and tests need first: `protoc` for etcd-client, and
//! the services tests start (installed from Debian packages when run as
//! root; otherwise it stops with a one-line instruction). It never skips a
//! step silently.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

mod bench;
mod chaos;
mod fuzz;
mod soak;
#[cfg(test)]
mod tidy;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  ci                       fmt check, clippy -D warnings, integration (below), doc tests,
                           loom models (below), chaos matrix, docs
  loom [--mutation NAME]   the watch hub's delivery engine model-checked with loom; with a
                           mutation (a negative control), passes only when a model catches it
  test                     fast subset: unit tests of every crate
  integration [--containers]
                           every unit and integration test (fakes and real services), and a
                           build of the Docker-based Consul test (crates/it-containers);
                           --containers also runs that test, and fails without a Docker engine
  bench [--quick]          criterion benches and the latency / recovery / scale harnesses
  chaos [--partitions]     the fault matrix over every backend, under a tight policy;
                           --partitions: the partition scenarios on network namespaces (root)
  soak --minutes M         flapping backends with churn; RSS and open fds every minute
  fuzz [--seconds S]       every fuzz target for a bounded time
  demo                     the embedded demo scenario (in-memory providers, no external service)
";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let Some(command) = args.first() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let rest = &args[1..];
    let result = match command.as_str() {
        "ci" => ci(),
        "test" => test(),
        "loom" => loom_command(rest),
        "integration" => integration(rest),
        "bench" => bench::run(rest),
        "chaos" => chaos::run(rest),
        "soak" => soak::run(rest),
        "fuzz" => fuzz::run(rest),
        "demo" => demo(),
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command {other:?}\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    // xtask/Cargo.toml lives one level below the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The environment every cargo child gets.
struct Env {
    /// `protoc` for etcd-client's build script (`PROTOC`).
    protoc: Option<PathBuf>,
}

impl Env {
    /// Finds `protoc`: an explicit `PROTOC` from the caller wins, else the
    /// binary vendored in the `protoc-bin-vendored` package.
    fn prepare() -> Result<Self, String> {
        if env::var_os("PROTOC").is_some() {
            return Ok(Self { protoc: None });
        }
        let path = protoc_bin_vendored::protoc_bin_path().map_err(|e| {
            format!(
                "no vendored protoc for this platform ({e}); install Debian's protobuf-compiler and set PROTOC=/usr/bin/protoc"
            )
        })?;
        Ok(Self { protoc: Some(path) })
    }

    fn cargo(&self, list: &[&str]) -> Command {
        let mut cmd = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        cmd.current_dir(workspace_root()).args(list);
        if let Some(path) = &self.protoc {
            cmd.env("PROTOC", path);
        }
        // k8s-openapi needs one Kubernetes version at the leaf. Tests get it
        // from dev-dependencies; `cargo doc` and `cargo check` build none, so
        // xtask names the oldest supported server for every build (the same
        // version the binary and the dev-dependencies enable, so they agree).
        if env::var_os("K8S_OPENAPI_ENABLED_VERSION").is_none() {
            cmd.env("K8S_OPENAPI_ENABLED_VERSION", "1.33");
        }
        cmd
    }
}

fn run(step: &str, mut cmd: Command) -> Result<(), String> {
    eprintln!("xtask: == {step}");
    let started = Instant::now();
    let status = cmd
        .status()
        .map_err(|e| format!("{step}: cannot start {cmd:?}: {e}"))?;
    let took = started.elapsed().as_secs_f64();
    if status.success() {
        eprintln!("xtask: == {step}: ok ({took:.1} s)");
        Ok(())
    } else {
        Err(format!("{step} failed ({status}) after {took:.1} s"))
    }
}

/// A Debian package a test suite needs, and the binary that proves it is
/// installed.
struct Requirement {
    package: &'static str,
    binary: &'static str,
    /// An environment variable the tests read that points at the binary
    /// instead, if they honour one.
    override_var: Option<&'static str>,
    why: &'static str,
}

/// What the test suites start or drive themselves.
const TEST_REQUIREMENTS: &[Requirement] = &[
    Requirement {
        package: "etcd-server",
        binary: "/usr/bin/etcd",
        override_var: Some("ETCD_BIN"),
        why: "the etcd backend's tests run a real etcd on loopback",
    },
    Requirement {
        package: "chromium",
        binary: "/usr/bin/chromium",
        override_var: None,
        why: "the admin status page is checked in headless Chromium",
    },
    Requirement {
        package: "procps",
        binary: "/usr/bin/kill",
        override_var: None,
        why: "the CLI tests signal the running binary (SIGHUP, SIGTERM)",
    },
    Requirement {
        package: "iproute2",
        binary: "/usr/bin/ip",
        override_var: None,
        why: "the partition tests put etcd members and service nodes in network namespaces",
    },
];

/// Installs what the tests need from Debian's packages when running as root;
/// otherwise stops with a one-line instruction. Never skips.
fn ensure_test_requirements() -> Result<(), String> {
    let missing: Vec<&Requirement> = TEST_REQUIREMENTS
        .iter()
        .filter(|r| {
            let overridden = r
                .override_var
                .and_then(env::var_os)
                .is_some_and(|p| Path::new(&p).exists());
            !overridden && !Path::new(r.binary).exists()
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let packages: Vec<&str> = missing.iter().map(|r| r.package).collect();
    for r in &missing {
        eprintln!("xtask: {} is missing: {}", r.package, r.why);
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if !root {
        return Err(format!(
            "install the test requirements first: sudo apt-get install -y {}",
            packages.join(" ")
        ));
    }
    let mut update = Command::new("apt-get");
    update.args(["update", "-q"]);
    run("apt-get update", update)?;
    let mut install = Command::new("apt-get");
    install
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&packages)
        .env("DEBIAN_FRONTEND", "noninteractive");
    run("apt-get install", install)?;
    // Debian's package may start a system-wide etcd on its default ports;
    // the tests use their own members on free ports, so it is left alone.
    for r in &missing {
        if !Path::new(r.binary).exists() {
            return Err(format!(
                "{} installed but {} is still missing",
                r.package, r.binary
            ));
        }
    }
    Ok(())
}

fn ci() -> Result<(), String> {
    let env = Env::prepare()?;
    ensure_test_requirements()?;
    let started = Instant::now();
    run("fmt --check", env.cargo(&["fmt", "--all", "--", "--check"]))?;
    run(
        "clippy -D warnings",
        env.cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    // `integration` runs every unit and integration test and `--doc` every
    // doc test: together exactly what `cargo test --workspace` runs, each
    // test once. A failure in one does not stop the other, as
    // `--no-fail-fast` does not stop the remaining test binaries.
    eprintln!("xtask: == integration (cargo xtask integration)");
    let integration = integration_steps(&env, false);
    let doc = run(
        "doc tests",
        env.cargo(&[
            "test",
            "--workspace",
            "--doc",
            "--no-fail-fast",
            "--",
            "--show-output",
        ]),
    );
    let examples = run_examples(&env);
    let models = loom(&env, None);
    let failed: Vec<String> = [integration, examples, doc, models]
        .into_iter()
        .filter_map(Result::err)
        .collect();
    if !failed.is_empty() {
        return Err(failed.join("; "));
    }
    // The fault matrix and the randomized convergence run, in the dev
    // profile that `cargo test` just built (about 70 s).
    chaos::run(&["--dev".to_owned()])?;
    let mut docs = env.cargo(&["doc", "--workspace", "--no-deps"]);
    docs.env("RUSTDOCFLAGS", "-D warnings");
    run("docs", docs)?;

    eprintln!(
        "xtask: ci passed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The negative controls of the loom models (see the watch hub's
/// `delivery/loom_models.rs`).
const LOOM_MUTATIONS: [&str; 4] = [
    "attach_race",
    "no_wake_before_call",
    "sleep_race",
    "hold_ignored",
];

fn loom_command(rest: &[String]) -> Result<(), String> {
    let env = Env::prepare()?;
    match rest {
        [] => loom(&env, None),
        [flag, name] if flag == "--mutation" => {
            if !LOOM_MUTATIONS.contains(&name.as_str()) {
                return Err(format!(
                    "loom: unknown mutation {name:?} (known: {})",
                    LOOM_MUTATIONS.join(", ")
                ));
            }
            match loom(&env, Some(name)) {
                Err(_) => {
                    eprintln!("xtask: loom: the mutation {name} was caught");
                    Ok(())
                }
                Ok(()) => Err(format!("loom: no model caught the mutation {name}")),
            }
        }
        _ => Err(format!("loom: unknown arguments {rest:?}\n{USAGE}")),
    }
}

/// The model checks of the watch hub's delivery engine: loom explores every
/// interleaving of the bridge crew, the notifier and a consumer slot up to
/// a preemption bound (a fixed number of interleavings, under a minute).
/// `--cfg hub_loom` changes the flags of every crate, so they build in a
/// target directory of their own, beside the main one, which stays valid; a
/// cold run builds the hub and its dependencies once more in release (about
/// 6 minutes on 2 cores).
fn loom(env: &Env, mutation: Option<&str>) -> Result<(), String> {
    let mut cmd = env.cargo(&[
        "test",
        "-p",
        "provisioning-watch-hub",
        "--release",
        "--lib",
        "loom",
        "--",
        "--nocapture",
        "--test-threads",
        "1",
    ]);
    let target = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    cmd.env("CARGO_TARGET_DIR", target.join("loom"));
    cmd.env("RUSTFLAGS", "--cfg hub_loom");
    match mutation {
        Some(name) => cmd.env("HUB_LOOM_MUTATION", name),
        None => cmd.env_remove("HUB_LOOM_MUTATION"),
    };
    let step = match mutation {
        Some(name) => format!("loom models with the mutation {name}"),
        None => "loom models".to_owned(),
    };
    run(&step, cmd)
}

fn test() -> Result<(), String> {
    let env = Env::prepare()?;
    run("unit tests", env.cargo(&["test", "--workspace", "--lib"]))
}

fn integration(rest: &[String]) -> Result<(), String> {
    let containers = rest.iter().any(|a| a == "--containers");
    if let Some(unknown) = rest.iter().find(|a| a.as_str() != "--containers") {
        return Err(format!("integration: unknown flag {unknown:?}"));
    }
    // Asked to run the container tests where they cannot run: say so before
    // spending the build, and fail. "Not run" is never a pass.
    if containers {
        docker_engine()?;
    }
    let env = Env::prepare()?;
    ensure_test_requirements()?;
    integration_steps(&env, containers)
}

/// Where the container tests' manifest is; the crate is a workspace of its
/// own (see the root `Cargo.toml`), with its own `Cargo.lock`.
const CONTAINERS_MANIFEST: &str = "crates/it-containers/Cargo.toml";

/// Every unit and integration test of the workspace (`--tests`: libraries'
/// and binaries' unit tests and the `tests/` binaries; doc tests are `ci`'s
/// own step) with the examples built and linked (`--examples`; they hold no
/// tests), then the container tests built (`containers`: also run). Both
/// steps run even when the first fails.
fn integration_steps(env: &Env, containers: bool) -> Result<(), String> {
    let tests = run(
        "integration: unit and integration tests",
        // `--show-output` prints what passing tests print: the conformance
        // reports (every case executed) and the measured figures of the
        // time-bounded tests.
        env.cargo(&[
            "test",
            "--workspace",
            "--tests",
            "--examples",
            "--no-fail-fast",
            "--",
            "--show-output",
        ]),
    );
    // The crate is excluded from the workspace (it needs Docker to run), so
    // nothing else compiles it: build its tests here so it cannot rot
    // unseen. Same profile and target directory as the workspace's tests,
    // so the crates they share are not built again.
    let mut build = env.cargo(&[
        "test",
        "--no-run",
        "--locked",
        "--manifest-path",
        CONTAINERS_MANIFEST,
    ]);
    shared_target_dir(&mut build);
    // Its lock file is its own: a workspace crate that gains a dependency
    // makes `--locked` refuse it, on purpose, with this remedy.
    let built = run("integration: it-containers build", build).map_err(|e| {
        format!(
            "{e} (if its lock file is out of date: cargo update -w --manifest-path {CONTAINERS_MANIFEST})"
        )
    });
    let failed: Vec<String> = [tests, built].into_iter().filter_map(Result::err).collect();
    if !failed.is_empty() {
        return Err(failed.join("; "));
    }
    if containers {
        let mut run_them = env.cargo(&[
            "test",
            "--locked",
            "--manifest-path",
            CONTAINERS_MANIFEST,
            "--",
            "--show-output",
        ]);
        shared_target_dir(&mut run_them);
        run("integration: container tests", run_them)?;
    }
    Ok(())
}

/// The examples the README and the crate docs point at, with the package
/// that holds each: built as programs (`integration` only checks that they
/// compile, as tests) and run, so a documented example that stops working
/// fails CI. Each ends by
/// itself within seconds; one still running after [`EXAMPLE_DEADLINE`] is
/// killed and fails.
const RUN_EXAMPLES: [(&str, &str); 3] = [
    ("cluster-provisioning", "quickstart"),
    ("cluster-provisioning", "opentelemetry_stdout"),
    ("provisioning-ractor", "cluster"),
];
const EXAMPLE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(120);

fn run_examples(env: &Env) -> Result<(), String> {
    // Same profile and features as the tests: only the examples themselves
    // are compiled again, as programs.
    run(
        "examples: build",
        env.cargo(&["build", "--workspace", "--examples"]),
    )?;
    let target = env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from);
    let failed: Vec<String> = RUN_EXAMPLES
        .iter()
        .filter_map(|(package, name)| {
            let binary = target.join("debug").join("examples").join(name);
            run_example(&format!("example {package}/{name}"), &binary).err()
        })
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join("; "))
    }
}

/// Runs one built example to its end, within [`EXAMPLE_DEADLINE`].
fn run_example(step: &str, binary: &Path) -> Result<(), String> {
    eprintln!("xtask: == {step}");
    let started = Instant::now();
    let mut child = Command::new(binary)
        .current_dir(workspace_root())
        .spawn()
        .map_err(|e| format!("{step}: cannot start {}: {e}", binary.display()))?;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => {
                let took = started.elapsed().as_secs_f64();
                eprintln!("xtask: == {step}: ok ({took:.1} s)");
                return Ok(());
            }
            Ok(Some(status)) => return Err(format!("{step} failed ({status})")),
            Ok(None) if started.elapsed() > EXAMPLE_DEADLINE => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{step} still running after {EXAMPLE_DEADLINE:?}"));
            }
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(50)),
            Err(e) => return Err(format!("{step}: {e}")),
        }
    }
}

/// Points a build of the separate `it-containers` workspace at the main
/// workspace's target directory (`CARGO_TARGET_DIR` when set, else
/// `target/` at the root), instead of a second one of its own.
fn shared_target_dir(cmd: &mut Command) {
    if env::var_os("CARGO_TARGET_DIR").is_none() {
        cmd.env("CARGO_TARGET_DIR", workspace_root().join("target"));
    }
}

/// Whether a Docker engine answers; else why not, in one line.
fn docker_engine() -> Result<(), String> {
    let output = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .map_err(|e| {
            format!("integration --containers: cannot run `docker` ({e}); the container tests need a Docker engine")
        })?;
    if output.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&output.stderr)
        .lines()
        .chain(String::from_utf8_lossy(&output.stdout).lines())
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned)
        .unwrap_or_else(|| format!("`docker info` exited with {}", output.status));
    Err(format!(
        "integration --containers: no Docker engine answers ({said}); the container tests cannot run"
    ))
}

fn demo() -> Result<(), String> {
    let env = Env::prepare()?;
    run(
        "demo",
        env.cargo(&[
            "run",
            "--quiet",
            "--package",
            "provisioning-cli",
            "--",
            "demo",
        ]),
    )
}
