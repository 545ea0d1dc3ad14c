//! The fake API server over HTTP: requests/s of its HTTP front and the start-up time of the
//! `fake-apiserver serve` binary.
//!
//! - gets/s, creates/s and merge-patches/s of ~1 KB ConfigMaps, from 8 concurrent clients on
//!   keep-alive HTTP/1.1 connections (hyper's client connection, so the client costs little), and
//!   the same through one `kube::Client` shared by 8 tasks; server and clients share one
//!   multi-thread runtime on 127.0.0.1;
//! - the time from spawning `fake-apiserver serve --bare --port 0` (the plain API server) to its URL on stdout and to the first
//!   200 from `/readyz`.
//!
//! Each rate is also given per second of this process's CPU time (clients, server and core
//! together, from `/proc/self/stat`): other load on the machine skews the wall-clock rates, not
//! those. For comparison the run ends with the core alone (`Cluster::handle`, no HTTP).
//! `HTTP_BENCH_ONLY=get` (or `health`, `create`, `patch`) runs one kind alone, for profiling.
//!
//! `cargo build --release -p fake-apiserver -p kopf-bench && target/release/http-bench [N]`
//! (N requests of each kind, default 40000). The binary is looked up next to this one, or at
//! `$FAKE_APISERVER_BIN`.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fake_apiserver::{FakeApiServer, ServeOptions};
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio::net::TcpStream;

const CLIENTS: usize = 8;
const STARTS: usize = 20;
const COLLECTION: &str = "/api/v1/namespaces/default/configmaps";

fn configmap(i: usize) -> Value {
    let data: serde_json::Map<String, Value> =
        (0..8).map(|k| (format!("key-{k}"), Value::String(format!("{i:08}-{}", "x".repeat(91))))).collect();
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": format!("cm-{i:06}"),
            "namespace": "default",
            "labels": {"app": "bench", "tier": "backend", "shard": format!("s{}", i % 16)},
            "annotations": {"example.com/owner": "benchmarks"},
        },
        "data": data,
    })
}

/// A kind of request, built for object `i`.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// `/healthz`: the floor of the HTTP path, no API work.
    Health,
    Create,
    Get,
    Patch,
}

fn request(kind: Kind, i: usize) -> Request<Full<Bytes>> {
    let (method, uri, content_type, body) = match kind {
        Kind::Health => (Method::GET, "/healthz".to_owned(), "text/plain", Bytes::new()),
        Kind::Create => {
            (Method::POST, COLLECTION.to_owned(), "application/json", Bytes::from(configmap(i).to_string()))
        }
        Kind::Get => (Method::GET, format!("{COLLECTION}/cm-{i:06}"), "application/json", Bytes::new()),
        Kind::Patch => (
            Method::PATCH,
            format!("{COLLECTION}/cm-{i:06}"),
            "application/merge-patch+json",
            Bytes::from(json!({"data": {"key-0": format!("patched-{i}")}}).to_string()),
        ),
    };
    Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "127.0.0.1")
        .header("content-type", content_type)
        .body(Full::new(body))
        .expect("a valid request")
}

/// One keep-alive connection sending its requests one after another.
async fn client(addr: SocketAddr, requests: Vec<Request<Full<Bytes>>>) -> anyhow::Result<()> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    for request in requests {
        let what = format!("{} {}", request.method(), request.uri());
        let response = sender.send_request(request).await?;
        let status = response.status();
        response.into_body().collect().await?;
        anyhow::ensure!(status.is_success(), "{what}: {status}");
    }
    Ok(())
}

/// CPU time of this process so far (user + system, all threads), from `/proc/self/stat`.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at "state"; utime and stime
    // are fields 14 and 15 of the whole line, in clock ticks of 1/100 s.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Requests per second of wall time, and per second of this process's CPU time (clients and
/// server together), which other load on the machine does not skew.
#[derive(Debug, Clone, Copy)]
struct Rate {
    wall: f64,
    cpu: Option<f64>,
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:>8.0}/s", self.wall)?;
        match self.cpu {
            Some(cpu) => write!(f, "  ({cpu:>6.0} per CPU-second)"),
            None => Ok(()),
        }
    }
}

async fn measured<F: std::future::Future<Output = anyhow::Result<()>>>(
    n: usize,
    run: F,
) -> anyhow::Result<Rate> {
    let (cpu_before, started) = (cpu_time(), Instant::now());
    run.await?;
    let wall = n as f64 / started.elapsed().as_secs_f64();
    let cpu =
        cpu_before.zip(cpu_time()).map(|(before, after)| n as f64 / (after - before).as_secs_f64().max(0.01));
    Ok(Rate { wall, cpu })
}

