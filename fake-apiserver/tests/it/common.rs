//! Shared fixtures: a server per test, a client over the transport under test, a ConfigMap builder,
//! and a CRD made with kube-derive.
//!
//! The transport comes from `FAKE_APISERVER_TRANSPORT`: in-process by default (the tower Service),
//! `http` or `https` for the HTTP front (with a bearer token, through the kubeconfig it writes and
//! `kube::Client::try_from(Config)`). `.ci/run` runs the suite once per transport. Tests on tokio's
//! paused clock get their client from [`clock_bound_client`] and are skipped over HTTP(S): real
//! sockets do not follow virtual time (reference/virtual-time.md rule 5).

#![allow(dead_code, unreachable_pub)]

use std::cell::RefCell;
use std::collections::BTreeMap;

use fake_apiserver::{FakeApiServer, ServeHandle, ServeOptions};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, CustomResource, CustomResourceExt};
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

/// The door the tests go through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `kube::Client::new(FakeService)`, no sockets.
    InProcess,
    /// The HTTP front over plain TCP.
    Http,
    /// The HTTP front over TLS.
    Https,
}

/// The transport under test, from `FAKE_APISERVER_TRANSPORT` (`http`, `https`; in-process otherwise).
pub fn transport() -> Transport {
    match std::env::var("FAKE_APISERVER_TRANSPORT").as_deref() {
        Ok("http") => Transport::Http,
        Ok("https") => Transport::Https,
        Ok("" | "in-process") | Err(_) => Transport::InProcess,
        Ok(other) => panic!("FAKE_APISERVER_TRANSPORT={other:?}: expected http, https or in-process"),
    }
}

/// The token the conformance runs over HTTP(S) require.
pub const TOKEN: &str = "conformance-token";

thread_local! {
    /// Fronts started by [`client_for`], kept open until the test's thread ends (their tasks die
    /// with the test's runtime before that).
    static FRONTS: RefCell<Vec<ServeHandle>> = const { RefCell::new(Vec::new()) };
}

/// A client of `server` over the transport under test.
pub async fn client_for(server: &FakeApiServer) -> Client {
    let tls = match transport() {
        Transport::InProcess => return server.client(),
        Transport::Http => false,
        Transport::Https => true,
    };
    let front = server.serve(ServeOptions::default().tls(tls).token(TOKEN)).await.expect("the front starts");
    let client = kubeconfig_client(&front).await;
    FRONTS.with(|fronts| fronts.borrow_mut().push(front));
    client
}

/// A client of `server` acting as `identity` over the transport under test: in-process through
/// `client_as`, over HTTP(S) with a bearer token the cluster issued for the identity.
pub async fn client_as(server: &FakeApiServer, identity: fake_apiserver::Identity) -> Client {
    let tls = match transport() {
        Transport::InProcess => return server.client_as(identity),
        Transport::Http => false,
        Transport::Https => true,
    };
    let token = server.cluster().issue_token(identity);
    let front = server.serve(ServeOptions::default().tls(tls).token(TOKEN)).await.expect("the front starts");
    let kubeconfig = Kubeconfig::from_yaml(&front.kubeconfig().replace(TOKEN, &token)).expect("parses");
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("the kubeconfig is usable");
    config.default_retry = false;
    if config.root_cert.is_none() {
        config.root_cert = Some(Vec::new());
    }
    FRONTS.with(|fronts| fronts.borrow_mut().push(front));
    Client::try_from(config).expect("a client from the kubeconfig")
}

/// A client made from the front's kubeconfig, without kube's default retries (reference/kube-rs.md
/// G7), so injected 429/503/504 faults reach the test as they do in-process.
pub async fn kubeconfig_client(front: &ServeHandle) -> Client {
    let kubeconfig = Kubeconfig::from_yaml(&front.kubeconfig()).expect("the kubeconfig parses");
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("the kubeconfig is usable");
    config.default_retry = false;
    if config.root_cert.is_none() {
        // Plain HTTP needs no trust roots; without any, kube loads the platform's (~40 ms a client
        // in a debug build, which the model test pays 64 times).
        config.root_cert = Some(Vec::new());
    }
    Client::try_from(config).expect("a client from the kubeconfig")
}

/// The in-process client for a test that runs on tokio's paused clock, or `None` (skip the test)
/// over HTTP(S).
pub fn clock_bound_client(server: &FakeApiServer) -> Option<Client> {
    match transport() {
        Transport::InProcess => Some(server.client()),
        other => {
            eprintln!("skipped over {other:?}: the test runs on tokio's paused clock");
            None
        }
    }
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
