//! The fuzz harnesses decode bytes and never touch a network, so their
//! build must not compile a network stack: the backends are used without
//! their `client` feature. These tests fail when an HTTP, Kubernetes or
//! etcd client (or the sockets under them) comes back into the graph of
//! this crate or of the cargo-fuzz workspace in `fuzz/`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Packages that mean a network client or socket layer is compiled.
const NETWORK_CRATES: &[&str] = &[
    "reqwest",
    "hyper",
    "hyper-util",
    "h2",
    "rustls",
    "tokio-rustls",
    "kube",
    "kube-client",
    "kube-runtime",
    "etcd-client",
    "tonic",
    "mio",
    "socket2",
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `cargo tree` of this crate's normal dependencies on this host, one
/// package (or, with `features`, one package feature) per line, without tree
/// prefixes.
///
/// Offline, and for the host only: the packages it reads are exactly those
/// the build of this crate fetched, so it runs on a new machine right after
/// `cargo build`/`cargo test` (`--target all` would need the packages of
/// every other platform too, which no build here downloads). The fuzz
/// harnesses are built and run on this host, so its graph is the one that
/// matters.
fn cargo_tree(edges: &str) -> String {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(&cargo)
        .current_dir(workspace_root())
        .args([
            "tree",
            "--offline",
            "--locked",
            "-p",
            "provisioning-fuzz-replay",
            "-e",
            edges,
            "--prefix",
            "none",
        ])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", cargo.to_string_lossy()));
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap_or_else(|e| panic!("cargo tree output: {e}"))
}

/// The package name of a `cargo tree --prefix none` line (`name vX.Y.Z ...`).
fn package_name(line: &str) -> &str {
    line.split(' ').next().unwrap_or_default()
}

#[test]
fn fuzz_replay_builds_no_network_stack() {
    let tree = cargo_tree("normal");
    let mut packages: Vec<&str> = tree
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim_end_matches(" (*)"))
        .collect();
    packages.sort_unstable();
    packages.dedup();
    println!(
        "provisioning-fuzz-replay: {} packages in its normal dependency tree",
        packages.len()
    );
    let found: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| NETWORK_CRATES.contains(&package_name(p)))
        .collect();
    assert!(
        found.is_empty(),
        "network crates in the fuzz harnesses' tree: {found:?} (a backend dependency lost `default-features = false`, or a decoder needs its `client` feature again)"
    );
    assert!(
        packages.len() > 10 && packages.iter().any(|p| p.starts_with("k8s-openapi ")),
        "unexpected cargo tree output: {packages:?}"
    );
}

/// tokio comes in through `provisioning-registry` (its probe timeout) with
/// a runtime and timers only; its `net` feature would mean sockets.
#[test]
fn tokio_in_the_fuzz_tree_has_no_sockets() {
    let features = cargo_tree("normal,features");
    let net: Vec<&str> = features
        .lines()
        .filter(|l| l.starts_with("tokio feature \"net\""))
        .collect();
    assert!(net.is_empty(), "tokio's `net` feature is on: {net:?}");
}

#[test]
fn fuzz_workspace_lock_has_no_network_stack() {
    let path = workspace_root().join("fuzz/Cargo.lock");
    let lock = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let names: Vec<&str> = lock
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .collect();
    println!("fuzz/Cargo.lock: {} packages", names.len());
    assert!(
        names.contains(&"provisioning-fuzz-replay"),
        "fuzz/Cargo.lock does not lock the harness crate"
    );
    let found: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| NETWORK_CRATES.contains(n))
        .collect();
    assert!(
        found.is_empty(),
        "network crates locked in fuzz/Cargo.lock: {found:?} (regenerate it with `cd fuzz && cargo update -w`)"
    );
}
