//! `cargo xtask fuzz [--seconds S] [TARGET...]`: runs every fuzz target of
//! `fuzz/` (cargo-fuzz, libFuzzer) for a bounded time and prints executions
//! and crashes per target.
//!
//! cargo-fuzz needs a nightly compiler for its sanitizer flags; on a stable
//! toolchain the runs set `RUSTC_BOOTSTRAP=1`. New inputs go to
//! `fuzz/work/<target>/` (not committed), the seeds in `fuzz/corpus/<target>/`
//! are read only, and a crash is written to `fuzz/artifacts/<target>/`, which
//! `crates/fuzz-replay`'s tests replay on every CI run once committed.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use crate::{Env, run as run_step, workspace_root};

const DEFAULT_SECONDS: u64 = 60;

/// What one bounded run of a target did.
struct Report {
    target: String,
    executions: Option<u64>,
    seconds: f64,
    new_artifacts: usize,
    ok: bool,
}

/// Runs `cargo xtask fuzz`.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let mut seconds = DEFAULT_SECONDS;
    let mut only = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--seconds" => {
                let value = rest.next().ok_or("--seconds needs a number")?;
                seconds = value
                    .parse()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("--seconds: {value:?} is not a positive number"))?;
            }
            flag if flag.starts_with('-') => return Err(format!("fuzz: unknown flag {flag:?}")),
            target => only.push(target.to_owned()),
        }
    }
    let fuzz_dir = workspace_root().join("fuzz");
    let mut targets = targets(&fuzz_dir)?;
    if !only.is_empty() {
        if let Some(unknown) = only.iter().find(|t| !targets.contains(t)) {
            return Err(format!(
                "fuzz: no target {unknown:?} (known: {})",
                targets.join(", ")
            ));
        }
        targets.retain(|t| only.contains(t));
    }

    let env = Env::prepare()?;
    ensure_cargo_fuzz(&env)?;
    let mut build = fuzz_command(&env, &["fuzz", "build"]);
    build.current_dir(workspace_root());
    run_step("cargo fuzz build (every target)", build)?;

    let mut reports = Vec::new();
    for target in &targets {
        reports.push(run_target(&env, &fuzz_dir, target, seconds)?);
    }

    println!(
        "\n{:<22} {:>14} {:>9} {:>8}  result",
        "target", "executions", "seconds", "crashes"
    );
    for r in &reports {
        let executions = r
            .executions
            .map_or_else(|| "?".to_owned(), |n| n.to_string());
        println!(
            "{:<22} {:>14} {:>9.1} {:>8}  {}",
            r.target,
            executions,
            r.seconds,
            r.new_artifacts,
            if r.ok {
                "ok"
            } else {
                "CRASH (see fuzz/artifacts)"
            }
        );
    }
    let failed: Vec<&str> = reports
        .iter()
        .filter(|r| !r.ok)
        .map(|r| r.target.as_str())
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "fuzz: crashes in {}; minimize with `cargo fuzz tmin`, fix the decoder, commit the artifact (the replay tests run it)",
            failed.join(", ")
        ))
    }
}

/// The targets: one file per target in `fuzz/fuzz_targets/`.
fn targets(fuzz_dir: &Path) -> Result<Vec<String>, String> {
    let dir = fuzz_dir.join("fuzz_targets");
    let entries =
        fs::read_dir(&dir).map_err(|e| format!("fuzz: cannot list {}: {e}", dir.display()))?;
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(format!("fuzz: no targets in {}", dir.display()));
    }
    Ok(names)
}

/// A cargo command for cargo-fuzz: a stable toolchain is let through
/// nightly's gate (cargo-fuzz passes `-Z` sanitizer flags).
fn fuzz_command(env: &Env, list: &[&str]) -> Command {
    let mut cmd = env.cargo(list);
    cmd.env("RUSTC_BOOTSTRAP", "1");
    cmd
}

fn ensure_cargo_fuzz(env: &Env) -> Result<(), String> {
    let installed = env
        .cargo(&["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if installed {
        return Ok(());
    }
    run_step(
        "cargo install cargo-fuzz --locked",
        env.cargo(&["install", "cargo-fuzz", "--locked"]),
    )
}

fn count_files(dir: &Path) -> usize {
    fs::read_dir(dir).map_or(0, |entries| entries.filter_map(Result::ok).count())
}

fn run_target(env: &Env, fuzz_dir: &Path, target: &str, seconds: u64) -> Result<Report, String> {
    let work = fuzz_dir.join("work").join(target);
    fs::create_dir_all(&work)
        .map_err(|e| format!("fuzz: cannot create {}: {e}", work.display()))?;
    let artifacts = fuzz_dir.join("artifacts").join(target);
    let before = count_files(&artifacts);
    let work_arg = work.to_string_lossy().into_owned();
    let seeds_arg = fuzz_dir
        .join("corpus")
        .join(target)
        .to_string_lossy()
        .into_owned();
    let max_time = format!("-max_total_time={seconds}");
    let mut cmd = fuzz_command(
        env,
        &[
            "fuzz",
            "run",
            target,
            &work_arg,
            &seeds_arg,
            "--",
            &max_time,
            // An input that takes longer than this is reported as a hang.
            "-timeout=10",
            "-print_final_stats=1",
        ],
    );
    cmd.current_dir(workspace_root());
    eprintln!("xtask: == fuzz {target} for {seconds} s");
    let started = Instant::now();
    let output = cmd
        .output()
        .map_err(|e| format!("fuzz {target}: cannot start cargo fuzz: {e}"))?;
    let took = started.elapsed().as_secs_f64();
    let log = String::from_utf8_lossy(&output.stderr);
    let executions = log
        .lines()
        .filter_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
        .filter_map(|n| n.trim().parse().ok())
        .next_back();
    let new_artifacts = count_files(&artifacts).saturating_sub(before);
    let ok = output.status.success() && new_artifacts == 0;
    if !ok {
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        for line in tail.iter().rev() {
            eprintln!("  {line}");
        }
    }
    Ok(Report {
        target: target.to_owned(),
        executions,
        seconds: took,
        new_artifacts,
        ok,
    })
}
