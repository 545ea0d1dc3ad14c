//! Shared fixtures: a server per test, a ConfigMap builder, and a CRD made with kube-derive.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;

use fake_apiserver::FakeApiServer;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::{Client, CustomResource, CustomResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The CRD the tests use, as a kopf-rs user would declare it.
#[derive(CustomResource, Clone, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
#[kube(group = "kopf.dev", version = "v1", kind = "KopfExample", namespaced, status = "ExampleStatus")]
#[kube(scale(spec_replicas_path = ".spec.replicas", status_replicas_path = ".status.replicas"))]
pub struct ExampleSpec {
    pub field: String,
    #[serde(default)]
    pub items: Vec<String>,
    #[serde(default)]
    pub replicas: i32,
}

/// The status of [`KopfExample`].
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct ExampleStatus {
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub replicas: i32,
}

pub fn server() -> FakeApiServer {
    FakeApiServer::builder().seed(1).build()
}

pub fn cm(name: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta { name: Some(name.into()), ..Default::default() },
        data: Some(BTreeMap::from([("key".to_owned(), "value".to_owned())])),
        ..Default::default()
    }
}

pub fn labelled(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    let mut c = cm(name);
    c.metadata.labels = Some(labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect());
    c
}

pub fn example(name: &str, field: &str) -> KopfExample {
    let mut ex = KopfExample::new(name, ExampleSpec { field: field.into(), ..Default::default() });
    ex.metadata.namespace = Some("default".into());
    ex
}

/// Installs the KopfExample CRD through the API, as `kubectl apply -f crd.yaml` would.
pub async fn install_crd(client: &Client) -> CustomResourceDefinition {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &KopfExample::crd()).await.expect("the CRD is accepted")
}

pub fn configmaps(client: &Client) -> Api<ConfigMap> {
    Api::namespaced(client.clone(), "default")
}

pub fn examples(client: &Client) -> Api<KopfExample> {
    Api::namespaced(client.clone(), "default")
}

/// The API error's HTTP code and reason, or a panic naming what came back instead.
pub fn api_error<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> (u16, String, String) {
    match result {
        Err(kube::Error::Api(status)) => (status.code, status.reason.clone(), status.message.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

pub fn rv<K: kube::Resource>(obj: &K) -> u64 {
    obj.meta().resource_version.as_deref().expect("objects carry a resourceVersion").parse().expect("numeric")
}
