//! `cargo xtask chaos`: the fault matrix (RELIABILITY.md "Fault matrix").
//!
//! Builds and runs the release `chaos` binary of `provisioning-e2e`, which
//! drives every backend (in-memory, the Consul and Kubernetes fakes, real
//! etcd on loopback) through every fault under the tight policy, prints one
//! line per cell and the matrix with the measured figures, and fails when
//! any cell differs from its expected outcome. Arguments after `chaos` are
//! passed on (`--backend NAME`, `--fault NAME`, `--jobs N`, `--markdown`).

/// Runs `cargo xtask chaos [ARGS]`.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let env = crate::Env::prepare()?;
    let mut list = vec![
        "run",
        "--release",
        "--quiet",
        "-p",
        "provisioning-e2e",
        "--bin",
        "chaos",
        "--",
    ];
    list.extend(args.iter().map(String::as_str));
    crate::run("chaos matrix", env.cargo(&list))
}
