//! R24: every failure is a Status with the real code and reason; bad input changes nothing.

use fake_apiserver::FakeApiServer;
use http::{Method, Request};
use http_body_util::BodyExt;
use kube::api::PostParams;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::common::*;

async fn raw(
    server: &FakeApiServer,
    method: Method,
    uri: &str,
    content_type: &str,
    body: &str,
) -> (u16, Value) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", content_type)
        .body(body.to_owned())
        .unwrap();
    let response = server.service().oneshot(request).await.unwrap();
    let code = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn malformed_json_is_a_400_status_and_changes_nothing() {
    let server = server();
    let before = server.cluster().resource_version();
    let (code, status) =
        raw(&server, Method::POST, "/api/v1/namespaces/default/configmaps", "application/json", "{not json")
            .await;
    assert_eq!(code, 400);
    assert_eq!(
        (status["kind"].as_str(), status["reason"].as_str(), status["code"].as_u64()),
        (Some("Status"), Some("BadRequest"), Some(400))
    );
    assert_eq!(server.cluster().resource_version(), before);
}

#[tokio::test]
async fn a_wrong_api_version_or_kind_for_the_url_is_rejected() {
    let server = server();
    let body = json!({"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "x"}}).to_string();
    let (code, status) =
        raw(&server, Method::POST, "/api/v1/namespaces/default/configmaps", "application/json", &body).await;
    assert_eq!(code, 400);
    assert_eq!(
        status["message"],
        "the API version in the data (apps/v1) does not match the expected API version (v1)"
    );
    let body = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}).to_string();
    let (code, _) =
        raw(&server, Method::POST, "/api/v1/namespaces/default/configmaps", "application/json", &body).await;
    assert_eq!(code, 400);
}

#[tokio::test]
async fn a_name_that_does_not_match_the_url_is_400() {
    let server = server();
    configmaps(&client_for(&server).await).create(&PostParams::default(), &cm("a")).await.unwrap();
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}}).to_string();
    let (code, status) =
        raw(&server, Method::PUT, "/api/v1/namespaces/default/configmaps/a", "application/json", &body).await;
    assert_eq!(code, 400);
    assert_eq!(status["message"], "the name of the object (b) does not match the name on the URL (a)");
}

#[tokio::test]
async fn invalid_names_and_labels_are_422_with_field_causes() {
    let server = server();
    let body = json!({"metadata": {"name": "Bad_Name", "labels": {"ok": "-bad-"}}}).to_string();
    let (code, status) =
        raw(&server, Method::POST, "/api/v1/namespaces/default/configmaps", "application/json", &body).await;
    assert_eq!(code, 422);
    assert_eq!(status["reason"], "Invalid");
    let fields: Vec<&str> = status["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"metadata.name") && fields.iter().any(|f| f.starts_with("metadata.labels")),
        "{fields:?}"
    );
    assert!(status["message"].as_str().unwrap().starts_with("ConfigMap \"Bad_Name\" is invalid: ["));
}

#[tokio::test]
async fn an_unknown_patch_type_is_415() {
    let server = server();
    configmaps(&client_for(&server).await).create(&PostParams::default(), &cm("a")).await.unwrap();
    let (code, status) =
        raw(&server, Method::PATCH, "/api/v1/namespaces/default/configmaps/a", "application/xml", "{}").await;
    assert_eq!((code, status["reason"].as_str()), (415, Some("UnsupportedMediaType")));
}

#[tokio::test]
async fn unknown_resources_and_unsupported_methods_get_404_and_405() {
    let server = server();
    let (code, status) = raw(&server, Method::GET, "/api/v1/namespaces/default/nonexistents", "", "").await;
    assert_eq!((code, status["reason"].as_str()), (404, Some("NotFound")));
    let (code, _) = raw(&server, Method::GET, "/apis/nope.example.com/v1/things", "", "").await;
    assert_eq!(code, 404);
    let (code, status) = raw(&server, Method::POST, "/api/v1/configmaps", "application/json", "{}").await;
    assert_eq!(
        (code, status["reason"].as_str()),
        (405, Some("MethodNotAllowed")),
        "no create without a namespace"
    );
    let (code, _) =
        raw(&server, Method::GET, "/api/v1/namespaces/default/configmaps/a/nosuchsub", "", "").await;
    assert_eq!(code, 404);
}

#[tokio::test]
async fn a_body_that_is_not_an_object_is_400() {
    let server = server();
    let (code, _) =
        raw(&server, Method::POST, "/api/v1/namespaces/default/configmaps", "application/json", "[1, 2]")
            .await;
    assert_eq!(code, 400);
    let (code, _) =
        raw(&server, Method::POST, "/api/v1/namespaces/default/configmaps", "application/json", "\"text\"")
            .await;
    assert_eq!(code, 400);
}
