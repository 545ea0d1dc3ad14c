//! The HTTP(S) front on the wire: bad input of every kind gets a `Status` with the right code and
//! the server keeps serving; the token guards everything but the health checks; the body limit;
//! watches stream event by event and end cleanly at shutdown; the journal's wire records; HTTP/2.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use fake_apiserver::{FakeApiServer, ServeHandle, ServeOptions};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use kube::api::PostParams;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

/// Wall-clock bound on anything a test waits for over a socket.
const WAIT: Duration = Duration::from_secs(10);

async fn front(server: &FakeApiServer, options: ServeOptions) -> ServeHandle {
    server.serve(options).await.expect("the front starts")
}

/// One request on a fresh HTTP/1.1 connection.
async fn send(addr: SocketAddr, request: Request<Full<Bytes>>) -> http::Response<Incoming> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(connection);
    tokio::time::timeout(WAIT, sender.send_request(request))
        .await
        .expect("an answer in time")
        .expect("an answer, not a dropped connection")
}

fn request(method: Method, path: &str, content_type: &str, body: impl Into<Bytes>) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .body(Full::new(body.into()))
        .unwrap()
}

/// The status code and the body as JSON (Null when it is not JSON).
async fn answer(response: http::Response<Incoming>) -> (u16, Value) {
    let code = response.status().as_u16();
    let bytes = response.into_body().collect().await.expect("the whole body").to_bytes();
    (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn assert_status(code: u16, status: &Value, reason: &str) {
    assert_eq!(status["kind"], "Status", "{code}: {status}");
    assert_eq!(status["code"], code, "{status}");
    assert_eq!(status["reason"], reason, "{status}");
}

/// `/healthz` answers `ok`, proof that the server still serves.
async fn assert_healthy(addr: SocketAddr) {
    let response = send(addr, Request::get("/healthz").body(Full::default()).unwrap()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.into_body().collect().await.unwrap().to_bytes(), "ok");
}

/// Writes raw bytes, half-closes, and reads the whole answer.
async fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut answer)).await.expect("an answer in time").unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

