//! Raw requests through the in-process tower Service, with the `Accept` headers kubectl sends, for
//! what `kube::Client` does not ask for (aggregated discovery, OpenAPI, Tables).

#![allow(dead_code, unreachable_pub)]

use fake_apiserver::FakeApiServer;
use http::Request;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// What kubectl and client-go send for discovery (client-go 1.32: v2, then v2beta1, then legacy).
pub const DISCOVERY: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
/// What `kubectl get` sends for server-side printing.
pub const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

/// A response: status code, `Content-Type`, and the body as JSON (`Null` if it is not JSON).
#[derive(Debug)]
pub struct Answer {
    pub code: u16,
    pub content_type: String,
    pub body: Value,
    pub len: usize,
}

/// A GET with this `Accept` header.
pub async fn get(server: &FakeApiServer, uri: &str, accept: &str) -> Answer {
    let request = Request::get(uri).header("accept", accept).body(String::new()).unwrap();
    let response = server.service().oneshot(request).await.unwrap();
    let code = response.status().as_u16();
    let content_type =
        response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        code,
        content_type,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        len: bytes.len(),
    }
}

/// A watch with this `Accept` header: the stream of its lines, each parsed as JSON.
pub async fn watch(
    server: &FakeApiServer,
    uri: &str,
    accept: &str,
) -> impl futures::Stream<Item = Value> + Unpin {
    let request = Request::get(uri).header("accept", accept).body(String::new()).unwrap();
    let response = server.service().oneshot(request).await.unwrap();
    assert_eq!(response.status().as_u16(), 200, "the watch starts");
    let frames = response.into_body().into_data_stream();
    Box::pin(futures::StreamExt::flat_map(frames, |frame| {
        let lines: Vec<Value> = frame
            .map(|bytes| {
                bytes
                    .split(|b| *b == b'\n')
                    .filter(|line| !line.is_empty())
                    .map(|line| serde_json::from_slice(line).unwrap())
                    .collect()
            })
            .unwrap_or_default();
        futures::stream::iter(lines)
    }))
}
