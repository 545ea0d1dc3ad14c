//! Random raw HTTP requests against the front: methods, paths made of real segments and junk,
//! query strings, headers and bodies. Whatever comes in, the server answers (never a dropped
//! connection), every non-2xx answer is a JSON `Status` whose `code` is the HTTP status, and the
//! server still answers `/healthz` afterwards.
//!
//! The same requests also go straight into the tower Service (no sockets), fast enough for a long
//! run: `FUZZ_CASES=10000000 cargo test --release -p fake-apiserver --test it
//! http_fuzz::random_requests_to_the_service -- --nocapture` prints the inputs tried and the
//! panics (`FUZZ_THREADS`, default 2, share them).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use fake_apiserver::{FakeApiServer, ServeOptions};
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
struct RawRequest {
    method: String,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

fn junk() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9._~-]{0,12}",
        "%[0-9A-F]{2}",
        Just("..".to_owned()),
        Just("%2F".to_owned()),
        Just("%00".to_owned()),
        Just(String::new()),
    ]
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "api", "apis", "v1", "v2", "v3", "namespaces", "default", "kube-system", "configmaps", "pods",
            "secrets", "apps", "deployments", "status", "scale", "finalize", "healthz", "readyz", "livez",
            "version", "openapi", "apiextensions.k8s.io", "customresourcedefinitions", "kopf.dev",
            "events.k8s.io", "events", "leases", "coordination.k8s.io", "cm-1", "x",
        ])
        .prop_map(str::to_owned),
        1 => junk(),
    ]
}

fn query() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        4 => prop::sample::select(vec![
            "watch", "limit", "continue", "resourceVersion", "resourceVersionMatch", "timeoutSeconds",
            "labelSelector", "fieldSelector", "allowWatchBookmarks", "sendInitialEvents", "dryRun",
            "fieldManager", "force", "propagationPolicy", "gracePeriodSeconds", "orphanDependents",
            "fieldValidation", "shardSelector", "pretty",
        ])
        .prop_map(str::to_owned),
        1 => junk(),
    ];
    let value = prop_oneof![
        prop::sample::select(vec![
            "true",
            "false",
            "0",
            "1",
            "-1",
            "abc",
            "All",
            "99999999999999999999",
            "a%3Db",
            "a+in+(x,y)",
            "metadata.name%3Dcm-1",
            "Orphan",
            "Foreground",
            "NotOlderThan",
            "Strict",
            "",
        ])
        .prop_map(str::to_owned),
        junk(),
    ];
    prop::collection::vec((key, value), 0..4)
        .prop_map(|pairs| pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&"))
}

