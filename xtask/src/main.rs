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

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  ci                       fmt check, clippy -D warnings, every test (doc tests included), docs
  test                     fast subset: unit tests of every crate
  integration [--containers]
                           tests against fakes and real services; --containers also runs the
                           Docker-based Consul test, and fails without a Docker engine
  bench [--quick]          criterion benches and the latency / recovery / scale harnesses
  chaos                    the fault matrix over every backend, under a tight policy
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
    run(
        "tests (unit, integration, doc)",
        // `--show-output` prints what passing tests print: the conformance
        // reports (every case executed) and the measured figures of the
        // time-bounded tests.
        env.cargo(&[
            "test",
            "--workspace",
            "--no-fail-fast",
            "--",
            "--show-output",
        ]),
    )?;
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
    run(
        "integration tests",
        env.cargo(&["test", "--workspace", "--tests"]),
    )?;
    if containers {
        run(
            "container tests",
            env.cargo(&[
                "test",
                "--locked",
                "--manifest-path",
                "crates/it-containers/Cargo.toml",
            ]),
        )?;
    }
    Ok(())
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
