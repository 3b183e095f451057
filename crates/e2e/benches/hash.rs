//! `hash/{1000,10000,100000}`: the snapshot hash of CONTRACTS §6
//! (`provisioning_provider_api::snapshot_hash`, xxh3 over staged fields)
//! of `n` members and one blocked id.
//!
//! BENCHMARKS.md floors: ≈ 12 ns per member (12 µs per 1k) is the floor for a stable,
//! platform-independent hash on this machine kind.

#![allow(
    missing_docs,
    reason = "criterion's macros generate undocumented items"
)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use provisioning_provider_api::{ClusterNode, NodeId, snapshot_hash};

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("hash");
    for n in [1_000usize, 10_000, 100_000] {
        let members: Vec<ClusterNode> = (0..n)
            .map(|j| {
                let host = format!("10.{}.{}.{}", j >> 16, (j >> 8) & 255, j & 255);
                let node = ClusterNode::new(format!("node-{j:07}"), host, 4000);
                if j % 100 == 0 {
                    node.with_label("zone", ["a", "b", "c"][j % 3])
                } else {
                    node
                }
            })
            .collect();
        let blocked = vec![NodeId::from("node-0000007".to_string())];
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| black_box(snapshot_hash(black_box(&members), black_box(&blocked))));
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
