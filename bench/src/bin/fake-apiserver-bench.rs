//! Throughput, watch fan-out and memory of the fake API server, on ~1 KB ConfigMaps (ten ~100-byte
//! data values, three labels, two annotations):
//!
//! - creates/s, patches/s (merge) and gets/s on the core directly and through `kube::Client`, with 10
//!   watch subscriptions attached and draining;
//! - watch fan-out: events/s delivered to 100 subscriptions on the core (no decoding);
//! - memory of the store for 10k ConfigMaps against their raw JSON size, and of the watch history.
//!
//! `cargo run --release -p kopf-bench --bin fake-apiserver-bench [N]` (N objects, default 10000).

use std::alloc::System;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use fake_apiserver::{FakeApiServer, PatchType, Request, Response, Verb, WatchStream};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const WATCHERS: usize = 10;
const FANOUT_WATCHERS: usize = 100;

fn configmap(i: usize) -> Value {
    let data: serde_json::Map<String, Value> =
        (0..10).map(|k| (format!("key-{k}"), Value::String(format!("{i:08}-{}", "x".repeat(91))))).collect();
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": format!("cm-{i:06}"),
            "namespace": "default",
            "labels": {"app": "bench", "tier": "backend", "shard": format!("s{}", i % 16)},
            "annotations": {"example.com/owner": "benchmarks", "example.com/revision": format!("{i}")},
        },
        "data": data,
    })
}

fn create(i: usize) -> Request {
    Request::new(Verb::Create, "", "v1", "configmaps").namespace("default").body(configmap(i))
}

fn patch(i: usize) -> Request {
    Request::new(Verb::Patch, "", "v1", "configmaps")
        .namespace("default")
        .name(format!("cm-{i:06}"))
        .patch_type(PatchType::Merge)
        .body(json!({"data": {"key-0": format!("patched-{i}")}}))
}

fn get(i: usize) -> Request {
    Request::new(Verb::Get, "", "v1", "configmaps").namespace("default").name(format!("cm-{i:06}"))
}

async fn open_watch(server: &FakeApiServer) -> WatchStream {
    let mut req = Request::new(Verb::Watch, "", "v1", "configmaps").namespace("default");
    req.params.resource_version = Some(server.cluster().resource_version().to_string());
    match server.cluster().handle(req).await {
        Ok(Response::Watch(stream)) => stream,
        other => panic!("a watch was expected: {other:?}"),
    }
}

