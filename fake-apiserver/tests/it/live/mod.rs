//! The live cluster (`Builder::live`): bootstrap objects, controllers, simulated kubelets and Nodes,
//! on the fake's clock. Each test states the live-cluster behaviour it pins; virtual time is exact.

mod client;
mod served;
mod workloads;

use std::time::Duration;

use fake_apiserver::FakeApiServer;
use fake_apiserver::live::LiveCluster;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::time::Instant;

/// A live cluster with seed 1.
pub(crate) fn live(config: LiveCluster) -> FakeApiServer {
    FakeApiServer::builder().seed(1).live(config).build()
}

/// Waits until the controllers have nothing to do at the current instant.
pub(crate) async fn settle(server: &FakeApiServer) {
    server.control_plane().expect("a live cluster").settle().await;
}

/// Lets `d` of virtual time pass with every controller deadline firing in order, then settles.
pub(crate) async fn advance(server: &FakeApiServer, d: Duration) {
    settle(server).await;
    tokio::time::sleep_until(Instant::now() + d).await;
    settle(server).await;
}

/// Lets virtual time pass until `f` holds (checked at every controller deadline), at most `limit`;
/// returns the virtual time it took.
pub(crate) async fn until(
    server: &FakeApiServer,
    limit: Duration,
    mut f: impl FnMut(&FakeApiServer) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        settle(server).await;
        if f(server) {
            return start.elapsed();
        }
        let control = server.control_plane().unwrap();
        let next = control.next_deadline().filter(|d| *d > Instant::now()).unwrap_or(start + limit);
        assert!(
            Instant::now() < start + limit,
            "the condition did not hold within {limit:?} of virtual time"
        );
        tokio::time::sleep_until(next.min(start + limit)).await;
    }
}

/// An object's current state as JSON (direct read, no journal).
pub(crate) fn get(
    server: &FakeApiServer,
    group: &str,
    plural: &str,
    namespace: &str,
    name: &str,
) -> Option<Value> {
    server.cluster().object(group, plural, namespace, name).map(|o| o.value())
}

/// Every object of a resource in a namespace, typed.
pub(crate) fn list<K: DeserializeOwned>(
    server: &FakeApiServer,
    group: &str,
    plural: &str,
    namespace: &str,
) -> Vec<K> {
    server
        .cluster()
        .objects(group, plural)
        .into_iter()
        .filter(|o| o.namespace() == namespace)
        .map(|o| o.parse().expect("a valid object"))
        .collect()
}

/// Creates an object from JSON through the core (as the test user).
pub(crate) async fn create(server: &FakeApiServer, object: Value) -> Value {
    let api_version = object["apiVersion"].as_str().unwrap().to_owned();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", &api_version));
    let kind = object["kind"].as_str().unwrap();
    let info = server
        .cluster()
        .resources()
        .into_iter()
        .find(|r| r.group == group && r.version == version && r.kind == kind)
        .expect("a served kind");
    let mut req = fake_apiserver::Request::new(fake_apiserver::Verb::Create, group, version, &info.plural)
        .body(object.clone());
    if info.namespaced {
        req.namespace = Some(object["metadata"]["namespace"].as_str().unwrap_or("default").to_owned());
    }
    req.actor = "test".into();
    match server.cluster().handle(req).await.expect("created") {
        fake_apiserver::Response::Object(o) => o.value(),
        other => panic!("not an object: {other:?}"),
    }
}

/// Patches a built-in object through the core with a strategic merge patch (as `kubectl set`,
/// `kubectl patch` and `kubectl edit` do).
pub(crate) async fn patch(
    server: &FakeApiServer,
    group: &str,
    plural: &str,
    namespace: Option<&str>,
    name: &str,
    body: Value,
) -> Value {
    let version = server
        .cluster()
        .resources()
        .into_iter()
        .find(|r| r.group == group && r.plural == plural)
        .unwrap()
        .version
        .clone();
    let mut req = fake_apiserver::Request::new(fake_apiserver::Verb::Patch, group, &version, plural)
        .name(name)
        .patch_type(fake_apiserver::PatchType::Strategic)
        .body(body);
    req.namespace = namespace.map(str::to_owned);
    req.actor = "test".into();
    match server.cluster().handle(req).await.expect("patched") {
        fake_apiserver::Response::Object(o) => o.value(),
        other => panic!("not an object: {other:?}"),
    }
}
