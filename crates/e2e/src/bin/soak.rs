//! `soak`: flapping backends with membership churn for M minutes
//! (RELIABILITY.md "Convergence and soak").
//!
//! ```text
//! soak [--minutes M] [--seed S] [--max-rss-growth-mib N] [--max-fd-growth N]
//! ```
//!
//! A Consul primary (the fake, behind a fault proxy) refuses connections
//! and comes back every 2 s while members join, leave and move on it and on
//! an in-memory standby, and the standby fails, hangs and resyncs at
//! random. Resident memory and open file descriptors are printed every
//! minute. After the first minute (warm-up: allocator pools, connection
//! pools, histograms) they may grow by at most `--max-rss-growth-mib`
//! (default 16) and `--max-fd-growth` (default 8) up to the end; at the end
//! every bridge and a replay of the event stream must hold the active
//! provider's true set. Exits non-zero otherwise.

use std::process::ExitCode;
use std::time::Duration;

use provisioning_e2e::soak_churn::{ChurnConfig, ResourceSample, run_churn};

struct Args {
    minutes: f64,
    seed: u64,
    max_rss_growth_mib: u64,
    max_fd_growth: u64,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        minutes: 10.0,
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs()),
        max_rss_growth_mib: 16,
        max_fd_growth: 8,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--minutes" => {
                let v = value("--minutes")?;
                args.minutes = v
                    .parse::<f64>()
                    .ok()
                    .filter(|m| m.is_finite() && *m > 0.0)
                    .ok_or(format!("--minutes {v:?}: not a positive number"))?;
            }
            "--seed" => {
                let v = value("--seed")?;
                args.seed = v.parse().map_err(|e| format!("--seed {v:?}: {e}"))?;
            }
            "--max-rss-growth-mib" => {
                let v = value("--max-rss-growth-mib")?;
                args.max_rss_growth_mib = v.parse().map_err(|e| format!("{v:?}: {e}"))?;
            }
            "--max-fd-growth" => {
                let v = value("--max-fd-growth")?;
                args.max_fd_growth = v.parse().map_err(|e| format!("{v:?}: {e}"))?;
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn print_sample(s: &ResourceSample) {
    println!(
        "soak: t={:>5.1} min  rss {:>7.1} MiB  fds {:>4}",
        s.at.as_secs_f64() / 60.0,
        mib(s.rss_bytes),
        s.fds
    );
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("soak: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let config = ChurnConfig {
        seed: args.seed,
        duration: Duration::from_secs_f64(args.minutes * 60.0),
        flap: Some(Duration::from_secs(2)),
        sample_every: Some(Duration::from_secs(60)),
        converge_bound: Duration::from_secs(30),
    };
    println!(
        "soak: {} min, seed {}, consul primary flapping every 2 s, churn on both providers; bound after warm-up: rss +{} MiB, fds +{}",
        args.minutes, args.seed, args.max_rss_growth_mib, args.max_fd_growth
    );
    let result = runtime.block_on(run_churn(&config, print_sample));
    runtime.shutdown_timeout(Duration::from_secs(5));
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            println!("soak: FAIL: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "soak: {} membership changes, {} faults, {} switches; healed -> every bridge and the replay on {} ({} members) after {}",
        report.changes,
        report.faults,
        report.switches,
        report.active.as_ref().map_or("nothing", |p| p.as_str()),
        report.members,
        report
            .converged
            .map_or("never".to_owned(), |d| format!("{} ms", d.as_millis())),
    );
    let mut failures = Vec::new();
    // The baseline is the sample after the warm-up minute (or the first one
    // for runs shorter than two minutes).
    let base = report
        .samples
        .iter()
        .find(|s| s.at >= Duration::from_secs(59))
        .filter(|_| report.samples.len() > 2)
        .or(report.samples.first());
    if let (Some(base), Some(last)) = (base, report.samples.last()) {
        let rss_growth = last.rss_bytes.saturating_sub(base.rss_bytes);
        let fd_growth = last.fds.saturating_sub(base.fds);
        let peak = report
            .samples
            .iter()
            .map(|s| s.rss_bytes)
            .max()
            .unwrap_or(0);
        println!(
            "soak: after warm-up rss {:.1} -> {:.1} MiB (+{:.1}, peak {:.1}), fds {} -> {} (+{fd_growth})",
            mib(base.rss_bytes),
            mib(last.rss_bytes),
            mib(rss_growth),
            mib(peak),
            base.fds,
            last.fds
        );
        if rss_growth > args.max_rss_growth_mib * 1024 * 1024 {
            failures.push(format!(
                "rss grew {:.1} MiB after warm-up (bound {} MiB)",
                mib(rss_growth),
                args.max_rss_growth_mib
            ));
        }
        if fd_growth > args.max_fd_growth {
            failures.push(format!(
                "open fds grew by {fd_growth} after warm-up (bound {})",
                args.max_fd_growth
            ));
        }
    } else {
        failures.push("no resource samples".into());
    }
    if !report.violations.is_empty() {
        failures.push(format!("consumer violations: {:?}", report.violations));
    }
    if report.converged.is_none() {
        failures.push("consumers never reached the active provider's truth".into());
    }
    if failures.is_empty() {
        println!("soak: passed");
        ExitCode::SUCCESS
    } else {
        for f in failures {
            println!("soak: FAIL: {f}");
        }
        ExitCode::FAILURE
    }
}
