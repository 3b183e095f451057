//! End-to-end latency harness: the time from a membership change at the
//! backend to the last of the three bridge callbacks (placement, partition,
//! remoting) holding the new snapshot, p50 / p99 / max over `--changes`
//! changes (default 1,000), for each backend:
//!
//! | backend | change | floor (the backend's own latency, same run) |
//! |---|---|---|
//! | in-memory | `InMemoryHandle::add` / `remove` | none (a function call): 0 |
//! | Consul (fake agent) | `FakeConsul::upsert` / `remove` | one raw blocking query on a fresh connection: change → whole answer read |
//! | etcd (real, loopback) | etcd-client `put` / `delete` | a bare etcd-client watch: `put` → watch event |
//! | Kubernetes (fake API server) | pod created / deleted | one raw watch on the fake: change → event line read |
//!
//! Each run prints one `row:` line per backend with the ratio of the p99
//! to the floor's p99 and the target "p99 ≤ 2 × floor p99 + 1 ms".
//!
//! Changes toggle one member (`lat`) in and out of a 100-member cluster,
//! one at a time: the next change is made only after the previous one
//! reached every bridge, plus a pause (10 ms; 210 ms for Consul, whose
//! provider rate-limits its query loop to one query per 200 ms after a
//! burst of five, so faster changes would measure the rate limit). The
//! Consul floor's samples are spaced the same way, so both figures include
//! waking an idle machine.
//!
//! Usage: `latency [--changes N] [--only memory|consul|etcd|k8s]`. Needs
//! `/usr/bin/etcd` (or `ETCD_BIN`) for the etcd row. Everything runs on
//! loopback; fakes and etcd are stopped at the end of their row.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cluster_provisioning::{
    ClusterProvisioningService, FailoverPolicy, ProviderRegistry, ProvisioningHandle,
};
use provisioning_backend_memory::InMemoryProvider;
use provisioning_e2e::{Percentiles, ResultRow, SignalBridges, fmt_duration, load_average};
use provisioning_provider_api::{ClusterNode, MemberSpec, ProviderDescriptor, ProviderId};
use provisioning_testkit::etcd_cluster::EtcdCluster;
use provisioning_testkit::fake_consul::{FakeConsul, FakeInstance};
use provisioning_testkit::fake_kube::{FakeKube, KubeDriver, KubeDriverMode, ObjectKind};
use provisioning_testkit::{ConformanceDriver, MembershipChange};

/// Members present the whole time; the measured member comes and goes.
const BASE: usize = 100;
/// Longest a single change may take to reach the bridges.
const CHANGE_LIMIT: Duration = Duration::from_secs(10);
/// Pause between Consul changes: the provider's token bucket refills one
/// query per 200 ms.
const CONSUL_PAUSE: Duration = Duration::from_millis(210);
const ETCD_PREFIX: &str = "/latency/app/";
const ETCD_FLOOR_PREFIX: &str = "/latency/floor/";

struct Args {
    changes: usize,
    only: Option<String>,
}

fn args() -> Args {
    let mut out = Args {
        changes: 1000,
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--changes" => {
                out.changes = it
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--changes takes a number")
            }
            "--only" => out.only = it.next(),
            other => panic!(
                "unknown argument {other:?}; usage: latency [--changes N] [--only memory|consul|etcd|k8s]"
            ),
        }
    }
    out
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn node(i: usize) -> ClusterNode {
    ClusterNode::new(
        format!("m-{i:04}"),
        format!("10.0.{}.{}", i >> 8, i & 255),
        4000,
    )
}

fn lat_node() -> ClusterNode {
    ClusterNode::new("lat", "10.0.9.9", 4999)
}

/// A one-provider service with signalling bridges.
fn start_service(
    registry: ProviderRegistry,
    extra: Option<Arc<InMemoryProvider>>,
) -> (ProvisioningHandle, Arc<SignalBridges>) {
    let bridges = SignalBridges::new();
    let [p, q, r] = bridges.bridges();
    let mut builder = ClusterProvisioningService::build(registry)
        .with_failover(FailoverPolicy::default())
        .with_bridges(p, q, r);
    if let Some(provider) = extra {
        builder = builder.with_provider(provider);
    }
    (builder.start().expect("service starts"), bridges)
}