fn headers() -> impl Strategy<Value = Vec<(&'static str, String)>> {
    let content_type = prop::sample::select(vec![
        "application/json",
        "application/merge-patch+json",
        "application/json-patch+json",
        "application/strategic-merge-patch+json",
        "application/apply-patch+yaml",
        "application/yaml",
        "text/plain",
        "application/vnd.kubernetes.protobuf",
        "nonsense",
    ]);
    let accept = prop::sample::select(vec![
        "application/json",
        "application/json;as=Table;v=v1;g=meta.k8s.io",
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
        "application/yaml",
        "application/vnd.kubernetes.protobuf",
        "*/*",
        "text/html",
    ]);
    (
        prop::option::of(content_type),
        prop::option::of(accept),
        prop::option::of("[ -~]{0,20}"),
        prop::option::of(prop::sample::select(vec!["Bearer x", "Basic eDp5", "junk"])),
    )
        .prop_map(|(content_type, accept, agent, authorization)| {
            let mut headers = Vec::new();
            headers.extend(content_type.map(|v| ("content-type", v.to_owned())));
            headers.extend(accept.map(|v| ("accept", v.to_owned())));
            headers.extend(agent.map(|v| ("user-agent", v.trim().to_owned())));
            headers.extend(authorization.map(|v| ("authorization", v.to_owned())));
            headers
        })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    let object = ("[a-z0-9-]{0,10}", prop::sample::select(vec!["v1", "apps/v1", "", "x/y/z"]), any::<bool>())
        .prop_map(|(name, api_version, with_data)| {
            let mut object =
                json!({"apiVersion": api_version, "kind": "ConfigMap", "metadata": {"name": name}});
            if with_data {
                object["data"] = json!({"k": "v", "n": 1});
            }
            object.to_string().into_bytes()
        });
    let patch_op = (
        prop::sample::select(vec!["add", "remove", "replace", "move", "copy", "test", "junk"]),
        prop::sample::select(vec![
            "/data/x",
            "/metadata/labels/a",
            "/spec/field",
            "/",
            "",
            "/a~1b",
            "/x/-",
            "~",
        ]),
        prop::option::of(prop_oneof![
            Just(json!("1")),
            Just(json!(null)),
            Just(json!({"a": [1]})),
            Just(json!(-0.5))
        ]),
    )
        .prop_map(|(op, path, value)| {
            let mut op = json!({"op": op, "path": path, "from": "/data"});
            if let Some(value) = value {
                op["value"] = value;
            }
            op
        });
    let json_patch =
        prop::collection::vec(patch_op, 0..4).prop_map(|ops| Value::Array(ops).to_string().into_bytes());
    let custom =
        ("[a-z0-9-]{0,6}", prop::option::of(".{0,6}"), any::<bool>()).prop_map(|(name, field, status)| {
            let mut object =
                json!({"apiVersion": "kopf.dev/v1", "kind": "KopfExample", "metadata": {"name": name}});
            if let Some(field) = field {
                object["spec"] = json!({"field": field, "items": [field]});
            }
            if status {
                object["status"] = json!({"x": {"y": 1}});
            }
            object.to_string().into_bytes()
        });
    let yaml = prop::sample::select(vec![
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\ndata:\n  k: v\n",
        "a: [1, {b: *x}]\n",
        "- - - -\n",
        "metadata: {name: x, managedFields: [{manager: m, operation: Apply, fieldsV1: {f:data: {}}}]}\n",
    ])
    .prop_map(|y| y.as_bytes().to_vec());
    prop_oneof![
        Just(Vec::new()),
        object,
        custom,
        json_patch,
        yaml,
        Just(br#"{"metadata": {"labels": {"a": "b"}}}"#.to_vec()),
        Just(br#"{"metadata": {"resourceVersion": "99999999999999999999", "finalizers": ["x"]}}"#.to_vec()),
        Just(
            br#"{"kind": "DeleteOptions", "propagationPolicy": "Nope", "preconditions": {"uid": 1}}"#
                .to_vec()
        ),
        prop::collection::vec(any::<u8>(), 0..128),
    ]
}

fn raw_request() -> impl Strategy<Value = RawRequest> {
    let method = prop_oneof![
        6 => prop::sample::select(vec!["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
            .prop_map(str::to_owned),
        1 => "[A-Z]{1,8}",
    ];
    (method, prop::collection::vec(segment(), 0..7), prop::option::of(query()), headers(), body()).prop_map(
        |(method, segments, query, headers, body)| {
            let mut path = format!("/{}", segments.join("/"));
            if let Some(query) = query {
                path.push('?');
                path.push_str(&query);
            }
            RawRequest { method, path, headers, body }
        },
    )
}

/// Builds the request as a client would send it; `None` when it is not a valid HTTP request at
/// all (the wire test covers what hyper makes of those).
fn build(raw: &RawRequest) -> Option<Request<Full<Bytes>>> {
    let mut builder =
        Request::builder().method(Method::from_bytes(raw.method.as_bytes()).ok()?).uri(raw.path.as_str());
    for (name, value) in &raw.headers {
        builder = builder.header(*name, value.as_str());
    }
    builder.body(Full::new(Bytes::from(raw.body.clone()))).ok()
}

/// Every non-2xx answer is a JSON `Status` whose `code` is the HTTP status.
async fn check_answer(
    raw: &RawRequest,
    response: http::Response<fake_apiserver::Body>,
) -> Result<(), TestCaseError> {
    let code = response.status().as_u16();
    if response.status().is_success() || raw.method == "HEAD" {
        return Ok(()); // a watch streams on; dropping the body ends it
    }
    let bytes =
        response.into_body().collect().await.map_err(|e| TestCaseError::fail(format!("{e}")))?.to_bytes();
    let status: Value = serde_json::from_slice(&bytes).map_err(|e| {
        TestCaseError::fail(format!(
            "{code} with a body that is not JSON ({e}): {:?}",
            String::from_utf8_lossy(&bytes)
        ))
    })?;
    prop_assert_eq!(&status["kind"], "Status", "{} answered {}", raw.path, status);
    prop_assert_eq!(status["code"].as_u64(), Some(u64::from(code)), "{}", status);
    Ok(())
}

/// The random requests straight into the tower Service of a cluster with a CRD installed, on
/// `FUZZ_THREADS` threads: never a panic (proptest fails a case that panics), every error a Status.
#[test]
fn random_requests_to_the_service_never_panic_and_every_error_is_a_status() {
    use tower::ServiceExt as _;
    let cases: u64 = std::env::var("FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000);
    let threads: u64 = std::env::var("FUZZ_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(2).max(1);
    let tried = std::sync::atomic::AtomicU64::new(0);
    let started = std::time::Instant::now();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let tried = &tried;
                scope.spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                    let server = FakeApiServer::builder().seed(t).journal(0).build();
                    runtime.block_on(async {
                        let client = server.client();
                        crate::common::install_crd(&client).await;
                    });
                    let mut seed = [0u8; 32];
                    seed[..8].copy_from_slice(&(t + 1).to_le_bytes());
                    let share = cases / threads + u64::from(t < cases % threads);
                    let config = Config {
                        cases: u32::try_from(share).unwrap_or(u32::MAX),
                        failure_persistence: None,
                        ..Config::default()
                    };
                    let rng = proptest::test_runner::TestRng::from_seed(
                        proptest::test_runner::RngAlgorithm::ChaCha,
                        &seed,
                    );
                    let mut runner = TestRunner::new_with_rng(config, rng);
                    runner.run(&raw_request(), |raw| {
                        tried.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(request) = build(&raw) else { return Ok(()) };
                        runtime.block_on(async {
                            let response =
                                server.service().oneshot(request).await.unwrap_or_else(|e| match e {});
                            check_answer(&raw, response).await
                        })
                    })
                })
            })
            .collect();
        for handle in handles {
            match handle.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => panic!("{e}"),
                Err(_) => panic!("a fuzzing thread panicked outside a case"),
            }
        }
    });
    eprintln!(
        "fake-apiserver service: {} requests, 0 panics, {:.1} s",
        tried.into_inner(),
        started.elapsed().as_secs_f64()
    );
}

