//! The official Python `kubernetes` client (PyPI) against `fake-apiserver serve --tls`, through the
//! kubeconfig the binary writes: each test runs one scenario of `tests/python/client_scenarios.py`
//! and checks what the client printed and what it left on the server.

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

use crate::external::*;

/// Runs a scenario against a fresh served binary with the KopfExample CRD; `None` when no Python
/// is configured (the test is skipped with a notice).
async fn scenario(name: &str) -> Option<(Value, Served, kube::Client)> {
    let python = python()?;
    let served = Served::start(&format!("python-{name}")).await;
    let client = served.client().await;
    let manifest = std::fs::read_to_string(test_file("manifests/kopfexample-crd.yaml")).unwrap();
    let crd: CustomResourceDefinition = serde_saphyr::from_str(&manifest).unwrap();
    Api::<CustomResourceDefinition>::all(client.clone()).create(&PostParams::default(), &crd).await.unwrap();
    let run = tokio::process::Command::new(python)
        .arg(test_file("python/client_scenarios.py"))
        .arg(name)
        .env("KUBECONFIG", &served.kubeconfig)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(WAIT, run).await.expect("the scenario ends in time").unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "scenario {name} failed:\n{stderr}");
    let printed =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("no JSON ({e}):\n{stderr}"));
    Some((printed, served, client))
}

fn configmaps(client: &kube::Client) -> Api<ConfigMap> {
    Api::namespaced(client.clone(), "default")
}

#[tokio::test]
async fn the_python_client_creates_reads_replaces_patches_lists_and_deletes() {
    let Some((seen, _served, client)) = scenario("crud").await else { return };
    let a = configmaps(&client).get("a").await.unwrap();
    assert_eq!(seen["created_uid"], json!(a.metadata.uid));
    assert_eq!(
        a.data.unwrap(),
        [("extra".to_owned(), "x".to_owned()), ("k".to_owned(), "replaced".to_owned())].into()
    );
    assert_eq!(seen["patched_data"], json!({"extra": "x", "k": "replaced"}));
    assert!(
        seen["replaced_rv"].as_str().unwrap().parse::<u64>().unwrap()
            < a.metadata.resource_version.unwrap().parse().unwrap()
    );
    assert_eq!(seen["labelled"], json!(["a"]));
    assert_eq!(seen["deleted"]["kind"], "Status");
    assert_eq!(seen["deleted"]["status"], "Success");
    assert_eq!(seen["gone"], json!({"status": 404, "reason": "NotFound"}));
    assert!(configmaps(&client).get_opt("b").await.unwrap().is_none());

    let ex = json_of(&kopfexamples(&client).get("ex1").await.unwrap());
    assert_eq!(seen["example_uid"], ex["metadata"]["uid"]);
    assert_eq!(ex["spec"], json!({"field": "from python", "items": ["a", "b"]}));
    assert_eq!(seen["examples"], json!([["ex1", {"field": "from python", "items": ["a", "b"]}]]));
}

#[tokio::test]
async fn the_python_clients_watch_resumes_from_the_last_resource_version_it_saw() {
    let Some((seen, _served, client)) = scenario("watch-resume").await else { return };
    let first: Vec<(String, String, String)> = events(&seen["first"]);
    let second = events(&seen["second"]);
    assert_eq!(
        first.iter().map(|(t, n, k)| (t.as_str(), n.as_str(), k.as_str())).collect::<Vec<_>>(),
        [("ADDED", "w1", "1"), ("MODIFIED", "w1", "2")]
    );
    assert_eq!(
        second.iter().map(|(t, n, k)| (t.as_str(), n.as_str(), k.as_str())).collect::<Vec<_>>(),
        [("ADDED", "w2", "3"), ("DELETED", "w1", "2")],
        "resumed after the last event: nothing twice, nothing lost"
    );
    // The versions the client saw are the server's, in order.
    let versions: Vec<u64> = seen["first"]
        .as_array()
        .unwrap()
        .iter()
        .chain(seen["second"].as_array().unwrap())
        .map(|e| e[3].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
    let w2 = configmaps(&client).get("w2").await.unwrap();
    assert_eq!(w2.metadata.resource_version.unwrap().parse::<u64>().unwrap(), versions[2]);
}

fn events(list: &Value) -> Vec<(String, String, String)> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (e[0].as_str().unwrap().into(), e[1].as_str().unwrap().into(), e[2].as_str().unwrap().into())
        })
        .collect()
}

#[tokio::test]
async fn a_stale_replace_from_the_python_client_is_a_409_conflict_status() {
    let Some((seen, _served, client)) = scenario("stale-replace").await else { return };
    assert_eq!(
        (seen["error"].as_u64(), seen["kind"].as_str(), seen["reason"].as_str()),
        (Some(409), Some("Status"), Some("Conflict"))
    );
    assert_eq!(
        seen["message"],
        r#"Operation cannot be fulfilled on configmaps "s": the object has been modified; please apply your changes to the latest version and try again"#
    );
    let s = configmaps(&client).get("s").await.unwrap();
    assert_eq!(s.data.unwrap()["k"], "2", "the stale write changed nothing");
    assert_ne!(s.metadata.resource_version.as_deref(), seen["stale_rv"].as_str());
}

#[tokio::test]
async fn the_python_client_writes_status_only_through_the_status_subresource() {
    let Some((seen, _served, client)) = scenario("status-subresource").await else { return };
    assert_eq!(
        seen["generation"],
        json!([1, 2, 2]),
        "a spec change bumps the generation, a status change does not"
    );
    assert_eq!(seen["main_status"], Value::Null, "status through the main resource is ignored");
    assert_eq!(
        seen["after_status"],
        json!([{"field": "g", "items": []}, {"y": 2}]),
        "spec through /status is ignored"
    );
    assert_eq!(seen["got"], seen["after_status"]);
    let st = json_of(&kopfexamples(&client).get("st").await.unwrap());
    assert_eq!((&st["spec"]["field"], &st["status"]), (&json!("g"), &json!({"y": 2})));
}