/// Drives `n` changes through `change(add) -> t0` and returns the
/// latencies to the last bridge callback. `change` makes one change and
/// returns the instant just before it was made.
fn measure(
    bridges: &SignalBridges,
    n: usize,
    pause: Duration,
    mut change: impl FnMut(bool) -> Instant,
) -> Result<Vec<Duration>, String> {
    // The initial view: every role on one snapshot of BASE members.
    if !bridges.wait_until(Duration::from_secs(30), |b| {
        b.placement_members() == BASE && b.all_hold(b.placement_hash())
    }) {
        return Err("the initial snapshot never reached the bridges".into());
    }
    let without = bridges.placement_hash();
    // Learn the hash with the extra member, then go back.
    change(true);
    if !bridges.wait_until(CHANGE_LIMIT, |b| {
        b.placement_members() == BASE + 1 && b.all_hold(b.placement_hash())
    }) {
        return Err("the first change never reached the bridges".into());
    }
    let with = bridges.placement_hash();
    change(false);
    if bridges.wait_all(without, CHANGE_LIMIT).is_none() {
        return Err("the second change never reached the bridges".into());
    }
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        std::thread::sleep(pause);
        let add = i % 2 == 0;
        let t0 = change(add);
        let expected = if add { with } else { without };
        let Some(at) = bridges.wait_all(expected, CHANGE_LIMIT) else {
            return Err(format!(
                "change {i} did not reach every bridge within {CHANGE_LIMIT:?}"
            ));
        };
        samples.push(at.saturating_duration_since(t0));
    }
    Ok(samples)
}

fn row(
    name: &str,
    e2e: Result<Vec<Duration>, String>,
    floor: Option<Result<Vec<Duration>, String>>,
) -> ResultRow {
    let figure = format!("end-to-end latency, {name} (p50 / p99 / max)");
    let target_of = |floor_p99: Duration| floor_p99 * 2 + Duration::from_millis(1);
    let floor = match floor {
        None => Ok(None),
        Some(Ok(samples)) => Ok(Percentiles::of(&samples)),
        Some(Err(e)) => Err(e),
    };
    match (e2e, floor) {
        (Ok(samples), Ok(floor)) => {
            let Some(p) = Percentiles::of(&samples) else {
                return failed(figure, "no samples".into());
            };
            let floor_p99 = floor.map(|f| f.p99).unwrap_or_default();
            let target = target_of(floor_p99);
            let (baseline, ratio) = match floor {
                Some(f) => (
                    format!("{f} (floor, {} samples)", f.count),
                    format!(
                        "p50 {:.1}× · p99 {:.1}×",
                        ratio(p.p50, f.p50),
                        ratio(p.p99, f.p99)
                    ),
                ),
                None => ("0 (a function call)".into(), "—".into()),
            };
            let verdict = if p.p99 <= target {
                "met".to_string()
            } else {
                format!(
                    "MISSED (p99 {} over by {})",
                    fmt_duration(p.p99),
                    fmt_duration(p.p99 - target)
                )
            };
            ResultRow {
                figure,
                value: format!("{p} ({} changes)", p.count),
                baseline,
                ratio,
                target: format!("p99 ≤ 2 × floor p99 + 1 ms = {}", fmt_duration(target)),
                verdict,
            }
        }
        (Err(e), _) | (_, Err(e)) => failed(figure, e),
    }
}

