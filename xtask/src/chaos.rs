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

/// Runs `cargo xtask chaos [--dev] [ARGS]`.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let env = crate::Env::prepare()?;
    let dev = args.iter().any(|a| a == "--dev");
    let mut list = vec!["run"];
    if !dev {
        list.push("--release");
    }
    list.extend(["--quiet", "-p", "provisioning-e2e", "--bin", "chaos", "--"]);
    list.extend(args.iter().map(String::as_str).filter(|a| *a != "--dev"));
    crate::run("chaos matrix", env.cargo(&list))
}
