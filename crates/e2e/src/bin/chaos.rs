//! `chaos`: the fault matrix (RELIABILITY.md "Fault matrix"). Every backend
//! as the primary with an in-memory standby, under every fault, under the
//! tight policy (timeout 1.5 s, cooldown 1 s, backoff 100 ms). Prints one
//! line per cell with the expected and the measured outcome, then the
//! matrix; exits non-zero when any cell differs from its expectation.
//!
//! ```text
//! chaos [--backend NAME]... [--fault NAME]... [--jobs N] [--markdown]
//!       [--converge-minutes N] [--seed S] [--no-matrix]
//! ```
//!
//! Names are the table's (`in-memory`, `consul`, `k8s`, `etcd`; `refused`,
//! `hang`, ... — a prefix is enough). `--jobs` runs that many cells at once
//! (default 4, one of them a lane where the etcd cells run one at a time:
//! they share the cores with the elections). `--markdown` also prints the tables for
//! RELIABILITY.md.
//!
//! Alongside the matrix runs the randomized convergence run (RELIABILITY.md
//! "Convergence and soak"): membership churn and random faults on a Consul
//! primary and an in-memory standby for `--converge-minutes` (default 1;
//! 0 skips it), seeded by `--seed` (default: the time; printed, so a
//! failure can be replayed); at the end every bridge and a replay of the
//! event stream must hold exactly the active provider's true set.
//! `--no-matrix` runs only that (e.g. `--no-matrix --converge-minutes 30`).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Instant;

use futures::StreamExt;
use provisioning_e2e::chaos_matrix::{Backend, CellReport, Fault, run_cell};
use provisioning_e2e::soak_churn::{ChurnConfig, run_churn};

struct Args {
    backends: Vec<Backend>,
    faults: Vec<Fault>,
    jobs: usize,
    markdown: bool,
    converge_minutes: f64,
    seed: u64,
    matrix: bool,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        backends: Vec::new(),
        faults: Vec::new(),
        jobs: 4,
        markdown: false,
        converge_minutes: 1.0,
        matrix: true,
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs()),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--backend" => {
                let v = it.next().ok_or("--backend needs a name")?;
                let b = Backend::ALL
                    .into_iter()
                    .find(|b| b.name().starts_with(&v))
                    .ok_or(format!("unknown backend {v:?}"))?;
                args.backends.push(b);
            }
            "--fault" => {
                let v = it.next().ok_or("--fault needs a name")?;
                let f = Fault::ALL
                    .into_iter()
                    .find(|f| f.name().starts_with(&v))
                    .ok_or(format!("unknown fault {v:?}"))?;
                args.faults.push(f);
            }
            "--jobs" => {
                let v = it.next().ok_or("--jobs needs a number")?;
                args.jobs = v
                    .parse::<usize>()
                    .map_err(|e| format!("--jobs {v:?}: {e}"))?
                    .max(1);
            }
            "--markdown" => args.markdown = true,
            "--no-matrix" => args.matrix = false,
            "--converge-minutes" => {
                let v = it.next().ok_or("--converge-minutes needs a number")?;
                args.converge_minutes = v
                    .parse::<f64>()
                    .ok()
                    .filter(|m| m.is_finite() && *m >= 0.0)
                    .ok_or(format!("--converge-minutes {v:?}: not a number of minutes"))?;
            }
            "--seed" => {
                let v = it.next().ok_or("--seed needs a number")?;
                args.seed = v.parse().map_err(|e| format!("--seed {v:?}: {e}"))?;
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if args.backends.is_empty() {
        args.backends = Backend::ALL.to_vec();
    }
    if args.faults.is_empty() {
        args.faults = Fault::ALL.to_vec();
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("chaos: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let started = Instant::now();
    // The randomized run goes alongside the matrix: it asserts only the
    // end state, so sharing the cores cannot change its verdict, and the
    // whole run stays within CI's budget.
    let (reports, converged) = runtime.block_on(async {
        let matrix = async {
            if args.matrix {
                run(&args).await
            } else {
                Vec::new()
            }
        };
        let converged = async {
            if args.converge_minutes > 0.0 {
                converge(&args).await
            } else {
                Ok(())
            }
        };
        futures::join!(matrix, converged)
    });
    let elapsed = started.elapsed();
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));

    if args.matrix {
        print_matrix(&args, &reports);
    }
    if args.matrix && args.markdown {
        print_markdown(&args, &reports);
    }
    let ran = reports.iter().filter(|r| r.ran()).count();
    let failed: Vec<&CellReport> = reports.iter().filter(|r| r.verdict.is_err()).collect();
    println!(
        "chaos: {ran} cells run, {} N/A, {} failed, in {:.0} s",
        reports.len() - ran,
        failed.len(),
        elapsed.as_secs_f64()
    );
    if let Err(e) = &converged {
        println!("convergence: FAIL: {e}");
    }
    if failed.is_empty() && converged.is_ok() {
        ExitCode::SUCCESS
    } else {
        for r in failed {
            println!("{r}");
        }
        ExitCode::FAILURE
    }
}