fn failed(figure: String, reason: String) -> ResultRow {
    ResultRow {
        figure,
        value: "not measured".into(),
        baseline: "—".into(),
        ratio: "—".into(),
        target: "p99 ≤ 2 × floor p99 + 1 ms".into(),
        verdict: format!("MISSED ({reason})"),
    }
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

// ---- in-memory ------------------------------------------------------------

fn in_memory(rt: &tokio::runtime::Runtime, n: usize) -> ResultRow {
    let provider = Arc::new(InMemoryProvider::new(
        ProviderId::new("memory").expect("valid id"),
        10,
    ));
    let handle = provider.handle();
    for i in 0..BASE {
        handle.add(node(i)).expect("valid member");
    }
    let (service, bridges) = rt.block_on(async {
        start_service(cluster_provisioning::builtin_registry(), Some(provider))
    });
    let e2e = measure(&bridges, n, Duration::from_millis(10), |add| {
        let t0 = Instant::now();
        if add {
            handle.add(lat_node()).expect("lat is not a member yet");
        } else {
            handle.remove("lat");
        }
        t0
    });
    rt.block_on(service.shutdown()).expect("shutdown");
    row("in-memory", e2e, None)
}

// ---- Consul -----------------------------------------------------------------

fn consul_instance(i: usize) -> FakeInstance {
    let n = node(i);
    FakeInstance::new("app", n.id.as_str(), &n.host, n.port)
}

fn consul_toggle(fake: &FakeConsul, add: bool) {
    if add {
        fake.upsert(FakeInstance::new("app", "lat", "10.0.9.9", 4999));
    } else {
        fake.remove("app", "lat");
    }
}

/// One raw blocking query per sample, on a fresh connection that is
/// connected and held by the fake before the change is made; the sample
/// ends when the whole answer has been read.
fn consul_floor(fake: &FakeConsul, n: usize, pause: Duration) -> Result<Vec<Duration>, String> {
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        // The same spacing as the measured changes: after 200 ms of quiet
        // the machine's threads (and vCPUs) are idle, and waking them is
        // part of both figures.
        std::thread::sleep(pause);
        let add = i % 2 == 0;
        let index = fake.index("app");
        fake.clear_requests();
        let addr = fake.addr();
        let reader = std::thread::spawn(move || raw_blocking_query(addr, index));
        let started = Instant::now();
        while fake.requests().is_empty() {
            if started.elapsed() > CHANGE_LIMIT {
                return Err("the raw blocking query never reached the fake".into());
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        // The query is logged as it arrives; give the fake a moment to
        // start holding it.
        std::thread::sleep(Duration::from_millis(1));
        let t0 = Instant::now();
        consul_toggle(fake, add);
        let (t1, answer) = reader
            .join()
            .map_err(|_| "raw query thread panicked".to_string())??;
        if !answer.starts_with("HTTP/1.1 200") {
            return Err(format!(
                "raw blocking query answered {:?}",
                answer.lines().next()
            ));
        }
        samples.push(t1.saturating_duration_since(t0));
    }
    Ok(samples)
}

fn raw_blocking_query(addr: SocketAddr, index: u64) -> Result<(Instant, String), String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(CHANGE_LIMIT))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "GET /v1/health/service/app?passing=1&index={index}&wait=30s HTTP/1.1\r\nHost: consul\r\nConnection: close\r\n\r\n"
    );
    s.write_all(request.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).map_err(|e| format!("read: {e}"))?;
    Ok((Instant::now(), String::from_utf8_lossy(&out).into_owned()))
}

fn consul(rt: &tokio::runtime::Runtime, n: usize) -> ResultRow {
    let fake = rt.block_on(FakeConsul::start()).expect("fake consul");
    fake.set_instances("app", (0..BASE).map(consul_instance).collect());
    let floor = consul_floor(&fake, n, CONSUL_PAUSE);
    // Leave the cluster without `lat` whatever the floor ended on.
    fake.remove("app", "lat");
    let registry = cluster_provisioning::builtin_registry();
    let descriptor = provisioning_registry::descriptor_from_json(&format!(
        r#"{{"id":"consul-a","kind":"consul","priority":20,"endpoints":["{}"],"watch":{{"service":"app","wait":"4s"}}}}"#,
        fake.url()
    ))
    .expect("consul descriptor");
    registry.register(descriptor).expect("register consul");
    let (service, bridges) = rt.block_on(async { start_service(registry, None) });
    let e2e = measure(&bridges, n, CONSUL_PAUSE, |add| {
        let t0 = Instant::now();
        consul_toggle(&fake, add);
        t0
    });
    rt.block_on(service.shutdown()).expect("shutdown");
    drop(fake);
    row("Consul (fake agent)", e2e, Some(floor))
}