async fn send(
    addr: SocketAddr,
    request: Request<Full<Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(connection);
    match tokio::time::timeout(WAIT, sender.send_request(request)).await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(e)) => Err(format!("no answer: {e}")),
        Err(_) => Err("no answer in time".to_owned()),
    }
}

async fn check(addr: SocketAddr, raw: RawRequest) -> Result<(), TestCaseError> {
    let mut builder = Request::builder()
        .method(Method::from_bytes(raw.method.as_bytes()).expect("a token"))
        .uri(raw.path.as_str());
    for (name, value) in &raw.headers {
        builder = builder.header(*name, value.as_str());
    }
    let request = builder.body(Full::new(Bytes::from(raw.body))).expect("a valid request");
    let response = send(addr, request).await.map_err(TestCaseError::fail)?;
    let code = response.status().as_u16();
    if !response.status().is_success() && raw.method != "HEAD" {
        let bytes = tokio::time::timeout(WAIT, response.into_body().collect())
            .await
            .map_err(|_| TestCaseError::fail("the error body in time"))?
            .map_err(|e| TestCaseError::fail(format!("the error body: {e}")))?
            .to_bytes();
        let status: Value = serde_json::from_slice(&bytes).map_err(|e| {
            TestCaseError::fail(format!(
                "{code} with a body that is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&bytes)
            ))
        })?;
        prop_assert_eq!(&status["kind"], "Status", "{} answered {}", raw.path, status);
        prop_assert_eq!(status["code"].as_u64(), Some(u64::from(code)), "{}", status);
    }
    let health = send(addr, Request::get("/healthz").body(Full::default()).expect("a request"))
        .await
        .map_err(TestCaseError::fail)?;
    prop_assert_eq!(health.status().as_u16(), 200);
    Ok(())
}

#[test]
fn random_raw_requests_always_get_an_answer_and_every_error_is_a_status() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (server, front) = runtime.block_on(async {
        let server = FakeApiServer::builder().seed(7).build();
        let front = server.serve(ServeOptions::default()).await.expect("the front starts");
        (server, front)
    });
    let addr = front.local_addr();
    let mut runner = TestRunner::new(Config { cases: 200, failure_persistence: None, ..Config::default() });
    let result = runner.run(&raw_request(), |raw| runtime.block_on(check(addr, raw)));
    if let Err(e) = result {
        panic!("{e}");
    }
    let served = server.cluster().journal(|j| j.http_requests().count());
    assert!(served >= 400, "every request reached the front ({served})");
    runtime.block_on(front.shutdown());
}