/// `n` requests from [`CLIENTS`] connections; client `c` sends those of objects `i ≡ c (mod
/// CLIENTS)`, built before the clock starts.
async fn hyper_clients(addr: SocketAddr, kind: Kind, n: usize) -> anyhow::Result<Rate> {
    let mut batches: Vec<Vec<_>> =
        (0..CLIENTS).map(|c| (c..n).step_by(CLIENTS).map(|i| request(kind, i)).collect()).collect();
    measured(n, async {
        let tasks: Vec<_> = batches.drain(..).map(|batch| tokio::spawn(client(addr, batch))).collect();
        for task in tasks {
            task.await??;
        }
        Ok(())
    })
    .await
}

async fn kube_clients(api: &Api<ConfigMap>, kind: Kind, n: usize, offset: usize) -> anyhow::Result<Rate> {
    let objects: Arc<Vec<ConfigMap>> = Arc::new(
        (offset..offset + n).map(|i| serde_json::from_value(configmap(i)).expect("a ConfigMap")).collect(),
    );
    measured(n, async {
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (api, objects) = (api.clone(), objects.clone());
                tokio::spawn(async move {
                    for k in (c..n).step_by(CLIENTS) {
                        let name = format!("cm-{:06}", offset + k);
                        match kind {
                            Kind::Create => {
                                api.create(&PostParams::default(), &objects[k]).await.map(drop)?
                            }
                            Kind::Get | Kind::Health => api.get(&name).await.map(drop)?,
                            Kind::Patch => {
                                let patch = Patch::Merge(json!({"data": {"key-0": format!("patched-{k}")}}));
                                api.patch(&name, &PatchParams::default(), &patch).await.map(drop)?
                            }
                        }
                    }
                    Ok::<_, kube::Error>(())
                })
            })
            .collect();
        for task in tasks {
            task.await??;
        }
        Ok(())
    })
    .await
}

/// The same operations on the core directly, one task, no HTTP or JSON decoding: the bound the
/// HTTP figures sit under.
async fn core_alone(n: usize) -> anyhow::Result<()> {
    use fake_apiserver::{PatchType, Request as CoreRequest, Verb};
    let server = FakeApiServer::new();
    let cluster = server.cluster();
    let base = || CoreRequest::new(Verb::Get, "", "v1", "configmaps").namespace("default");
    let creates: Vec<_> = (0..n)
        .map(|i| {
            CoreRequest::new(Verb::Create, "", "v1", "configmaps").namespace("default").body(configmap(i))
        })
        .collect();
    let gets: Vec<_> = (0..n).map(|i| base().name(format!("cm-{i:06}"))).collect();
    let patches: Vec<_> = (0..n)
        .map(|i| {
            CoreRequest::new(Verb::Patch, "", "v1", "configmaps")
                .namespace("default")
                .name(format!("cm-{i:06}"))
                .patch_type(PatchType::Merge)
                .body(json!({"data": {"key-0": format!("patched-{i}")}}))
        })
        .collect();
    println!("  the core alone (Cluster::handle, one task, requests built beforehand):");
    for (label, requests) in [("create", creates), ("get", gets), ("patch", patches)] {
        let rate = measured(n, async {
            for request in requests {
                cluster.handle(request).await.map_err(|e| anyhow::anyhow!("{label}: {e}"))?;
            }
            Ok(())
        })
        .await?;
        println!("    {label:<8} {rate}");
    }
    Ok(())
}

/// For profiling one kind alone (`HTTP_BENCH_ONLY=get perf record …`): seeds the objects through
/// the core, then runs only that kind over HTTP, three times.
async fn only(kind: &str, n: usize) -> anyhow::Result<()> {
    let kind = match kind {
        "health" => Kind::Health,
        "create" => Kind::Create,
        "get" => Kind::Get,
        "patch" => Kind::Patch,
        other => anyhow::bail!("HTTP_BENCH_ONLY={other}: expected health, create, get or patch"),
    };
    let server = FakeApiServer::new();
    if !matches!(kind, Kind::Create) {
        for i in 0..n {
            let create = fake_apiserver::Request::new(fake_apiserver::Verb::Create, "", "v1", "configmaps")
                .namespace("default")
                .body(configmap(i));
            server.cluster().handle(create).await.map_err(|e| anyhow::anyhow!("seeding: {e}"))?;
        }
    }
    let front = server.serve(ServeOptions::default()).await?;
    for round in 0..3 {
        if matches!(kind, Kind::Create) && round > 0 {
            break; // the names are taken now
        }
        println!("    {kind:?} {}", hyper_clients(front.local_addr(), kind, n).await?);
    }
    front.shutdown().await;
    Ok(())
}

