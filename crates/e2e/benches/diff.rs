//! `diff/{1000,10000,100000}/{churn_1pct,churn_50pct}`: the events that turn
//! one id-sorted snapshot into another (`provisioning_provider_api::diff`,
//! a linear merge), with 1 % and 50 % of the members replaced.
//!
//! BENCHMARKS.md floors: the linear merge of two 1k lists at 1 % churn costs
//! 16 / 42 µs (p50 / p99), 2.6 / 4.0 ms at 100k.

#![allow(
    missing_docs,
    reason = "criterion's macros generate undocumented items"
)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use provisioning_provider_api::{ClusterNode, ProviderSnapshot, diff};

/// `n` members with ids `node-{start..start+n}` (two strings, a port, no
/// labels: the floors' shape, BENCHMARKS.md).
fn snapshot(start: usize, n: usize) -> ProviderSnapshot {
    let members = (start..start + n)
        .map(|j| {
            let host = format!("10.{}.{}.{}", j >> 16, (j >> 8) & 255, j & 255);
            ClusterNode::new(format!("node-{j:07}"), host, 4000)
        })
        .collect();
    ProviderSnapshot::new(members, vec![]).expect("unique ids")
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("diff");
    for n in [1_000usize, 10_000, 100_000] {
        if n == 100_000 {
            group.sample_size(20);
        }
        for (name, percent) in [("churn_1pct", 1usize), ("churn_50pct", 50)] {
            // Shifting the id window replaces `churn` members: as many leave
            // as join.
            let churn = n * percent / 100;
            let prev = snapshot(0, n);
            let next = snapshot(churn, n);
            assert_eq!(diff(&prev, &next).len(), 2 * churn, "leaves + joins");
            group.bench_with_input(BenchmarkId::new(format!("{n}"), name), &n, |b, _| {
                b.iter(|| black_box(diff(black_box(&prev), black_box(&next))));
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
