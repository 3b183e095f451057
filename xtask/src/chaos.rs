//! `cargo xtask chaos`: the fault matrix (RELIABILITY.md "Fault matrix").
//!
//! Builds and runs the release `chaos` binary of `provisioning-e2e`, which
//! drives every backend (in-memory, the Consul and Kubernetes fakes, real
//! etcd on loopback) through every fault under the tight policy, prints one
//! line per cell and the matrix with the measured figures, and fails when
//! any cell differs from its expected outcome. Arguments after `chaos` are
//! passed on (`--backend NAME`, `--fault NAME`, `--jobs N`, `--markdown`,
//! `--converge-minutes N`, `--seed S`, `--no-matrix`), except `--dev`: build
//! in the dev profile instead, reusing what `cargo test` already built (CI
//! runs it after the tests; a release build of the changed workspace crates
//! alone takes minutes on a 2-core machine). The outcomes are the same in
//! both profiles: every bound is far above what either needs.
//!
//! `cargo xtask chaos --partitions` runs the partition scenarios instead
//! (RELIABILITY.md "Partitions"): the `partitions` test target of
//! `provisioning-e2e`, with etcd members and service nodes on network
//! namespaces of their own. It needs root; `cargo xtask ci` runs the same
//! target within its integration step.

/// Runs `cargo xtask chaos [--dev] [ARGS]`.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let env = crate::Env::prepare()?;
    if args.iter().any(|a| a == "--partitions") {
        return partitions(&env, args);
    }
    let dev = args.iter().any(|a| a == "--dev");
    let mut list = vec!["run"];
    if !dev {
        list.push("--release");
    }
    list.extend(["--quiet", "-p", "provisioning-e2e", "--bin", "chaos", "--"]);
    list.extend(args.iter().map(String::as_str).filter(|a| *a != "--dev"));
    crate::run("chaos matrix", env.cargo(&list))
}

/// The partition scenarios: builds the `provisioning` binary they start on
/// each host, then runs the `partitions` test target one scenario at a
/// time.
fn partitions(env: &crate::Env, args: &[String]) -> Result<(), String> {
    if let Some(other) = args.iter().find(|a| a.as_str() != "--partitions") {
        return Err(format!("chaos --partitions: unknown flag {other:?}"));
    }
    crate::run(
        "partitions: build provisioning",
        env.cargo(&["build", "-p", "provisioning-cli", "--bin", "provisioning"]),
    )?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("target"));
    let mut test = env.cargo(&[
        "test",
        "-p",
        "provisioning-e2e",
        "--test",
        "partitions",
        "--",
        "--show-output",
    ]);
    test.env(
        "PROVISIONING_BIN",
        target.join("debug").join("provisioning"),
    );
    crate::run("partitions", test)
}