/// Opens `n` watches and drains each in its own task, counting events.
async fn draining_watchers(server: &FakeApiServer, n: usize) -> Arc<AtomicUsize> {
    let delivered = Arc::new(AtomicUsize::new(0));
    for _ in 0..n {
        let mut stream = open_watch(server).await;
        let delivered = delivered.clone();
        tokio::spawn(async move {
            while stream.next().await.is_some() {
                delivered.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    delivered
}

async fn wait_for(counter: &AtomicUsize, target: usize) {
    while counter.load(Ordering::Relaxed) < target {
        tokio::task::yield_now().await;
    }
}

fn rate(n: usize, started: Instant) -> String {
    let secs = started.elapsed().as_secs_f64();
    format!("{:>10.0}/s  ({n} in {:.1} ms)", n as f64 / secs, secs * 1000.0)
}

/// Runs `n` requests built by `build` through the core, in batches of 64 built just before they are
/// sent (so the input is warm in cache, as a freshly decoded request body is) and followed by a
/// yield so the watchers drain; only the sending and the yields are timed.
async fn timed(server: &FakeApiServer, n: usize, build: impl Fn(usize) -> Request) -> std::time::Duration {
    let cluster = server.cluster();
    let mut spent = std::time::Duration::ZERO;
    let mut i = 0;
    while i < n {
        let batch: Vec<Request> = (i..(i + 64).min(n)).map(&build).collect();
        i += batch.len();
        let started = Instant::now();
        for req in batch {
            cluster.handle(req).await.expect("the request succeeds");
        }
        tokio::task::yield_now().await;
        spent += started.elapsed();
    }
    spent
}

fn per_second(n: usize, spent: std::time::Duration) -> String {
    format!("{:>10.0}/s  ({n} in {:.1} ms)", n as f64 / spent.as_secs_f64(), spent.as_secs_f64() * 1000.0)
}

async fn core_throughput(n: usize, watchers: usize) {
    let server = FakeApiServer::new();
    let delivered = draining_watchers(&server, watchers).await;

    let mut spent = timed(&server, n, create).await;
    let started = Instant::now();
    wait_for(&delivered, n * watchers).await;
    spent += started.elapsed();
    println!("  core creates  {}  ({watchers} watchers attached and draining)", per_second(n, spent));

    let mut spent = timed(&server, n, patch).await;
    let started = Instant::now();
    wait_for(&delivered, 2 * n * watchers).await;
    spent += started.elapsed();
    println!("  core patches  {}  (merge patches, {watchers} watchers)", per_second(n, spent));

    let spent = timed(&server, n, get).await;
    println!("  core gets     {}", per_second(n, spent));
}

async fn client_throughput(n: usize, watchers: usize) {
    let server = FakeApiServer::new();
    let delivered = draining_watchers(&server, watchers).await;
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let objects: Vec<ConfigMap> =
        (0..n).map(|i| serde_json::from_value(configmap(i)).expect("a ConfigMap")).collect();

    let started = Instant::now();
    for cm in &objects {
        api.create(&PostParams::default(), cm).await.expect("create");
    }
    wait_for(&delivered, n * watchers).await;
    println!("  kube creates  {}  ({watchers} watchers attached and draining)", rate(n, started));

    let started = Instant::now();
    for i in 0..n {
        let body = Patch::Merge(json!({"data": {"key-0": format!("patched-{i}")}}));
        api.patch(&format!("cm-{i:06}"), &PatchParams::default(), &body).await.expect("patch");
    }
    wait_for(&delivered, 2 * n * watchers).await;
    println!("  kube patches  {}  (merge patches, {watchers} watchers)", rate(n, started));

    let started = Instant::now();
    for i in 0..n {
        api.get(&format!("cm-{i:06}")).await.expect("get");
    }
    println!("  kube gets     {}", rate(n, started));
}

async fn fanout(n: usize, journal: bool) {
    let server = FakeApiServer::builder().journal(if journal { 100_000 } else { 0 }).build();
    let mut streams = Vec::new();
    for _ in 0..FANOUT_WATCHERS {
        streams.push(open_watch(&server).await);
    }
    for req in (0..n).map(create) {
        server.cluster().handle(req).await.expect("create");
    }
    let started = Instant::now();
    let tasks: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            tokio::spawn(async move {
                let mut got = 0usize;
                while got < n && stream.next().await.is_some() {
                    got += 1;
                }
                got
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.expect("a watcher task");
    }
    let label = if journal { "journal on " } else { "journal off" };
    println!("  fan-out       {}  ({FANOUT_WATCHERS} watchers × {n} events, {label})", rate(total, started));
}

async fn memory(n: usize) {
    // Requests are built inside the measured region and freed there too, so only what the server
    // keeps shows up as net allocation.
    let server = FakeApiServer::builder().journal(0).history(1).build();
    let region = Region::new(GLOBAL);
    for i in 0..n {
        server.cluster().handle(create(i)).await.expect("create");
    }
    let change = region.change();
    let store = net(&change);
    let raw: usize = server.cluster().objects("", "configmaps").iter().map(|o| o.json().len()).sum();
    println!(
        "  store         {:>10.2} MB for {n} ConfigMaps, raw JSON {:.2} MB: {:.2}× (goal ≤ 2×)",
        store as f64 / 1e6,
        raw as f64 / 1e6,
        store as f64 / raw as f64
    );

    // The same writes with the default history: the extra is the history's own cost; then one patch
    // per object, so the history holds the old version of each.
    let server = FakeApiServer::builder().journal(0).build();
    let region = Region::new(GLOBAL);
    for i in 0..n {
        server.cluster().handle(create(i)).await.expect("create");
    }
    let change = region.change();
    let with_history = net(&change);
    println!(
        "  history       {:>10.2} MB for {} creates ({:.0} bytes per change; objects are shared with the store)",
        with_history.saturating_sub(store) as f64 / 1e6,
        server.cluster().history_len(),
        with_history.saturating_sub(store) as f64 / n as f64
    );
    let region = Region::new(GLOBAL);
    for i in 0..n {
        server.cluster().handle(patch(i)).await.expect("patch");
    }
    let change = region.change();
    let grown = net(&change);
    println!(
        "  history       {:>10.2} MB more after {n} patches (it keeps every replaced version, {} changes)",
        grown as f64 / 1e6,
        server.cluster().history_len()
    );
}

/// Bytes allocated and not freed within a region (reallocations counted as the growth they are).
fn net(stats: &stats_alloc::Stats) -> usize {
    (stats.bytes_allocated + stats.bytes_reallocated.max(0) as usize).saturating_sub(stats.bytes_deallocated)
}

fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(10_000);
    if cfg!(debug_assertions) {
        println!("warning: a debug build; run with --release for meaningful figures");
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        println!("fake-apiserver, {n} ConfigMaps of ~1 KB, one current-thread runtime:");
        println!("throughput (goals: ≥ 100k writes/s on the core, ≥ 65k creates/s through kube::Client)");
        for watchers in [0, WATCHERS] {
            core_throughput(n, watchers).await;
        }
        for watchers in [0, WATCHERS] {
            client_throughput(n, watchers).await;
        }
        println!("watch fan-out (goal: ≥ 1M events/s)");
        fanout(n, true).await;
        fanout(n, false).await;
        println!("memory");
        memory(n).await;
    });
    Ok(())
}