// ---- etcd -------------------------------------------------------------------

fn member_json(node: ClusterNode) -> Vec<u8> {
    serde_json::to_vec(&MemberSpec::from(node)).expect("member JSON")
}

/// A bare etcd-client watch on its own prefix: `put` (or `delete`) → the
/// watch event, both on one client.
async fn etcd_floor(client: &mut etcd_client::Client, n: usize) -> Result<Vec<Duration>, String> {
    let options = etcd_client::WatchOptions::new().with_prefix();
    let mut stream = client
        .watch(ETCD_FLOOR_PREFIX, Some(options))
        .await
        .map_err(|e| format!("watch: {e}"))?;
    let key = format!("{ETCD_FLOOR_PREFIX}lat");
    let value = member_json(lat_node());
    let mut kv = client.kv_client();
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        tokio::time::sleep(Duration::from_millis(2)).await;
        let t0 = Instant::now();
        let change = async {
            if i % 2 == 0 {
                kv.put(key.as_str(), value.clone(), None).await.map(|_| ())
            } else {
                kv.delete(key.as_str(), None).await.map(|_| ())
            }
        };
        let event = async {
            loop {
                match stream.message().await {
                    Ok(Some(r)) if !r.events().is_empty() => return Ok(Instant::now()),
                    Ok(Some(_)) => continue,
                    Ok(None) => return Err("watch ended".to_string()),
                    Err(e) => return Err(format!("watch: {e}")),
                }
            }
        };
        let (changed, seen) =
            tokio::time::timeout(CHANGE_LIMIT, async { tokio::join!(change, event) })
                .await
                .map_err(|_| "no watch event within the limit".to_string())?;
        changed.map_err(|e| format!("put/delete: {e}"))?;
        samples.push(seen?.saturating_duration_since(t0));
    }
    Ok(samples)
}

fn etcd(rt: &tokio::runtime::Runtime, n: usize) -> ResultRow {
    let cluster = match rt.block_on(EtcdCluster::start(1)) {
        Ok(c) => c,
        Err(e) => {
            return failed(
                "end-to-end latency, etcd (p50 / p99 / max)".into(),
                format!("no etcd: {e}"),
            );
        }
    };
    let mut client = rt
        .block_on(etcd_client::Client::connect(cluster.endpoints(), None))
        .expect("etcd client");
    let mut kv = client.kv_client();
    rt.block_on(async {
        for i in 0..BASE {
            let n = node(i);
            kv.put(format!("{ETCD_PREFIX}{}", n.id), member_json(n), None)
                .await
                .expect("put base member");
        }
    });
    let floor = rt.block_on(etcd_floor(&mut client, n));
    let descriptor: ProviderDescriptor = serde_json::from_value(serde_json::json!({
        "id": "etcd-a", "kind": "etcd", "priority": 20,
        "endpoints": cluster.endpoints(), "watch": {"prefix": ETCD_PREFIX},
    }))
    .expect("etcd descriptor");
    let registry = cluster_provisioning::builtin_registry();
    registry.register(descriptor).expect("register etcd");
    let (service, bridges) = rt.block_on(async { start_service(registry, None) });
    let key = format!("{ETCD_PREFIX}lat");
    let value = member_json(lat_node());
    let e2e = measure(&bridges, n, Duration::from_millis(10), |add| {
        let t0 = Instant::now();
        let result = rt.block_on(async {
            if add {
                kv.put(key.as_str(), value.clone(), None).await.map(|_| ())
            } else {
                kv.delete(key.as_str(), None).await.map(|_| ())
            }
        });
        if let Err(e) = result {
            eprintln!("latency: etcd change failed: {e}");
        }
        t0
    });
    rt.block_on(service.shutdown()).expect("shutdown");
    drop(cluster);
    row("etcd (real, loopback)", e2e, Some(floor))
}

