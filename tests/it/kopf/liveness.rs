//! The liveness endpoint and the metrics over real HTTP (Kopf's `--liveness`): a Rust client reads
//! `/healthz` (the probe handlers' results, cached for 10 s) and `/metrics` (Prometheus' text
//! format). Real sockets and real time — not a KopfRunner test: under a paused clock a socket's
//! peer does not hold virtual time (reference/virtual-time.md, rule 5). Conditions are polled with
//! a deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use fake_apiserver::FakeApiServer;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kopf::{Clock, Context, HandlerError, KubeApiClient, Operator, RunOptions};
use kube::CustomResourceExt;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{KopfExample, example};

const WAIT: Duration = Duration::from_secs(30);

/// One HTTP/1.1 GET over a fresh connection: (status code, content type, body).
async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("the endpoint accepts");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut raw)).await.expect("an answer in time").unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-type: ").map(str::to_owned))
        .unwrap_or_default();
    (status, content_type, body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_liveness_endpoint_serves_cached_probes_and_the_metrics_over_http() {
    let server = FakeApiServer::builder().base_time(Clock::wall().now()).build();
    let crds: Api<CustomResourceDefinition> = Api::all(server.client());
    crds.create(&PostParams::default(), &KopfExample::crd()).await.unwrap();

    let probes = Arc::new(AtomicU32::new(0));
    let counted = probes.clone();
    let operator = Operator::new()
        .on_probe(move |_ctx: Context| {
            let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
            async move { Ok::<_, HandlerError>(json!({"probed": n})) }
        })
        .id("probe_fn")
        .on_create(|_ex: Arc<KopfExample>, _ctx: Context| async move { Ok::<_, HandlerError>(()) })
        .id("create_fn")
        .on_create(|_ex: Arc<KopfExample>, _ctx: Context| async move {
            Err::<(), _>(HandlerError::permanent("never"))
        })
        .id("broken_fn")
        .settings(|s| s.liveness.endpoint = Some("http://127.0.0.1:0/healthz".into()));
    let mut running = operator
        .spawn(Arc::new(KubeApiClient::new(server.client())), RunOptions::default())
        .expect("a valid operator");
    tokio::time::timeout(WAIT, running.ready()).await.expect("the operator starts");
    let addr = running.liveness_addr().expect("the endpoint listens");

    // The probes' results, as Kopf's endpoint answers them; the second read is the cached one.
    let (status, content_type, body) = get(addr, "/healthz").await;
    assert_eq!((status, content_type.as_str()), (200, "application/json; charset=utf-8"));
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), json!({"probe_fn": {"probed": 1}}));
    let (_, _, body) = get(addr, "/healthz").await;
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), json!({"probe_fn": {"probed": 1}}));
    assert_eq!(probes.load(Ordering::SeqCst), 1, "cached for 10 s");
    assert_eq!(get(addr, "/elsewhere").await.0, 404);

    // Handler runs, failures and durations; a dropped watch is a restart.
    let examples: Api<KopfExample> = Api::namespaced(server.client(), "default");
    examples.create(&PostParams::default(), &example("ex1", "a")).await.unwrap();
    let expected = [
        r#"kopf_handler_runs_total{handler="create_fn",resource="kopfexamples.kopf.dev",outcome="success"} 1"#,
        r#"kopf_handler_runs_total{handler="broken_fn",resource="kopfexamples.kopf.dev",outcome="permanent"} 1"#,
        r#"kopf_handler_failures_total{handler="broken_fn",resource="kopfexamples.kopf.dev"} 1"#,
        r#"kopf_handler_failures_total{handler="create_fn",resource="kopfexamples.kopf.dev"} 0"#,
        r#"kopf_handler_duration_seconds_count{handler="create_fn",resource="kopfexamples.kopf.dev"} 1"#,
        r#"kopf_handler_duration_seconds_bucket{handler="create_fn",resource="kopfexamples.kopf.dev",le="+Inf"} 1"#,
        "kopf_paused 0",
    ];
    let started = Instant::now();
    let mut dropped = false;
    let metrics = loop {
        let (status, content_type, text) = get(addr, "/metrics").await;
        assert_eq!((status, content_type.as_str()), (200, "text/plain; version=0.0.4; charset=utf-8"));
        if !dropped && text.contains(expected[1]) {
            server.cluster().drop_watches();
            dropped = true;
        }
        let restarted = text
            .lines()
            .find_map(|l| l.strip_prefix(r#"kopf_watch_restarts_total{resource="kopfexamples.kopf.dev"} "#))
            .is_some_and(|n| n.parse::<u64>().unwrap() >= 1);
        if restarted && expected.iter().all(|line| text.lines().any(|l| l == *line)) {
            break text;
        }
        assert!(started.elapsed() < WAIT, "the metrics did not show {expected:#?}:\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for gauge in [
        "kopf_queued_events",
        "kopf_objects_processing",
        "kopf_handlers_running",
        "kopf_watches_disconnected",
    ] {
        assert!(metrics.contains(&format!("# TYPE {gauge} gauge\n{gauge} ")), "{gauge}:\n{metrics}");
    }
    let in_process = running.metrics();
    assert!(expected.iter().all(|line| in_process.lines().any(|l| l == *line)), "the same in process");
    running.stop();
    running.join().await.expect("the operator stops cleanly");
}