async fn converge(args: &Args) -> Result<(), String> {
    let duration = std::time::Duration::from_secs_f64(args.converge_minutes * 60.0);
    let bound = std::time::Duration::from_secs(30);
    println!(
        "convergence: churn and random faults on a consul primary and an in-memory standby for {duration:?}, seed {}",
        args.seed
    );
    let config = ChurnConfig {
        seed: args.seed,
        duration,
        flap: None,
        sample_every: None,
        converge_bound: bound,
    };
    let report = run_churn(&config, |_| {})
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "convergence: {} membership changes, {} faults, {} switches; healed -> every bridge and the replay on {} ({} members) after {}",
        report.changes,
        report.faults,
        report.switches,
        report.active.as_ref().map_or("nothing", |p| p.as_str()),
        report.members,
        report
            .converged
            .map_or("never".to_owned(), |d| format!("{} ms", d.as_millis())),
    );
    if !report.violations.is_empty() {
        return Err(format!("consumer violations: {:?}", report.violations));
    }
    if report.converged.is_none() {
        return Err(format!(
            "the consumers did not reach the active provider's truth within {bound:?} of healing (seed {})",
            args.seed
        ));
    }
    Ok(())
}

async fn run(args: &Args) -> Vec<CellReport> {
    let cells: Vec<(Backend, Fault)> = args
        .backends
        .iter()
        .flat_map(|b| args.faults.iter().map(move |f| (*b, *f)))
        .collect();
    let (etcd, others): (Vec<_>, Vec<_>) =
        cells.into_iter().partition(|(b, _)| *b == Backend::Etcd);
    let one = |(b, f): (Backend, Fault)| async move {
        let report = run_cell(b, f).await;
        println!("{report}");
        report
    };
    // etcd cells run one at a time in a lane of their own (a 1-2 s election
    // on a busy core would turn into spurious timeouts); the others share
    // the remaining jobs.
    let lanes = args
        .jobs
        .saturating_sub(usize::from(!etcd.is_empty()))
        .max(1);
    let etcd_lane = futures::stream::iter(etcd).then(one).collect::<Vec<_>>();
    let other_lanes = futures::stream::iter(others)
        .map(one)
        .buffer_unordered(lanes)
        .collect::<Vec<_>>();
    let (mut out, more) = futures::join!(other_lanes, etcd_lane);
    out.extend(more);
    out.sort_by_key(|r| (r.fault, r.backend));
    out
}

fn cell_text(r: &CellReport) -> String {
    if !r.ran() {
        return "N/A".into();
    }
    let mark = if r.verdict.is_ok() { "ok" } else { "FAIL" };
    let ms = |d: Option<std::time::Duration>| d.map_or("—".into(), |d| d.as_millis().to_string());
    format!(
        "{mark} {}sw {}/{}ms",
        r.switches.len(),
        ms(r.to_switch),
        ms(r.to_converge)
    )
}

fn print_matrix(args: &Args, reports: &[CellReport]) {
    let by: BTreeMap<(Fault, Backend), &CellReport> =
        reports.iter().map(|r| ((r.fault, r.backend), r)).collect();
    println!();
    println!("fault matrix (cell: verdict, switches, fault→switch / heal→converged)");
    print!("{:<24}", "");
    for b in &args.backends {
        print!(" {:<22}", b.name());
    }
    println!();
    for f in &args.faults {
        print!("{:<24}", f.name());
        for b in &args.backends {
            let text = by.get(&(*f, *b)).map_or(String::new(), |r| cell_text(r));
            print!(" {text:<22}");
        }
        println!();
    }
    println!();
}

fn print_markdown(args: &Args, reports: &[CellReport]) {
    let by: BTreeMap<(Fault, Backend), &CellReport> =
        reports.iter().map(|r| ((r.fault, r.backend), r)).collect();
    let header = |title: &str| {
        print!("| {title} |");
        for b in &args.backends {
            print!(" {} |", b.name());
        }
        println!();
        print!("|---|");
        for _ in &args.backends {
            print!("---|");
        }
        println!();
    };
    println!("<!-- expected -->");
    header("fault \\ backend");
    for f in &args.faults {
        print!("| {} |", f.name());
        for b in &args.backends {
            let text = by
                .get(&(*f, *b))
                .map_or(String::new(), |r| r.expected.label());
            print!(" {text} |");
        }
        println!();
    }
    println!();
    println!("<!-- measured -->");
    header("fault \\ backend");
    for f in &args.faults {
        print!("| {} |", f.name());
        for b in &args.backends {
            let text = by.get(&(*f, *b)).map_or(String::new(), |r| {
                if !r.ran() {
                    return "N/A".into();
                }
                let mark = if r.verdict.is_ok() { "✓" } else { "✗" };
                format!("{mark} {}", r.measured())
            });
            print!(" {text} |");
        }
        println!();
    }
}