// ---- Kubernetes -----------------------------------------------------------

/// One raw watch on the fake, read line by line on a thread; every event
/// line's arrival time goes down the channel.
fn raw_watch(addr: SocketAddr, resource_version: u64) -> Result<mpsc::Receiver<Instant>, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    let request = format!(
        "GET /api/v1/namespaces/apps/pods?watch=true&resourceVersion={resource_version}&timeoutSeconds=3600&labelSelector=app%3Dactors HTTP/1.1\r\nHost: kube\r\n\r\n"
    );
    s.write_all(request.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(s);
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    if line.contains("\"type\"") && tx.send(Instant::now()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    Ok(rx)
}

fn kube_floor(fake: &FakeKube, driver: &KubeDriver, n: usize) -> Result<Vec<Duration>, String> {
    let events = raw_watch(fake.addr(), fake.resource_version())?;
    // Let the watch be registered before the first change.
    std::thread::sleep(Duration::from_millis(50));
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        std::thread::sleep(Duration::from_millis(2));
        let t0 = Instant::now();
        kube_toggle(fake, driver, i % 2 == 0);
        let seen = events
            .recv_timeout(CHANGE_LIMIT)
            .map_err(|_| "no raw watch event within the limit".to_string())?;
        samples.push(seen.saturating_duration_since(t0));
    }
    Ok(samples)
}

fn kube_toggle(fake: &FakeKube, driver: &KubeDriver, add: bool) {
    if add {
        fake.upsert(
            ObjectKind::Pod,
            "apps",
            driver.object(&MemberSpec::from(lat_node())),
        );
    } else {
        fake.delete(ObjectKind::Pod, "apps", "lat");
    }
}

fn kube(rt: &tokio::runtime::Runtime, n: usize) -> ResultRow {
    let fake = Arc::new(rt.block_on(FakeKube::start()).expect("fake API server"));
    let driver = KubeDriver::new(fake.clone(), KubeDriverMode::Pods, "apps");
    let specs: Vec<MemberSpec> = (0..BASE).map(|i| MemberSpec::from(node(i))).collect();
    rt.block_on(driver.apply(MembershipChange::Reset(specs)))
        .expect("pods");
    let floor = kube_floor(&fake, &driver, n);
    fake.delete(ObjectKind::Pod, "apps", "lat");
    let mut descriptor = driver
        .descriptor("k8s", serde_json::json!({}))
        .expect("descriptor");
    descriptor.priority = 20;
    let registry = cluster_provisioning::builtin_registry();
    registry.register(descriptor).expect("register k8s");
    let (service, bridges) = rt.block_on(async { start_service(registry, None) });
    let e2e = measure(&bridges, n, Duration::from_millis(10), |add| {
        let t0 = Instant::now();
        kube_toggle(&fake, &driver, add);
        t0
    });
    rt.block_on(service.shutdown()).expect("shutdown");
    row("Kubernetes (fake API server)", e2e, Some(floor))
}

fn main() {
    let args = args();
    let rt = runtime();
    let wanted = |name: &str| args.only.as_deref().is_none_or(|o| o == name);
    println!(
        "latency: {} changes per backend, {BASE} members, load average {} at start",
        args.changes,
        load_average()
    );
    let mut rows = Vec::new();
    type Run = fn(&tokio::runtime::Runtime, usize) -> ResultRow;
    let runs: [(&str, Run); 4] = [
        ("memory", in_memory),
        ("consul", consul),
        ("etcd", etcd),
        ("k8s", kube),
    ];
    for (name, run) in runs {
        if !wanted(name) {
            continue;
        }
        let started = Instant::now();
        let r = run(&rt, args.changes);
        println!(
            "latency: {name}: {} · floor {} · {} · {} (took {:.1} s, load {})",
            r.value,
            r.baseline,
            r.ratio,
            r.verdict,
            started.elapsed().as_secs_f64(),
            load_average()
        );
        rows.push(r);
    }
    for r in &rows {
        r.print();
    }
}