#[tokio::test]
async fn a_body_cut_short_by_the_client_gets_a_400_status() {
    let server = server();
    let front = front(&server, ServeOptions::default()).await;
    let answer = raw(
        front.local_addr(),
        format!(
            "POST {CONFIGMAPS} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"metadata\""
        )
        .as_bytes(),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let body = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
    let status: Value = serde_json::from_str(body).expect("a JSON Status");
    assert_status(400, &status, "BadRequest");
    assert_healthy(front.local_addr()).await;
    assert!(configmaps(&server.client()).list(&Default::default()).await.unwrap().items.is_empty());
}

#[tokio::test]
async fn truncated_json_and_a_non_json_body_are_400_statuses() {
    let server = server();
    let front = front(&server, ServeOptions::default()).await;
    let addr = front.local_addr();
    for (content_type, body) in [
        ("application/json", r#"{"metadata": {"name": "a""#),
        ("application/json", "name=a"),
        ("application/json", "\u{0}\u{1}\u{2}"),
    ] {
        let (code, status) =
            answer(send(addr, request(Method::POST, CONFIGMAPS, content_type, body)).await).await;
        assert_eq!(code, 400, "{content_type} {body:?}: {status}");
        assert_status(code, &status, "BadRequest");
    }
    assert_healthy(addr).await;
}

/// What `kubectl create configmap` (client-go's typed clients, 1.32 and later) sends: a protobuf
/// body. The real server decodes protobuf for built-ins and answers a media type it has no decoder
/// for with 415; the fake decodes JSON and YAML only, so protobuf is such a type here.
#[tokio::test]
async fn a_create_body_in_a_media_type_other_than_json_or_yaml_is_a_415_status_naming_both() {
    let server = server();
    let front = front(&server, ServeOptions::default()).await;
    let addr = front.local_addr();
    let protobuf = b"k8s\x00\n\x0f\n\x02v1\x12\tConfigMap\x12\x05\n\x03\n\x01a".to_vec();
    for (content_type, body) in [
        ("application/vnd.kubernetes.protobuf", protobuf),
        ("text/plain", b"name=a".to_vec()),
        ("application/merge-patch+json", br#"{"metadata": {"name": "a"}}"#.to_vec()),
    ] {
        for method in [Method::POST, Method::PUT] {
            let path = if method == Method::PUT { format!("{CONFIGMAPS}/a") } else { CONFIGMAPS.to_owned() };
            let (code, status) =
                answer(send(addr, request(method.clone(), &path, content_type, body.clone())).await).await;
            assert_eq!(code, 415, "{method} {content_type}: {status}");
            assert_status(code, &status, "UnsupportedMediaType");
            assert_eq!(
                status["message"],
                "the body of the request was in an unknown format - accepted media types include: \
                 application/json, application/yaml"
            );
        }
    }
    assert!(configmaps(&server.client()).list(&Default::default()).await.unwrap().items.is_empty());
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  k: v\n";
    let no_type = r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "untyped"}}"#;
    for (content_type, body) in [("application/yaml", yaml), ("application/json; charset=utf-8", no_type)] {
        let (code, object) =
            answer(send(addr, request(Method::POST, CONFIGMAPS, content_type, body)).await).await;
        assert_eq!(code, 201, "{content_type}: {object}");
    }
    let untyped = Request::post(CONFIGMAPS)
        .body(Full::new(Bytes::from(no_type.replace("untyped", "no-content-type"))))
        .unwrap();
    let (code, object) = answer(send(addr, untyped).await).await;
    assert_eq!((code, &object["metadata"]["name"]), (201, &json!("no-content-type")), "no type means JSON");
    let names: Vec<String> = configmaps(&server.client())
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert_eq!(names, ["from-yaml", "no-content-type", "untyped"]);
}

#[tokio::test]
async fn a_patch_with_a_content_type_that_is_no_patch_type_is_a_415_status() {
    let server = server();
    configmaps(&server.client()).create(&PostParams::default(), &cm("a")).await.unwrap();
    let front = front(&server, ServeOptions::default()).await;
    for content_type in ["text/plain", "application/xml", ""] {
        let response = send(
            front.local_addr(),
            request(Method::PATCH, &format!("{CONFIGMAPS}/a"), content_type, r#"{"data": {"k": "v"}}"#),
        )
        .await;
        let (code, status) = answer(response).await;
        assert_eq!(code, 415, "{content_type:?}: {status}");
        assert_status(code, &status, "UnsupportedMediaType");
    }
    assert_healthy(front.local_addr()).await;
}

fn big_configmap(bytes: usize) -> String {
    json!({"metadata": {"name": "big"}, "data": {"k": "x".repeat(bytes)}}).to_string()
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413_status_whether_declared_or_streamed() {
    let server = server();
    let front = front(&server, ServeOptions::default().body_limit(1024)).await;
    let addr = front.local_addr();
    // Declared by Content-Length: refused before reading.
    let (code, status) =
        answer(send(addr, request(Method::POST, CONFIGMAPS, "application/json", big_configmap(4096))).await)
            .await;
    assert_eq!(code, 413);
    assert_status(code, &status, "RequestEntityTooLarge");
    assert_eq!(status["message"], "Request entity too large: limit is 1024");
    // Streamed without a length: refused once the limit is passed.
    let chunks = futures::stream::iter(
        big_configmap(4096)
            .into_bytes()
            .chunks(512)
            .map(|c| Ok(hyper::body::Frame::data(Bytes::from(c.to_vec()))))
            .collect::<Vec<Result<_, std::convert::Infallible>>>(),
    );
    let streamed = Request::post(CONFIGMAPS)
        .header("content-type", "application/json")
        .body(http_body_util::StreamBody::new(chunks))
        .unwrap();
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let (code, status) = answer(sender.send_request(streamed).await.expect("an answer")).await;
    assert_eq!(code, 413);
    assert_status(code, &status, "RequestEntityTooLarge");
    // A body under the limit still works.
    let (code, _) =
        answer(send(addr, request(Method::POST, CONFIGMAPS, "application/json", big_configmap(100))).await)
            .await;
    assert_eq!(code, 201);
}

#[tokio::test]
async fn the_default_body_limit_is_the_real_servers_3_mib() {
    let server = server();
    let front = front(&server, ServeOptions::default()).await;
    let body = big_configmap(fake_apiserver::http::DEFAULT_BODY_LIMIT);
    let (code, status) =
        answer(send(front.local_addr(), request(Method::POST, CONFIGMAPS, "application/json", body)).await)
            .await;
    assert_eq!(fake_apiserver::http::DEFAULT_BODY_LIMIT, 3 * 1024 * 1024);
    assert_eq!(code, 413);
    assert_status(code, &status, "RequestEntityTooLarge");
    assert_healthy(front.local_addr()).await;
}

#[tokio::test]
async fn unknown_paths_are_404_statuses_and_bad_query_values_are_400_statuses() {
    let server = server();
    let front = front(&server, ServeOptions::default()).await;
    let addr = front.local_addr();
    for path in
        ["/nonsense", "/api/v1/namespaces/default/nothings", "/apis/no.such.group/v1/things", "/api/v9"]
    {
        let (code, status) =
            answer(send(addr, Request::get(path).body(Full::default()).unwrap()).await).await;
        assert_eq!(code, 404, "{path}: {status}");
        assert_status(code, &status, "NotFound");
    }
    for query in ["limit=abc", "watch=maybe", "timeoutSeconds=-x", "dryRun=Some", "labelSelector=a%20in%20("]
    {
        let path = format!("{CONFIGMAPS}?{query}");
        let (code, status) =
            answer(send(addr, Request::get(&path).body(Full::default()).unwrap()).await).await;
        assert_eq!(code, 400, "{path}: {status}");
        assert_status(code, &status, "BadRequest");
    }
    assert_healthy(addr).await;
}

#[tokio::test]
async fn a_missing_or_wrong_token_is_a_401_status_but_health_checks_need_none() {
    let server = server();
    let front = front(&server, ServeOptions::default().token("s3cret")).await;
    let addr = front.local_addr();
    for authorization in [None, Some("Bearer wrong"), Some("Basic s3cret"), Some("Bearer s3cret2")] {
        let mut request = Request::get(CONFIGMAPS);
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let (code, status) = answer(send(addr, request.body(Full::default()).unwrap()).await).await;
        assert_eq!(code, 401, "{authorization:?}");
        assert_status(code, &status, "Unauthorized");
    }
    for path in ["/healthz", "/livez", "/readyz", "/readyz/ping"] {
        let response = send(addr, Request::get(path).body(Full::default()).unwrap()).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    let authorized = Request::get(CONFIGMAPS).header("authorization", "Bearer s3cret");
    let (code, list) = answer(send(addr, authorized.body(Full::default()).unwrap()).await).await;
    assert_eq!((code, list["kind"].as_str()), (200, Some("ConfigMapList")));
}

#[tokio::test]
async fn every_request_lands_in_the_journal_with_its_wire_details() {
    let server = server();
    let front = front(&server, ServeOptions::default()).await;
    let client = kubeconfig_client(&front).await;
    configmaps(&client).create(&PostParams::default(), &cm("a")).await.unwrap();
    let _ = configmaps(&client).get("missing").await;
    let records: Vec<_> = server.cluster().journal(|j| j.http_requests().cloned().collect());
    let summary: Vec<(&str, &str, u16)> =
        records.iter().map(|r| (r.method.as_str(), r.path.as_str(), r.code)).collect();
    assert_eq!(
        summary,
        vec![
            ("POST", "/api/v1/namespaces/default/configmaps?", 201),
            ("GET", "/api/v1/namespaces/default/configmaps/missing", 404),
        ]
    );
    assert!(records.iter().all(|r| r.peer.ip().is_loopback() && r.latency < WAIT));
    let record = server.cluster().journal(|j| j.records().last().cloned()).unwrap();
    let line = serde_json::to_value(&record).unwrap();
    assert_eq!((line["kind"].as_str(), line["code"].as_u64()), (Some("http"), Some(404)), "{line}");
}

/// The next watch line, read from the stream as it comes.
async fn next_line(body: &mut Incoming, buffer: &mut Vec<u8>) -> Option<Value> {
    loop {
        if let Some(end) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            return Some(serde_json::from_slice(&line).expect("a JSON event"));
        }
        let frame = tokio::time::timeout(WAIT, body.frame()).await.expect("the next event in time")?;
        if let Ok(data) = frame.expect("a frame").into_data() {
            buffer.extend_from_slice(&data);
        }
    }
}

#[tokio::test]
async fn a_watch_streams_each_event_as_it_happens_and_ends_cleanly_at_shutdown() {
    let server = server();
    let front = front(&server, ServeOptions::default()).await;
    let rv = server.cluster().resource_version();
    let path = format!("{CONFIGMAPS}?watch=true&resourceVersion={rv}&allowWatchBookmarks=false");
    let response = send(front.local_addr(), Request::get(&path).body(Full::default()).unwrap()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let mut buffer = Vec::new();
    let api = configmaps(&server.client());
    for name in ["a", "b", "c"] {
        // Each event arrives while the stream is open, before the next write.
        api.create(&PostParams::default(), &cm(name)).await.unwrap();
        let event = next_line(&mut body, &mut buffer).await.expect("an event");
        assert_eq!(
            (event["type"].as_str(), event["object"]["metadata"]["name"].as_str()),
            (Some("ADDED"), Some(name))
        );
    }
    tokio::time::timeout(WAIT, front.shutdown()).await.expect("shutdown does not wait for the watch");
    assert!(next_line(&mut body, &mut buffer).await.is_none(), "the stream ends without an error");
}

#[tokio::test]
async fn http2_with_prior_knowledge_is_served_too() {
    let server = server();
    let front = front(&server, ServeOptions::default()).await;
    let stream = TcpStream::connect(front.local_addr()).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let uri = format!("{}/version", front.url());
    let response =
        sender.send_request(Request::get(uri).body(Full::<Bytes>::default()).unwrap()).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    let (code, version) = answer(response).await;
    assert_eq!((code, version["major"].as_str()), (200, Some("1")));
}

#[tokio::test]
async fn over_tls_the_kubeconfig_carries_the_ca_and_the_token() {
    let server = server();
    let front = front(&server, ServeOptions::default().tls(true).token("t0k3n")).await;
    assert!(front.url().starts_with("https://127.0.0.1:"), "{}", front.url());
    assert!(front.ca_pem().is_some_and(|pem| pem.starts_with("-----BEGIN CERTIFICATE-----")));
    let kubeconfig = front.kubeconfig();
    assert!(
        kubeconfig.contains("certificate-authority-data: ") && kubeconfig.contains("t0k3n"),
        "{kubeconfig}"
    );
    let client = kubeconfig_client(&front).await;
    let created = configmaps(&client).create(&PostParams::default(), &cm("a")).await.unwrap();
    assert_eq!(configmaps(&client).get("a").await.unwrap().metadata.uid, created.metadata.uid);
    // Plain HTTP on the TLS port gets no API answer.
    let plain = TcpStream::connect(front.local_addr()).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(plain)).await.unwrap();
    tokio::spawn(connection);
    let result = tokio::time::timeout(
        WAIT,
        sender.send_request(Request::get("/healthz").body(Full::<Bytes>::default()).unwrap()),
    )
    .await
    .expect("in time");
    assert!(result.is_err() || result.is_ok_and(|r| r.status() != StatusCode::OK));
}
