//! `cargo xtask soak --minutes M`: the soak run (RELIABILITY.md
//! "Convergence and soak").
//!
//! Builds and runs the release `soak` binary of `provisioning-e2e`: flapping
//! backends with membership churn for M minutes, RSS and open file
//! descriptors printed every minute, failing when they grow beyond the
//! stated bound or when a consumer ends off the ground truth. Other
//! arguments are passed on.

/// Runs `cargo xtask soak [--minutes M] [ARGS]`.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let env = crate::Env::prepare()?;
    let mut list = vec![
        "run",
        "--release",
        "--quiet",
        "-p",
        "provisioning-e2e",
        "--bin",
        "soak",
        "--",
    ];
    list.extend(args.iter().map(String::as_str));
    crate::run("soak", env.cargo(&list))
}
