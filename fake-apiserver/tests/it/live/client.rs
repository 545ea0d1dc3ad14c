//! The acceptance scenarios through `kube::Client` with the live cluster on, in process on the
//! paused clock (skipped over HTTP(S): the simulated kubelets run on the fake's virtual clock).

use std::time::Duration;

use fake_apiserver::FakeApiServer;
use fake_apiserver::live::LiveCluster;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use serde_json::json;

use crate::common::*;

fn live() -> FakeApiServer {
    FakeApiServer::builder().seed(1).live(LiveCluster::new()).build()
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}], "terminationGracePeriodSeconds": 5},
    }))
    .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_pod_created_through_the_api_reaches_running_then_ready_and_await_condition_returns() {
    let server = live();
    let Some(client) = clock_bound_client(&server) else { return };
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let started = tokio::time::Instant::now();
    pods.create(&PostParams::default(), &pod("web")).await.unwrap();
    let running = tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(pods.clone(), "web", conditions::is_pod_running()),
    )
    .await
    .expect("running within a minute of virtual time")
    .unwrap()
    .unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(1), "the default start delay");
    let status = running.status.unwrap();
    assert_eq!(status.phase.as_deref(), Some("Running"));
    assert_eq!(running.spec.unwrap().node_name.as_deref(), Some("node-1"));
    assert_eq!(status.pod_ip.as_deref(), Some("10.244.0.2"));
    assert_eq!(status.host_ip.as_deref(), Some("172.18.0.2"));
    let types: Vec<(String, String)> =
        status.conditions.unwrap().into_iter().map(|c| (c.type_, c.status)).collect();
    let expected = [
        ("PodReadyToStartContainers", "True"),
        ("Initialized", "True"),
        ("Ready", "True"),
        ("ContainersReady", "True"),
        ("PodScheduled", "True"),
    ];
    assert_eq!(types, expected.map(|(a, b)| (a.to_owned(), b.to_owned())));
    let container = &status.container_statuses.unwrap()[0];
    assert_eq!((container.ready, container.started, container.restart_count), (true, Some(true), 0));
}
