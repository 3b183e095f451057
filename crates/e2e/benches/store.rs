//! `store/save/{10,100,1000}` and `store/load/{10,100,1000}`:
//! `FileProviderStore` writing `providers.jsonl` durably (write the
//! `.tmp`, fsync it, rename over the file, fsync the directory, under the
//! advisory lock) and reading it back with validation, for 10, 100 and
//! 1,000 descriptors.
//!
//! BENCHMARKS.md floors: a durable replace of a 2 KB file costs 729 / 1,303 µs
//! (p50 / p99) on this machine kind; a save is dominated by the two
//! fsyncs, so `store/baseline_replace/2KB` measures that bare sequence
//! (write, fsync, rename, fsync the directory) in the same run. The files
//! live in a temporary directory under the system
//! temporary directory, removed at the end.

#![allow(
    missing_docs,
    reason = "criterion's macros generate undocumented items"
)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use provisioning_provider_api::ProviderDescriptor;
use provisioning_registry::{ProviderStore, descriptor_from_json};
use provisioning_store_file::FileProviderStore;

fn descriptors(n: usize) -> Vec<ProviderDescriptor> {
    (0..n)
        .map(|i| {
            descriptor_from_json(&format!(
                r#"{{"id":"etcd-{i:04}","kind":"etcd","priority":{i},"endpoints":["http://10.0.{}.{}:2379"],"watch":{{"prefix":"/cluster/app-{i}/"}}}}"#,
                i >> 8,
                i & 255
            ))
            .expect("valid descriptor")
        })
        .collect()
}

/// The bare durable replace a save is built on: write a 2 KB file, fsync
/// it, rename it over the target, fsync the directory.
fn durable_replace(dir: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = dir.join("baseline.tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, dir.join("baseline"))?;
    std::fs::File::open(dir)?.sync_all()
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut group = c.benchmark_group("store");
    group.sample_size(20);
    let bytes = vec![b'x'; 2048];
    group.bench_function("baseline_replace/2KB", |b| {
        b.iter(|| durable_replace(dir.path(), &bytes).expect("durable replace"));
    });
    for n in [10usize, 100, 1_000] {
        let list = descriptors(n);
        let store = FileProviderStore::new(dir.path().join(format!("providers-{n}.jsonl")))
            .with_validator(cluster_provisioning::builtin_validator());
        group.bench_with_input(BenchmarkId::new("save", n), &n, |b, _| {
            b.iter(|| store.save(black_box(&list)).expect("save"));
        });
        store.save(&list).expect("save");
        group.bench_with_input(BenchmarkId::new("load", n), &n, |b, _| {
            b.iter(|| {
                let loaded = store.load().expect("load");
                assert_eq!(loaded.len(), n);
                black_box(loaded)
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