async fn throughput(n: usize) -> anyhow::Result<()> {
    let server = FakeApiServer::new();
    let front = server.serve(ServeOptions::default()).await?;
    let addr = front.local_addr();
    println!("  {CLIENTS} hyper connections (keep-alive, one request at a time each):");
    for (kind, goal) in
        [(Kind::Health, 0), (Kind::Create, 20_000), (Kind::Get, 30_000), (Kind::Patch, 20_000)]
    {
        let rate = hyper_clients(addr, kind, n).await?;
        let goal = if goal > 0 { format!("  goal ≥ {goal}/s") } else { String::new() };
        println!("    {:<8} {rate}{goal}", format!("{kind:?}").to_lowercase());
    }
    let mut config = kube::Config::new(front.url().parse()?);
    config.default_retry = false;
    let api: Api<ConfigMap> = Api::namespaced(kube::Client::try_from(config)?, "default");
    println!("  one kube::Client shared by {CLIENTS} tasks:");
    for kind in [Kind::Create, Kind::Get, Kind::Patch] {
        let rate = kube_clients(&api, kind, n, n).await?;
        println!("    {:<8} {rate}", format!("{kind:?}").to_lowercase());
    }
    let journaled = server.cluster().journal(|j| j.http_requests().count());
    println!("  ({journaled} HTTP requests in the journal, which was on throughout)");
    front.shutdown().await;
    Ok(())
}

fn binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("FAKE_APISERVER_BIN") {
        return Ok(PathBuf::from(path));
    }
    let path = std::env::current_exe()?.with_file_name("fake-apiserver");
    anyhow::ensure!(
        path.exists(),
        "{} not found: build it with `cargo build --release -p fake-apiserver`",
        path.display()
    );
    Ok(path)
}

/// A blocking GET of `/readyz`: whether it answered 200.
fn ready(addr: &str) -> bool {
    use std::io::{Read as _, Write as _};
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else { return false };
    let _ = stream.set_nodelay(true);
    if stream.write_all(b"GET /readyz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").is_err() {
        return false;
    }
    let mut answer = [0u8; 12];
    stream.read_exact(&mut answer).is_ok() && &answer == b"HTTP/1.1 200"
}

/// Spawns the binary and times its URL line and its first 200 from `/readyz`.
fn start_once(path: &PathBuf) -> anyhow::Result<(Duration, Duration)> {
    let started = Instant::now();
    let mut child =
        Command::new(path).args(["serve", "--bare", "--port", "0"]).stdout(Stdio::piped()).spawn()?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut url = String::new();
    BufReader::new(stdout).read_line(&mut url)?;
    let announced = started.elapsed();
    let addr = url.trim().trim_start_matches("http://").to_owned();
    let deadline = started + Duration::from_secs(10);
    while !ready(&addr) {
        anyhow::ensure!(Instant::now() < deadline, "not ready after 10 s");
    }
    let ready_after = started.elapsed();
    child.kill()?;
    child.wait()?;
    Ok((announced, ready_after))
}

fn startup() -> anyhow::Result<()> {
    let path = binary()?;
    let mut runs = Vec::new();
    for _ in 0..STARTS {
        runs.push(start_once(&path)?);
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut announced: Vec<f64> = runs.iter().map(|r| ms(r.0)).collect();
    let mut ready: Vec<f64> = runs.iter().map(|r| ms(r.1)).collect();
    announced.sort_by(f64::total_cmp);
    ready.sort_by(f64::total_cmp);
    println!(
        "  URL on stdout   median {:.2} ms  (min {:.2}, max {:.2})",
        announced[STARTS / 2],
        announced[0],
        announced[STARTS - 1]
    );
    println!(
        "  first /readyz   median {:.2} ms  (min {:.2}, max {:.2}; goal ≤ 5 ms)",
        ready[STARTS / 2],
        ready[0],
        ready[STARTS - 1]
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(40_000);
    if cfg!(debug_assertions) {
        println!("warning: a debug build; run with --release for meaningful figures");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "fake-apiserver over HTTP/1.1 on 127.0.0.1, {n} requests of each kind, ~1 KB ConfigMaps, {threads} cores:"
    );
    if let Ok(kind) = std::env::var("HTTP_BENCH_ONLY") {
        return runtime.block_on(only(&kind, n));
    }
    runtime.block_on(throughput(n))?;
    runtime.block_on(core_alone(n))?;
    println!("start-up of `fake-apiserver serve --bare --port 0` ({STARTS} runs, from spawn):");
    startup()?;
    Ok(())
}
